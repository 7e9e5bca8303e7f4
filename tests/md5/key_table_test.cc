// The key table with the semantics of Linux's TCP_MD5SIG / TCP_MD5SIG_EXT: one key per
// (address, prefix), longest prefix wins, 1 to 80 bytes, an empty key deletes.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "md5opt/key_table.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

IpAddress ip(std::string_view text) {
  const auto address = IpAddress::parse(text);
  REQUIRE_MESSAGE(address, text);
  return *address;
}

// The key the table gives a peer, as text; "" when none.
std::string key_for(const KeyTable& keys, std::string_view peer) {
  const Md5Key* key = keys.lookup(ip(peer));
  if (!key) return "";
  return std::string(reinterpret_cast<const char*>(key->bytes().data()), key->bytes().size());
}

TEST_CASE("addresses parse, print and match prefixes") {
  CHECK(ip("198.18.0.1").to_string() == "198.18.0.1");
  CHECK(ip("2001:db8:0:0::1").to_string() == "2001:db8::1");
  CHECK(ip("198.18.0.1").bytes().size() == 4);
  CHECK(ip("2001:db8::1").bytes().size() == 16);
  CHECK_FALSE(IpAddress::parse("198.18.0"));
  CHECK_FALSE(IpAddress::parse("198.18.0.1/32"));
  CHECK_FALSE(IpAddress::parse("2001:db8::1::2"));
  CHECK(ip("198.18.0.1").matches_prefix(ip("198.18.0.200"), 24));
  CHECK(ip("198.18.0.1").matches_prefix(ip("198.19.255.255"), 15));
  CHECK_FALSE(ip("198.18.0.1").matches_prefix(ip("198.20.0.1"), 15));
  CHECK(ip("198.18.0.1").matches_prefix(ip("10.0.0.1"), 0));
  CHECK_FALSE(ip("198.18.0.1").matches_prefix(ip("198.18.0.2"), 32));
  CHECK(ip("2001:db8::1").matches_prefix(ip("2001:db8:ffff::1"), 32));
  CHECK_FALSE(ip("2001:db8::1").matches_prefix(ip("2001:db9::1"), 32));
  CHECK_FALSE(ip("0.0.0.0").matches_prefix(ip("::"), 0));  // never across families
}

TEST_CASE("the longest matching prefix wins: /32 over /24 over /0") {
  KeyTable keys;
  REQUIRE(keys.add(ip("0.0.0.0"), 0, text_bytes("any")).ok());
  REQUIRE(keys.add(ip("198.18.0.7"), text_bytes("exact")).ok());
  REQUIRE(keys.add(ip("198.18.0.0"), 24, text_bytes("subnet")).ok());
  CHECK(key_for(keys, "198.18.0.7") == "exact");
  CHECK(key_for(keys, "198.18.0.8") == "subnet");
  CHECK(key_for(keys, "198.18.1.7") == "any");
  CHECK(key_for(keys, "2001:db8::7") == "");  // an IPv4 /0 is not an IPv6 key
}

TEST_CASE("the order of adding does not change which prefix wins") {
  KeyTable keys;
  REQUIRE(keys.add(ip("198.18.0.0"), 24, text_bytes("subnet")).ok());
  REQUIRE(keys.add(ip("198.18.0.7"), 32, text_bytes("exact")).ok());
  REQUIRE(keys.add(ip("0.0.0.0"), 0, text_bytes("any")).ok());
  CHECK(key_for(keys, "198.18.0.7") == "exact");
  CHECK(key_for(keys, "198.18.0.9") == "subnet");
}

TEST_CASE("IPv6 keys: /128, /64, /0") {
  KeyTable keys;
  REQUIRE(keys.add(ip("2001:db8::1"), text_bytes("host")).ok());
  REQUIRE(keys.add(ip("2001:db8::"), 64, text_bytes("net")).ok());
  REQUIRE(keys.add(ip("::"), 0, text_bytes("any6")).ok());
  CHECK(key_for(keys, "2001:db8::1") == "host");
  CHECK(key_for(keys, "2001:db8::2") == "net");
  CHECK(key_for(keys, "2001:db8:1::1") == "any6");
  CHECK(key_for(keys, "198.18.0.1") == "");
}

TEST_CASE("a table without a matching entry gives no key") {
  KeyTable keys;
  CHECK(keys.lookup(ip("198.18.0.1")) == nullptr);
  REQUIRE(keys.add(ip("198.18.0.1"), text_bytes("k")).ok());
  CHECK(keys.lookup(ip("198.18.0.2")) == nullptr);
}

