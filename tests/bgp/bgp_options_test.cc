// What parse_bgp makes of the key options: --md5 as serve and connect take it, --md5-key as
// the key for --peer alone, and the check that a key covers --peer.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "tools/bgp_command.h"

namespace tapstack::cli {
namespace {

Parsed<BgpOptions> parse(std::vector<std::string_view> extra) {
  std::vector<std::string_view> args = {"--tap",     "tap0",       "--addr",     "198.18.0.2/24",
                                        "--peer",    "198.18.0.1", "--local-as", "65002",
                                        "--peer-as", "65001"};
  args.insert(args.end(), extra.begin(), extra.end());
  return parse_bgp(args);
}

std::vector<uint8_t> bytes(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

TEST_CASE("--md5 keys: for the peer, for a prefix covering it, several; --md5-key for --peer") {
  const auto one = parse({"--md5", "198.18.0.1=secret"});
  REQUIRE(std::holds_alternative<BgpOptions>(one));
  const auto& keys = std::get<BgpOptions>(one).md5_keys;
  REQUIRE(keys.size() == 1);
  CHECK(keys[0].peer == *Ipv4Address::parse("198.18.0.1"));
  CHECK(keys[0].prefix_length == 32);
  CHECK(keys[0].key == bytes("secret"));

  const auto prefixes = parse({"--md5", "198.18.9.9=other", "--md5", "198.18.0.0/24=hex:6b6579"});
  REQUIRE(std::holds_alternative<BgpOptions>(prefixes));
  REQUIRE(std::get<BgpOptions>(prefixes).md5_keys.size() == 2);
  CHECK(std::get<BgpOptions>(prefixes).md5_keys[1].prefix_length == 24);
  CHECK(std::get<BgpOptions>(prefixes).md5_keys[1].key == bytes("key"));

  // --md5-key before --peer is still the key for --peer; '=' later in a key is its own.
  const auto alias = parse_bgp(std::vector<std::string_view>{
      "--md5-key", "a=b", "--tap", "tap0", "--addr", "198.18.0.2/24", "--peer", "198.18.0.1",
      "--local-as", "65002", "--peer-as", "65001"});
  REQUIRE(std::holds_alternative<BgpOptions>(alias));
  REQUIRE(std::get<BgpOptions>(alias).md5_keys.size() == 1);
  CHECK(std::get<BgpOptions>(alias).md5_keys[0].peer == *Ipv4Address::parse("198.18.0.1"));
  CHECK(std::get<BgpOptions>(alias).md5_keys[0].key == bytes("a=b"));

  const auto unsigned_session = parse({});
  REQUIRE(std::holds_alternative<BgpOptions>(unsigned_session));
  CHECK(std::get<BgpOptions>(unsigned_session).md5_keys.empty());
}

TEST_CASE("the ConnectRetry time: 10 s by default, --connect-retry as given") {
  CHECK(std::get<BgpOptions>(parse({})).connect_retry == Duration::seconds(10));
  CHECK(std::get<BgpOptions>(parse({"--connect-retry", "0.5"})).connect_retry ==
        Duration::milliseconds(500));
}

}  // namespace
}  // namespace tapstack::cli
