// The tapstack binary's contract with its caller: exit 2 and one line on stderr for bad
// arguments, help on stdout with exit 0, exit 1 and one line for runtime failures. Needs no
// privileges: nothing here gets as far as opening a TAP device.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/support/subprocess.h"
#include "tests/tap/test_paths.h"
#include "tools/build_info.h"

namespace tapstack::testing {
namespace {

ProcessResult tapstack(std::vector<std::string> args) {
  args.insert(args.begin(), tapstack_binary());
  return run_process(args, milliseconds(10'000));
}

// Exactly one line, "tapstack: ...\n".
void check_one_error_line(const std::string& err) {
  CHECK(err.starts_with("tapstack: "));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(err.ends_with("\n"));
}

TEST_CASE("bad arguments: exit 2, one line on stderr, nothing on stdout") {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"bogus"},
      {"--bogus"},
      {"up"},
      {"up", "--tap", "tap0"},
      {"up", "--addr", "198.18.0.2/24"},
      {"up", "--tap"},
      {"up", "--tap", "tap0", "--addr", "198.18.0.2"},
      {"up", "--tap", "tap0", "--addr", "300.18.0.2/24"},
      {"up", "--tap", "tap0", "--addr", "198.18.0.2/24", "--mac", "nonsense"},
      {"up", "--tap", "tap0", "--addr", "198.18.0.2/24", "--unknown"},
      {"up", "--tap", "name-longer-than-15", "--addr", "198.18.0.2/24"},
      {"up", "--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "0"},
      {"up", "--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "17"},
      {"up", "--tap", "tap0", "--addr", "198.18.0.2/24", "--tap-queues", "1.5"},
      {"serve", "--tap", "tap0", "--addr", "198.18.0.2/24", "--port", "5", "--tap-queues=x"},
      {"connect", "--tap", "tap0", "--addr", "198.18.0.2/24", "--to", "198.18.0.1:5",
       "--tap-queues", "99"},
      {"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "198.18.0.1", "--local-as", "1",
       "--peer-as", "2", "--tap-queues", "0"},
      {"help", "nosuchcommand"},
      {"--version", "extra"},
  };
  for (const auto& args : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 2);
    check_one_error_line(result.err);
    CHECK(result.out.empty());
  }
}

TEST_CASE("IPv6 on the command line: bad input is exit 2 and one line saying what is wrong") {
  struct Case {
    std::vector<std::string> args;
    std::string expected;  // a part of the line
  };
  const std::vector<Case> cases = {
      {{"connect", "--tap", "tap0", "--addr", "2001:db8::2/64", "--to", "2001:db8::1:179"},
       "bad --to '2001:db8::1:179': an IPv6 address needs brackets before the port, like "
       "[2001:db8::1]:179 (see 'tapstack connect --help')"},
      {{"connect", "--tap", "tap0", "--addr", "198.18.0.2/24", "--to", "[2001:db8::1]:179"},
       "--to 2001:db8::1 is IPv6, and the stack has no IPv6 address"},
      {{"up", "--tap", "tap0", "--addr", "2001:db8::2/129"}, "an IPv6 prefix length is 1 to 128"},
      {{"up", "--tap", "tap0", "--addr", "198.18.0.2/33"}, "an IPv4 prefix length is 1 to 32"},
      {{"up", "--tap", "tap0", "--addr", "2001:db8::2/64", "--addr", "2001:db8::3/64"},
       "option --addr given twice for IPv6"},
      {{"up", "--tap", "tap0", "--addr", "198.18.0.2/24", "--addr", "198.18.0.3/24"},
       "option --addr given twice for IPv4"},
      {{"up", "--tap", "tap0", "--addr", "2001:db8::2/64", "--host-addr", "2001:db8:1::1/64"},
       "not in the same subnet"},
      {{"up", "--tap", "tap0", "--addr", "2001:db8::2/64", "--gateway", "2001:db8:1::1"},
       "is not on the link"},
      {{"serve", "--tap", "tap0", "--addr", "198.18.0.2/24", "--port", "179", "--md5",
        "2001:db8::/64=k"},
       "--md5 2001:db8::/64 is a key for IPv6 peers, and the stack has no IPv6 --addr"},
      {{"serve", "--tap", "tap0", "--addr", "2001:db8::2/64", "--port", "179", "--md5",
        "2001:db8::/129=k"},
       "bad --md5 prefix '129'"},
      {{"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "198.18.0.1", "--local-as",
        "1", "--peer-as", "2", "--router-id", "2001:db8::2"},
       "bad --router-id '2001:db8::2': an IPv6 address where an IPv4 one is needed"},
      {{"bgp", "--tap", "tap0", "--addr", "2001:db8::2/64", "--peer", "2001:db8::1", "--local-as",
        "1", "--peer-as", "2"},
       "without an IPv4 --addr, give --router-id A.B.C.D"},
      {{"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "2001:db8::1", "--local-as",
        "1", "--peer-as", "2"},
       "--peer 2001:db8::1 is IPv6, and the stack has no IPv6 address"},
      {{"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "198.18.0.1", "--local-as",
        "1", "--peer-as", "2", "--announce", "198.18.5.0/24,next-hop=2001:db8::1"},
       "an IPv6 next hop where an IPv4 one is needed"},
  };
  for (const Case& c : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(c.args, " ")));
    const ProcessResult result = tapstack(c.args);
    CHECK(result.exit_code == 2);
    check_one_error_line(result.err);
    CHECK(result.err.find(c.expected) != std::string::npos);
    CHECK(result.out.empty());
  }
}

TEST_CASE("an unknown option that is a near miss says what was meant, in every command") {
  const std::vector<std::string> common = {"--tap", "tap0", "--addr", "198.18.0.2/24"};
  const std::vector<std::string> bgp = {"--peer", "198.18.0.1", "--local-as",
                                        "1",      "--peer-as",  "2"};
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"up", "--host_addr", "198.18.0.1/24"},
       "unknown option '--host_addr'; did you mean '--host-addr'? (see 'tapstack up --help')"},
      {{"serve", "--port", "5", "--md5-key", "198.18.0.1=k"},
       "unknown option '--md5-key'; did you mean '--md5'?"},
      {{"serve", "--port", "5", "--mdoe", "echo"},
       "unknown option '--mdoe'; did you mean '--mode'?"},
      {{"connect", "--to", "198.18.0.1:5", "--timout", "3"},
       "unknown option '--timout'; did you mean '--timeout'?"},
      {{"bgp", "--pasive"}, "unknown option '--pasive'; did you mean '--passive'?"},
      {{"bgp", "--router_id", "198.18.0.2"},
       "unknown option '--router_id'; did you mean '--router-id'?"},
      {{"up", "--frobnicate"}, "unknown option '--frobnicate' (see"},  // nothing close
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.begin() + 1, common.begin(), common.end());
    if (args[0] == "bgp") args.insert(args.begin() + 1, bgp.begin(), bgp.end());
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 2);
    check_one_error_line(result.err);
    CHECK(result.err.find(c.expected) != std::string::npos);
  }
  CHECK(tapstack({"serv"}).err ==
        "tapstack: unknown command 'serv'; did you mean 'serve'? (see 'tapstack --help')\n");
  CHECK(
      tapstack({"--verison"}).err ==
      "tapstack: unknown option '--verison'; did you mean '--version'? (see 'tapstack --help')\n");
}