TEST_CASE("adding to an existing (address, prefix) replaces the key in place") {
  KeyTable keys;
  REQUIRE(keys.add(ip("198.18.0.1"), text_bytes("old")).ok());
  REQUIRE(keys.add(ip("198.18.0.1"), text_bytes("a longer new key")).ok());
  CHECK(keys.entries().size() == 1);
  CHECK(key_for(keys, "198.18.0.1") == "a longer new key");
  REQUIRE(keys.add(ip("198.18.0.1"), text_bytes("short")).ok());
  CHECK(key_for(keys, "198.18.0.1") == "short");  // no bytes of the longer key left over
}

TEST_CASE("the same address with another prefix is another entry") {
  KeyTable keys;
  REQUIRE(keys.add(ip("198.18.0.1"), 32, text_bytes("host")).ok());
  REQUIRE(keys.add(ip("198.18.0.1"), 24, text_bytes("net")).ok());
  CHECK(keys.entries().size() == 2);
  CHECK(key_for(keys, "198.18.0.1") == "host");
  CHECK(key_for(keys, "198.18.0.2") == "net");
}

TEST_CASE("an empty key deletes; deleting what is not there is ENOENT") {
  KeyTable keys;
  REQUIRE(keys.add(ip("198.18.0.1"), text_bytes("k")).ok());
  REQUIRE(keys.add(ip("198.18.0.0"), 24, text_bytes("net")).ok());
  CHECK(keys.add(ip("198.18.0.1"), ByteView{}).ok());
  CHECK(key_for(keys, "198.18.0.1") == "net");
  const auto again = keys.add(ip("198.18.0.1"), ByteView{});
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ENOENT);
  CHECK(keys.remove(ip("198.18.0.0"), 24).ok());
  CHECK(keys.empty());
  const auto missing = keys.remove(ip("2001:db8::1"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ENOENT);
  CHECK(missing.error().message == "no MD5 key for 2001:db8::1/128");
}

TEST_CASE("deleting needs the exact address and prefix, as given when added") {
  KeyTable keys;
  REQUIRE(keys.add(ip("198.18.0.7"), 24, text_bytes("net")).ok());
  CHECK(keys.remove(ip("198.18.0.0"), 24).error().code == ENOENT);
  CHECK(keys.remove(ip("198.18.0.7"), 32).error().code == ENOENT);
  CHECK(key_for(keys, "198.18.0.9") == "net");
  CHECK(keys.remove(ip("198.18.0.7"), 24).ok());
}

TEST_CASE("keys are 1 to 80 bytes: 80 is accepted, 81 is EINVAL") {
  KeyTable keys;
  const std::string longest(80, 'k');
  CHECK(keys.add(ip("198.18.0.1"), text_bytes(longest)).ok());
  CHECK(key_for(keys, "198.18.0.1") == longest);
  const auto too_long = keys.add(ip("198.18.0.2"), text_bytes(std::string(81, 'k')));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().code == EINVAL);
  CHECK(too_long.error().message == "an MD5 key has at most 80 bytes, this one has 81");
  CHECK(keys.lookup(ip("198.18.0.2")) == nullptr);
  CHECK(keys.add(ip("198.18.0.3"), text_bytes("x")).ok());  // one byte is enough
}

TEST_CASE("a prefix longer than the address is EINVAL") {
  KeyTable keys;
  CHECK(keys.add(ip("198.18.0.1"), 33, text_bytes("k")).error().code == EINVAL);
  CHECK(keys.add(ip("198.18.0.1"), -1, text_bytes("k")).error().code == EINVAL);
  CHECK(keys.add(ip("2001:db8::1"), 129, text_bytes("k")).error().code == EINVAL);
  CHECK(keys.add(ip("2001:db8::1"), 128, text_bytes("k")).ok());
  CHECK(keys.entries().size() == 1);
}

TEST_CASE("Md5Key::make refuses empty and over-long keys") {
  CHECK(Md5Key::make(ByteView{}).error().code == EINVAL);
  CHECK(Md5Key::make(text_bytes(std::string(81, 'k'))).error().code == EINVAL);
  const auto key = Md5Key::make(text_bytes("lolcats"));
  REQUIRE(key.ok());
  CHECK(key->bytes().size() == 7);
}

}  // namespace
}  // namespace tapstack::md5test
