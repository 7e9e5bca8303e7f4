// `tapstack up` end to end, as a user runs it, in a private network namespace: the kernel
// pings it, SIGINT stops it, the stats and pcap files hold the run; and the runtime failures
// (busy interface, not a TAP, a TAP whose multi-queue flag differs from --tap-queues, no
// CAP_NET_ADMIN) exit 1 with one line that names the fix.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tap/netlink.h"
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

void run_ip(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/sbin/ip");
  const ProcessResult result = run_process(args, kRunTimeout);
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);
}

// The kernel side's IPv4 addresses on tap0, as `ip -4 addr show dev tap0` lists them.
std::vector<std::string> tap0_addresses() {
  auto netlink = Rtnetlink::open();
  REQUIRE(netlink);
  auto addresses = netlink->ipv4_addresses("tap0");
  REQUIRE(addresses);
  std::vector<std::string> texts;
  for (const Ipv4Interface& address : *addresses) texts.push_back(address.to_string());
  std::sort(texts.begin(), texts.end());
  return texts;
}

// Runs `tapstack up` with extra options until it has started, then stops it with SIGTERM.
ProcessResult run_up_once(
    std::vector<std::string> extra, const std::function<void()>& while_running = [] {}) {
  auto child = ChildProcess::start(tapstack_up(std::move(extra)));
  REQUIRE(child);
  REQUIRE(child->wait_for_stderr("stop with Ctrl-C", kStartTimeout));
  while_running();
  child->send_signal(SIGTERM);
  const ProcessResult result = child->wait(kRunTimeout);
  CHECK(result.describe() == "exit 0");
  return result;
}

TEST_CASE("--host-addr on a persistent TAP: what it added goes at exit, what was there stays") {
  enter_private_netns_or_skip();
  run_ip({"tuntap", "add", "dev", "tap0", "mode", "tap"});
  // Another address, and the same one as a later --host-addr with another prefix length.
  run_ip({"addr", "add", "198.18.0.9/24", "dev", "tap0"});
  run_ip({"addr", "add", "198.18.0.1/16", "dev", "tap0"});
  const std::vector<std::string> before = {"198.18.0.1/16", "198.18.0.9/24"};
  REQUIRE(tap0_addresses() == before);
  struct Case {
    std::string host_addr;
    std::vector<std::string> while_running;
  };
  const std::vector<Case> cases = {
      {"198.18.0.1/24", {"198.18.0.1/16", "198.18.0.1/24", "198.18.0.9/24"}},
      {"198.18.0.5/24", {"198.18.0.1/16", "198.18.0.5/24", "198.18.0.9/24"}},
      {"198.18.0.9/24", before},  // there already: left as it was, and kept at exit
  };
  for (const Case& c : cases) {
    CAPTURE(c.host_addr);
    const ProcessResult result = run_up_once({"--host-addr", c.host_addr},
                                             [&] { CHECK(tap0_addresses() == c.while_running); });
    CAPTURE(result.err);
    CHECK(result.err.find("warning") == std::string::npos);
    CHECK(result.err.find(fmt::format("kernel side {} at", c.host_addr)) != std::string::npos);
    CHECK(tap0_addresses() == before);
  }
}

// tap0's disable_ipv6 in this namespace: "0" when IPv6 is on.
std::string tap0_disable_ipv6() {
  std::ifstream file("/proc/sys/net/ipv6/conf/tap0/disable_ipv6");
  std::string text;
  std::getline(file, text);
  return text;
}

