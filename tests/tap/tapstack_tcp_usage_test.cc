// The contract of `tapstack serve` and `tapstack connect` with their callers that needs no
// privileges: help on stdout with exit 0; bad arguments exit 2 with one line on stderr;
// input and output files that cannot be opened exit 1 before anything touches a TAP.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/support/subprocess.h"
#include "tests/tap/test_paths.h"

namespace tapstack::testing {
namespace {

ProcessResult tapstack(std::vector<std::string> args) {
  args.insert(args.begin(), tapstack_binary());
  return run_process(args, milliseconds(10'000));
}

void check_one_error_line(const std::string& err) {
  CHECK(err.starts_with("tapstack: "));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

const std::vector<std::string> kCommon = {"--tap", "tap0", "--addr", "198.18.0.2/24"};

std::vector<std::string> command(std::string name, std::vector<std::string> extra) {
  std::vector<std::string> args = {std::move(name)};
  args.insert(args.end(), kCommon.begin(), kCommon.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST_CASE("tapstack --help lists serve and connect") {
  const ProcessResult result = tapstack({"--help"});
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("\n  serve ") != std::string::npos);
  CHECK(result.out.find("\n  connect ") != std::string::npos);
}

TEST_CASE("serve and connect --help: on stdout, exit 0, with their options and the common ones") {
  const std::vector<std::tuple<std::vector<std::string>, std::string, std::string>> cases = {
      {{"serve", "--help"}, "usage: tapstack serve", "--mode MODE"},
      {{"help", "serve"}, "usage: tapstack serve", "--once"},
      {{"serve", "--port", "80", "--help"}, "usage: tapstack serve", "--host-addr"},
      {{"connect", "--help"}, "usage: tapstack connect", "--to IP:PORT"},
      {{"help", "connect"}, "usage: tapstack connect", "--timeout SECONDS"},
      {{"connect", "-h"}, "usage: tapstack connect", "--pcap FILE"},
      {{"serve", "--help"}, "usage: tapstack serve", "--md5 PEER[/PREFIX]=KEY"},
      {{"connect", "--help"}, "usage: tapstack connect", "--md5 PEER[/PREFIX]=KEY"},
  };
  for (const auto& [args, start, option] : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 0);
    CHECK(result.out.starts_with(start));
    CHECK(result.out.find(option) != std::string::npos);
    CHECK(result.err.empty());
  }
}

TEST_CASE("bad arguments: exit 2, one line on stderr that points to the help") {
  const std::vector<std::vector<std::string>> cases = {
      command("serve", {}),
      command("serve", {"--port", "0"}),
      command("serve", {"--port", "70000"}),
      command("serve", {"--port", "abc"}),
      command("serve", {"--port", "80", "--mode", "shout"}),
      {"serve", "--port", "80"},
      command("connect", {}),
      command("connect", {"--to", "198.18.0.1"}),
      command("connect", {"--to", "198.18.0.1:0"}),
      command("connect", {"--to", "nowhere:80"}),
      command("connect", {"--to", "198.18.0.1:80", "--timeout", "never"}),
      {"connect", "--to", "198.18.0.1:80"},
      command("serve", {"--port", "6666", "--md5", "198.18.0.1=" + std::string(81, 'k')}),
      command("serve", {"--port", "6666", "--md5", "198.18.0.1="}),
      command("serve", {"--port", "6666", "--md5", "198.18.0.1"}),
      command("connect", {"--to", "198.18.0.1:6666", "--md5", "198.18.0.1=hex:xyz"}),
      command("connect", {"--to", "198.18.0.1:6666", "--md5", "198.18.0.1/40=12345"}),
      command("connect", {"--to", "198.18.0.1:6666", "--md5"}),
  };
  for (const auto& args : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 2);
    check_one_error_line(result.err);
    CHECK(result.err.find(fmt::format("(see 'tapstack {} --help')", args[0])) != std::string::npos);
    CHECK(result.out.empty());
  }
}

TEST_CASE("files that cannot be opened: exit 1, one line naming the file") {
  const std::vector<std::vector<std::string>> cases = {
      command("serve", {"--port", "80", "--output", "/nonexistent-directory/out"}),
      command("connect", {"--to", "198.18.0.1:80", "--input", "/nonexistent-directory/in"}),
      command("connect", {"--to", "198.18.0.1:80", "--output", "/nonexistent-directory/out"}),
  };
  for (const auto& args : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 1);
    check_one_error_line(result.err);
    CHECK(result.err.find("/nonexistent-directory/") != std::string::npos);
  }
}

}  // namespace
}  // namespace tapstack::testing
