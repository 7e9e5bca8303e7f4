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

// The usage error of a bgp line, or "" when it was accepted.
std::string error_of(const Parsed<BgpOptions>& parsed) {
  const auto* error = std::get_if<UsageError>(&parsed);
  return error ? error->message : "";
}

TEST_CASE("--peer over IPv6: keys of the peer's family, the IPv4 values BGP needs of us") {
  const auto dual = parse_bgp(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "198.18.0.2/24", "--addr", "2001:db8::2/64", "--peer",
      "2001:db8::1", "--local-as", "65002", "--peer-as", "65001", "--md5", "2001:db8::/64=k"});
  REQUIRE(std::holds_alternative<BgpOptions>(dual));
  const BgpOptions& options = std::get<BgpOptions>(dual);
  CHECK(options.peer == *IpAddress::parse("2001:db8::1"));
  REQUIRE(options.md5_keys.size() == 1);
  CHECK(options.md5_keys[0].covers(options.peer));

  // --md5-key is the key for --peer alone: /128 for an IPv6 one.
  const auto alias = parse_bgp(std::vector<std::string_view>{
      "--tap", "tap0", "--addr", "2001:db8::2/64", "--peer", "2001:db8::1", "--local-as", "1",
      "--peer-as", "2", "--router-id", "198.18.0.2", "--md5-key", "k"});
  REQUIRE(std::holds_alternative<BgpOptions>(alias));
  CHECK(std::get<BgpOptions>(alias).md5_keys.at(0).prefix_length == 128);

  const std::vector<std::string_view> v6_only = {
      "--tap",       "tap0",       "--addr", "2001:db8::2/64", "--peer",
      "2001:db8::1", "--local-as", "1",      "--peer-as",      "2"};
  const auto with = [&](std::vector<std::string_view> extra) {
    std::vector<std::string_view> args = v6_only;
    args.insert(args.end(), extra.begin(), extra.end());
    return error_of(parse_bgp(args));
  };
  CHECK(with({}).find("give --router-id A.B.C.D") != std::string::npos);
  CHECK(with({"--router-id", "198.18.0.2"}) == "");
  CHECK(with({"--router-id", "198.18.0.2", "--announce", "198.18.5.0/24"})
            .find("needs ,next-hop=A.B.C.D") != std::string::npos);
  CHECK(with({"--router-id", "198.18.0.2", "--announce", "198.18.5.0/24,next-hop=198.18.0.2"}) ==
        "");
  CHECK(with({"--router-id", "198.18.0.2", "--md5", "2001:db8::9=k"})
            .find("no --md5 key covers --peer 2001:db8::1") != std::string::npos);
  CHECK(with({"--router-id", "198.18.0.2", "--md5", "2001:db8::1=k", "--md5", "198.18.0.1=k"})
            .find("--md5 198.18.0.1 is a key for IPv4 peers") != std::string::npos);
  CHECK(error_of(parse({"--peer", "2001:db8::1"})).find("given twice") != std::string::npos);
  CHECK(error_of(parse_bgp(std::vector<std::string_view>{"--tap", "tap0", "--addr", "198.18.0.2/24",
                                                         "--peer", "2001:db8::1", "--local-as", "1",
                                                         "--peer-as", "2"}))
            .find("--peer 2001:db8::1 is IPv6, and the stack has no IPv6 address") !=
        std::string::npos);
}

}  // namespace
}  // namespace tapstack::cli