TEST_CASE("help: on stdout, exit 0") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--help"}, "usage: tapstack COMMAND"},
      {{"-h"}, "usage: tapstack COMMAND"},
      {{"help"}, "usage: tapstack COMMAND"},
      {{"help", "up"}, "usage: tapstack up"},
      {{"up", "--help"}, "usage: tapstack up"},
      {{"up", "--tap", "tap0", "--help"}, "usage: tapstack up"},
  };
  for (const auto& [args, expected] : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 0);
    CHECK(result.out.starts_with(expected));
    CHECK(result.err.empty());
  }
  CHECK(tapstack({"up", "--help"}).out.find("--host-addr") != std::string::npos);
  for (const std::string command : {"up", "serve", "connect", "bgp"}) {
    CAPTURE(command);
    CHECK(tapstack({command, "--help"}).out.find("--tap-queues N") != std::string::npos);
  }
}

// The binary under test was built in this test's configuration, so it must describe the same
// build: optimised in the default one, not optimised (and saying so) under --config=asan.
TEST_CASE("--version says how the binary was built") {
  const ProcessResult result = tapstack({"--version"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == fmt::format("tapstack 0.1.0, {}\n", cli::describe_build()));
  CHECK(result.err.empty());
  const cli::BuildInfo build = cli::build_info();
  CHECK(build.optimised == (build.compilation_mode == "opt" && !build.sanitized));
  CHECK(cli::slow_build_warning().empty() == build.optimised);
}

TEST_CASE("an output file that cannot be written: exit 1, one line naming the file") {
  const std::vector<std::string> common = {"up", "--tap", "tap0", "--addr", "198.18.0.2/24"};
  for (const std::string option : {"--pcap", "--stats"}) {
    CAPTURE(option);
    std::vector<std::string> args = common;
    args.insert(args.end(), {option, "/nonexistent-directory/file"});
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 1);
    check_one_error_line(result.err);
    CHECK(result.err.find("/nonexistent-directory/file") != std::string::npos);
  }
}

}  // namespace
}  // namespace tapstack::testing