// `ip -6 addr show dev tap0`, as text.
std::string tap0_ipv6_text() {
  const ProcessResult result =
      run_process({"/usr/sbin/ip", "-6", "addr", "show", "dev", "tap0"}, kRunTimeout);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

TEST_CASE(
    "--host-addr for IPv6: IPv6 turned on for tap0, the address usable at once, gone at exit") {
  enter_private_netns_or_skip();
  run_ip({"tuntap", "add", "dev", "tap0", "mode", "tap"});
  std::ofstream("/proc/sys/net/ipv6/conf/tap0/disable_ipv6") << "1\n";
  REQUIRE(tap0_disable_ipv6() == "1");
  const ProcessResult result = run_up_once(
      {"--addr", "2001:db8::2/64", "--host-addr", "198.18.0.1/24", "--host-addr", "2001:db8::1/64"},
      [&] {
        CHECK(tap0_disable_ipv6() == "0");
        const std::string addresses = tap0_ipv6_text();
        CAPTURE(addresses);
        const size_t ours = addresses.find("inet6 2001:db8::1/64 scope global nodad");
        REQUIRE(ours != std::string::npos);
        const std::string line = addresses.substr(ours, addresses.find('\n', ours) - ours);
        CHECK(line.find("tentative") == std::string::npos);  // no DAD: usable at once
      });
  CAPTURE(result.err);
  CHECK(result.err.find("warning") == std::string::npos);
  CHECK(result.err.find("198.18.0.2/24 and 2001:db8::2/64 at ") != std::string::npos);
  CHECK(result.err.find("kernel side 198.18.0.1/24, 2001:db8::1/64 at") != std::string::npos);
  CHECK(tap0_ipv6_text().find("2001:db8::1") == std::string::npos);  // what we added went
}

TEST_CASE("tapstack up over IPv6 answers ping -6, small and fragmented, once DAD passed") {
  enter_private_netns_or_skip();
  const std::string stats = temporary_path("up6.json");
  auto child = ChildProcess::start({tapstack_binary(), "up", "--tap", "tap0", "--addr",
                                    "2001:db8::2/64", "--host-addr", "2001:db8::1/64", "--stats",
                                    stats});
  REQUIRE(child);
  REQUIRE(child->wait_for_stderr("stop with Ctrl-C", kStartTimeout));
  // Our address is tentative for a second (duplicate address detection): ping's own retries
  // (-w) cover it.
  const ProcessResult small = run_process(
      {"/usr/bin/ping", "-6", "-c", "3", "-i", "0.2", "-w", "5", "2001:db8::2"}, kRunTimeout);
  CAPTURE(small.out);
  CHECK(small.exit_code == 0);
  const ProcessResult big = run_process(
      {"/usr/bin/ping", "-6", "-c", "1", "-s", "4000", "-W", "2", "2001:db8::2"}, kRunTimeout);
  CAPTURE(big.out);
  CHECK(big.exit_code == 0);
  CHECK(big.out.find("4008 bytes from 2001:db8::2") != std::string::npos);

  child->send_signal(SIGINT);
  const ProcessResult result = child->wait(kRunTimeout);
  CAPTURE(result.err);
  CHECK(result.describe() == "exit 0");
  const std::string json = read_file(stats);
  CAPTURE(json);
  CHECK(json.find("\"Ip6ReasmOKs\": 1,") != std::string::npos);
  CHECK(json.find("\"Ip6FragCreates\": 3,") != std::string::npos);
  CHECK(json.find("\"Icmp6InNeighborSolicits\": 0,") == std::string::npos);
}

TEST_CASE("an IPv6 address another node holds: DAD fails, one line naming the holder, exit 1") {
  enter_private_netns_or_skip();
  run_ip({"tuntap", "add", "dev", "tap0", "mode", "tap"});
  run_ip({"link", "set", "tap0", "up"});
  std::ofstream("/proc/sys/net/ipv6/conf/tap0/disable_ipv6") << "0\n";
  run_ip({"-6", "addr", "add", "2001:db8::1/64", "dev", "tap0", "nodad"});
  run_ip({"-6", "addr", "add", "2001:db8::2/64", "dev", "tap0", "nodad"});
  const std::string kernel_mac = [] {
    auto netlink = Rtnetlink::open();
    REQUIRE(netlink);
    return netlink->link("tap0")->mac.to_string();
  }();
  const ProcessResult result = run_process(
      {tapstack_binary(), "up", "--tap", "tap0", "--addr", "2001:db8::2/64"}, kRunTimeout);
  CAPTURE(result.err);
  CHECK(result.exit_code == 1);
  CHECK(result.err.find("tapstack: duplicate address detection failed: 2001:db8::2 is in use by " +
                        kernel_mac + "; choose another --addr\n") != std::string::npos);
}

TEST_CASE("without --host-addr for IPv6, a kernel side with no address in the prefix is said") {
  enter_private_netns_or_skip();
  run_ip({"tuntap", "add", "dev", "tap0", "mode", "tap"});
  run_ip({"addr", "add", "198.18.0.1/24", "dev", "tap0"});
  run_ip({"link", "set", "tap0", "up"});
  const ProcessResult result = run_up_once({"--addr", "2001:db8::2/64"});
  CAPTURE(result.err);
  CHECK(result.err.find(
            "tapstack: warning: 'tap0' has no IPv6 address in 2001:db8::/64, so the kernel cannot "
            "reach the stack; run 'ip -6 addr add 2001:db8::1/64 dev tap0 nodad', or start with "
            "--host-addr 2001:db8::1/64\n") != std::string::npos);
  CHECK(result.err.find("kernel side 198.18.0.1/24 at ") != std::string::npos);
  CHECK(result.err.find(", with no address in 2001:db8::/64; stop") != std::string::npos);
}

TEST_CASE("without --host-addr, a kernel side that cannot reach the stack is said at once") {
  struct Case {
    std::string name;
    std::vector<std::vector<std::string>> setup;  // ip commands on tap0 before the run
    std::string warning;                          // the line, or "" for none
    std::string kernel_side;                      // in the start line
  };
  const std::vector<Case> cases = {
      {"a fresh TAP",
       {},
       "tapstack: warning: 'tap0' is down and has no IPv4 address in 198.18.0.0/24, so the kernel "
       "cannot reach the stack; run 'ip link set tap0 up' and 'ip addr add 198.18.0.1/24 dev "
       "tap0', or start with --host-addr 198.18.0.1/24\n",
       "kernel side at "},
      {"up, no address",
       {{"tuntap", "add", "dev", "tap0", "mode", "tap"}, {"link", "set", "tap0", "up"}},
       "tapstack: warning: 'tap0' has no IPv4 address in 198.18.0.0/24, so the kernel cannot "
       "reach the stack; run 'ip addr add 198.18.0.1/24 dev tap0', or start with --host-addr "
       "198.18.0.1/24\n",
       ", with no address in 198.18.0.0/24; stop"},
      {"an address on another subnet, down",
       {{"tuntap", "add", "dev", "tap0", "mode", "tap"},
        {"addr", "add", "198.19.0.1/24", "dev", "tap0"}},
       "tapstack: warning: 'tap0' is down and has no IPv4 address in 198.18.0.0/24",
       ", with no address in 198.18.0.0/24, down"},
      {"an address, down",
       {{"tuntap", "add", "dev", "tap0", "mode", "tap"},
        {"addr", "add", "198.18.0.7/24", "dev", "tap0"}},
       "tapstack: warning: 'tap0' is down, so the kernel cannot reach the stack; run 'ip link set "
       "tap0 up', or start with --host-addr 198.18.0.7/24\n",
       "kernel side 198.18.0.7/24 at "},
      {"configured",
       {{"tuntap", "add", "dev", "tap0", "mode", "tap"},
        {"addr", "add", "198.18.0.7/24", "dev", "tap0"},
        {"link", "set", "tap0", "up"}},
       "",
       "kernel side 198.18.0.7/24 at "},
      {"a bridge port: its address is elsewhere",
       {{"tuntap", "add", "dev", "tap0", "mode", "tap"},
        {"link", "add", "br0", "type", "bridge"},
        {"link", "set", "tap0", "master", "br0"},
        {"link", "set", "tap0", "up"}},
       "",
       ", a port of 'br0'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    enter_private_netns_or_skip();
    for (const auto& command : c.setup) run_ip(command);
    const ProcessResult result = run_up_once({});
    CAPTURE(result.err);
    const size_t start_line = result.err.find("; stop with Ctrl-C");
    CHECK(start_line != std::string::npos);
    CHECK(result.err.find(c.kernel_side) < start_line);
    if (c.warning.empty()) {
      CHECK(result.err.find("warning") == std::string::npos);
    } else {
      // At once: before the start line, not at exit.
      CHECK(result.err.find(c.warning) < start_line);
      CHECK(result.err.find("warning", result.err.find("warning") + 1) == std::string::npos);
    }
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
