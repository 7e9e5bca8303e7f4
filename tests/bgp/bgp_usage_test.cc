// `tapstack bgp`'s contract that needs no privileges: help on stdout with exit 0; bad
// arguments exit 2 with one line on stderr that names the problem (and never shows a key).
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

// `bgp` with every required option, the peer and the AS numbers as given.
std::vector<std::string> bgp_with(std::string peer, std::string local_as, std::string peer_as) {
  return {"bgp", "--tap",      "tap0",   "--addr",    "198.18.0.2/24", "--peer",
          peer,  "--local-as", local_as, "--peer-as", peer_as};
}

std::vector<std::string> bgp(std::vector<std::string> extra) {
  std::vector<std::string> args = bgp_with("198.18.0.1", "65002", "65001");
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST_CASE("tapstack --help lists bgp; bgp --help shows its options") {
  CHECK(tapstack({"--help"}).out.find("\n  bgp ") != std::string::npos);
  for (const auto& args : {std::vector<std::string>{"bgp", "--help"}, {"help", "bgp"}}) {
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 0);
    CHECK(result.out.starts_with("usage: tapstack bgp"));
    for (const char* option :
         {"--peer IP", "--md5 PEER[/PREFIX]=KEY", "--md5-key KEY", "--announce PREFIX", "--passive",
          "--hold SECONDS", "--connect-retry SECONDS", "(default 10", "datacenter profile",
          "--json", "\"time\"", "\"session-ended\"", "connection attempt 2 failed",
          "(session with 198.18.0.1 ended", "SIGHUP", "--tap NAME"}) {
      CHECK_MESSAGE(result.out.find(option) != std::string::npos, option);
    }
  }
}

TEST_CASE("bgp usage errors: one line naming the problem, exit 2") {
  const std::string long_key(81, 'k');
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--local-as", "1", "--peer-as", "2"},
       "missing --peer"},
      {{"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "198.18.0.1", "--peer-as",
        "2"},
       "missing --local-as"},
      {{"bgp", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "198.18.0.1", "--local-as",
        "2"},
       "missing --peer-as"},
      {bgp({"--peer-as", "3"}), "option --peer-as given twice"},
      {bgp_with("198.18.1.1", "1", "2"), "not in the subnet"},
      {bgp_with("198.18.0.2", "1", "2"), "the stack's own address"},
      {bgp_with("198.18.0.1", "0", "2"), "bad --local-as '0'"},
      {bgp_with("198.18.0.1", "4294967296", "2"), "bad --local-as"},
      {bgp_with("198.18.0.1", "1", "23456"), "AS_TRANS"},
      {bgp({"--hold", "2"}), "bad --hold '2'"},
      {bgp({"--hold", "65536"}), "bad --hold"},
      {bgp({"--announce", "198.18.5.1/24"}), "no host bits"},
      {bgp({"--announce", "198.18.5.0/24,nexthop=198.18.0.9"}), "next-hop=IP"},
      {bgp({"--announce", "198.18.5.0/24,next-hop=0.0.0.0"}), "unicast"},
      {bgp({"--md5-key", "hex:123"}), "bad --md5-key: after hex:"},
      {bgp({"--md5-key", long_key}), "bad --md5-key: 81 bytes"},
      {bgp({"--md5-key="}), "--md5-key"},
      // §2 of issue 19: --md5's form given to --md5-key is not taken as a key.
      {bgp({"--md5-key", "198.18.0.1=s3cr3t"}),
       "bad --md5-key '198.18.0.1=...': --md5-key takes the key alone; for a key with its peer "
       "write --md5 198.18.0.1=KEY"},
      {bgp({"--md5-key", "198.18.0.0/24=s3cr3t"}), "write --md5 198.18.0.0/24=KEY"},
      {bgp({"--md5-key", "s3cr3t", "--md5", "198.18.0.1=s3cr3t"}), "both given"},
      {bgp({"--md5", "s3cr3t"}), "bad --md5: expected PEER[/PREFIX]=KEY"},
      {bgp({"--md5", "198.18.0.1=hex:zz"}), "bad --md5 key for 198.18.0.1: after hex:"},
      {bgp({"--md5", "198.18.1.0/24=s3cr3t", "--md5", "198.18.0.9=s3cr3t"}),
       "no --md5 key covers --peer 198.18.0.1 (keys for 198.18.1.0/24, 198.18.0.9): the session "
       "would be unsigned; add --md5 198.18.0.1=KEY"},
      {bgp({"--announce", "198.18.5.0/24,next-hop=198.18.0.1"}),
       "bad --announce '198.18.5.0/24,next-hop=198.18.0.1': the next hop is --peer's own "
       "address"},
      {bgp({"--router-id", "1.2.3"}), "bad --router-id"},
      {bgp({"--connect-retry", "0"}), "bad --connect-retry"},
      {bgp({"--passive=yes"}), "takes no value"},
      {bgp({"--bogus"}), "unknown option '--bogus'"},
  };
  for (const auto& [args, expected] : cases) {
    CAPTURE(fmt::format("tapstack {}", fmt::join(args, " ")));
    const ProcessResult result = tapstack(args);
    CHECK(result.exit_code == 2);
    CHECK(result.out.empty());
    CHECK(result.err.starts_with("tapstack: "));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK_MESSAGE(result.err.find(expected) != std::string::npos, result.err);
    CHECK(result.err.find(long_key) == std::string::npos);
    CHECK(result.err.find("s3cr3t") == std::string::npos);
  }
}

}  // namespace
}  // namespace tapstack::testing
