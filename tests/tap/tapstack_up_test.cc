// `tapstack up` end to end, as a user runs it, in a private network namespace: the kernel
// pings it, SIGINT stops it, the stats and pcap files hold the run; and the runtime failures
// (busy interface, not a TAP, a TAP whose multi-queue flag differs from --tap-queues, no
// CAP_NET_ADMIN) exit 1 with one line that names the fix.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tap/tap_device.h"
#include "tests/support/netns.h"
#include "tests/support/pcap_frames.h"
#include "tests/support/subprocess.h"
#include "tests/tap/test_paths.h"
#include "tools/build_info.h"

namespace tapstack::testing {
namespace {

constexpr milliseconds kStartTimeout{5'000};
constexpr milliseconds kRunTimeout{20'000};

std::vector<std::string> tapstack_up(std::vector<std::string> extra) {
  std::vector<std::string> args = {tapstack_binary(), "up",           "--tap", "tap0",
                                   "--addr",          "198.18.0.2/24"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void check_one_error_line(const ProcessResult& result, std::string_view expected) {
  CHECK(result.exit_code == 1);
  CHECK(result.err.starts_with("tapstack: "));
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.find(expected) != std::string::npos);
}

TEST_CASE("tapstack up answers ping, stops on SIGINT, writes stats and pcap") {
  enter_private_netns_or_skip();
  const std::string pcap = temporary_path("up.pcap");
  const std::string stats = temporary_path("up.json");
  auto child = ChildProcess::start(
      tapstack_up({"--host-addr", "198.18.0.1/24", "--pcap", pcap, "--stats", stats}));
  REQUIRE(child);
  REQUIRE(child->wait_for_stderr("stop with Ctrl-C", kStartTimeout));

  const ProcessResult ping =
      run_process({"/usr/bin/ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.2"}, kRunTimeout);
  CAPTURE(ping.out);
  CHECK(ping.exit_code == 0);
  CHECK(ping.out.find("3 received") != std::string::npos);

  child->send_signal(SIGINT);
  const ProcessResult result = child->wait(kRunTimeout);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  // Status lines on stderr, like every command's; nothing on stdout, which is for data.
  CHECK(result.out.empty());
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 2);
  CHECK(result.err.find("; stop with Ctrl-C\n") != std::string::npos);
  CHECK(result.err.find("stopped by SIGINT") != std::string::npos);

  const std::string json = read_file(stats);
  CAPTURE(json);
  CHECK(json.find("\"IcmpInEchos\": 3,") != std::string::npos);
  CHECK(json.find("\"IcmpOutEchoReps\": 3,") != std::string::npos);

  auto summary = summarize_pcap(pcap);
  REQUIRE(summary);
  CHECK(summary->echo_requests == 3);
  CHECK(summary->echo_replies == 3);
  CHECK(summary->arp_replies >= 1);
}

TEST_CASE("tapstack up stops on SIGTERM with exit 0") {
  enter_private_netns_or_skip();
  auto child = ChildProcess::start(tapstack_up({"--host-addr", "198.18.0.1/24"}));
  REQUIRE(child);
  REQUIRE(child->wait_for_stderr("stop with Ctrl-C", kStartTimeout));
  child->send_signal(SIGTERM);
  const ProcessResult result = child->wait(kRunTimeout);
  CHECK(result.describe() == "exit 0");
  CHECK(result.err.find("stopped by SIGTERM") != std::string::npos);
  // The optimised build starts without a word; any other (--config=asan) says it is slower.
  if (cli::build_info().optimised) {
    CHECK(result.build_warning.empty());
  } else {
    CHECK(result.build_warning == cli::slow_build_warning() + "\n");
  }
}

TEST_CASE("runtime failures: exit 1 and one line that names the fix") {
  enter_private_netns_or_skip();

  SUBCASE("the interface is busy") {
    auto holder = TapDevice::open("tap0");
    REQUIRE(holder);
    check_one_error_line(run_process(tapstack_up({}), kRunTimeout), "busy");
  }
  SUBCASE("the interface exists and is not a TAP") {
    const ProcessResult result = run_process(
        {tapstack_binary(), "up", "--tap", "lo", "--addr", "198.18.0.2/24"}, kRunTimeout);
    check_one_error_line(result, "not a TAP");
  }
  SUBCASE("--tap-queues 2 on a TAP made without multi-queue") {
    REQUIRE(
        run_process({"/usr/sbin/ip", "tuntap", "add", "dev", "tap0", "mode", "tap"}, kRunTimeout)
            .exit_code == 0);
    check_one_error_line(run_process(tapstack_up({"--tap-queues", "2"}), kRunTimeout),
                         "made without multi-queue, so it cannot take --tap-queues 2: use "
                         "--tap-queues 1");
  }
  SUBCASE("--tap-queues 1 on a TAP made with multi-queue") {
    REQUIRE(
        run_process({"/usr/sbin/ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "multi_queue"},
                    kRunTimeout)
            .exit_code == 0);
    check_one_error_line(run_process(tapstack_up({}), kRunTimeout),
                         "made with multi-queue: use --tap-queues 2 or more");
  }
  SUBCASE("--tap-queues 2 on a multi-queue TAP made beforehand: it runs") {
    REQUIRE(
        run_process({"/usr/sbin/ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "multi_queue"},
                    kRunTimeout)
            .exit_code == 0);
    auto child =
        ChildProcess::start(tapstack_up({"--host-addr", "198.18.0.1/24", "--tap-queues", "2"}));
    REQUIRE(child);
    REQUIRE(child->wait_for_stderr("stop with Ctrl-C", kStartTimeout));
    const ProcessResult ping = run_process(
        {"/usr/bin/ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.2"}, kRunTimeout);
    CHECK(ping.out.find("2 received") != std::string::npos);
    child->send_signal(SIGTERM);
    const ProcessResult result = child->wait(kRunTimeout);
    CHECK(result.describe() == "exit 0");
    CHECK(result.err.find("2 queues") != std::string::npos);
  }
  SUBCASE("no CAP_NET_ADMIN") {
    const ProcessResult result =
        run_process(tapstack_up({}), kRunTimeout, ProcessOptions{.drop_net_admin = true});
    check_one_error_line(result, "setcap cap_net_admin+ep");
  }
}

}  // namespace
}  // namespace tapstack::testing
