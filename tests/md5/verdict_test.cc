// The inbound verdict (Linux: tcp_inbound_md5_hash()): each of the five outcomes, and the
// constant-time digest comparison it relies on.
#include <doctest/doctest.h>

#include <cerrno>
#include <string_view>
#include <vector>

#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "md5opt/verdict.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

constexpr std::string_view kKey = "a shared BGP secret";

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

// A data segment 179 → 40179 with "hello" as payload; signed with kKey when `signed_with_md5`.
struct Built {
  std::vector<std::uint8_t> bytes;
  std::optional<std::size_t> digest_offset;
};
Built build_segment(Md5Signer& signer, const IpAddress& source, const IpAddress& destination,
                    bool signed_with_md5) {
  const std::size_t header_size = signed_with_md5 ? 40 : 20;
  std::vector<std::uint8_t> tcp(header_size, 0);
  const std::uint8_t fixed[] = {0x00,
                                0xb3,
                                0x9c,
                                0xf3,
                                0,
                                0,
                                0x10,
                                0,
                                0,
                                0,
                                0x20,
                                0,
                                static_cast<std::uint8_t>(header_size / 4 << 4),
                                0x18,
                                0xfa,
                                0xf0};
  std::copy(std::begin(fixed), std::end(fixed), tcp.begin());
  for (const char c : std::string_view("hello")) tcp.push_back(static_cast<std::uint8_t>(c));
  Built built{tcp, std::nullopt};
  if (!signed_with_md5) return built;
  built.digest_offset = write_md5_option(built.bytes, 20);
  REQUIRE(built.digest_offset);
  const auto status = signer.sign_in_place(source, destination, built.bytes, *built.digest_offset,
                                           text_bytes(kKey));
  REQUIRE_MESSAGE(status.ok(), status.error().message);
  return built;
}

struct Case {
  std::string_view source;
  std::string_view destination;
};
constexpr Case kFamilies[] = {{"198.18.0.1", "198.18.0.2"}, {"2001:db8::1", "2001:db8::2"}};

TEST_CASE("no key and no option: Unsigned, accepted") {
  Md5Signer signer;
  for (const auto& family : kFamilies) {
    CAPTURE(family.source);
    const auto built = build_segment(signer, ip(family.source), ip(family.destination), false);
    const auto segment = split_segment(ip(family.source), ip(family.destination), built.bytes);
    REQUIRE(segment);
    const KeyTable keys;
    const auto verdict = inbound_verdict(signer, keys, *segment);
    CHECK(verdict == Md5Verdict::Unsigned);
    CHECK(accepted(verdict));
    CHECK(nstat_counter(verdict).empty());
  }
}

TEST_CASE("a key and a right digest: Ok, accepted") {
  Md5Signer signer;
  for (const auto& family : kFamilies) {
    CAPTURE(family.source);
    const auto built = build_segment(signer, ip(family.source), ip(family.destination), true);
    const auto segment = split_segment(ip(family.source), ip(family.destination), built.bytes);
    REQUIRE(segment);
    KeyTable keys;
    REQUIRE(keys.add(ip(family.source), text_bytes(kKey)).ok());
    const auto verdict = inbound_verdict(signer, keys, *segment);
    CHECK(verdict == Md5Verdict::Ok);
    CHECK(accepted(verdict));
    CHECK(to_string(verdict) == "Ok");
  }
}

TEST_CASE("a key but no option: NotFound, dropped") {
  Md5Signer signer;
  for (const auto& family : kFamilies) {
    CAPTURE(family.source);
    const auto built = build_segment(signer, ip(family.source), ip(family.destination), false);
    const auto segment = split_segment(ip(family.source), ip(family.destination), built.bytes);
    REQUIRE(segment);
    KeyTable keys;
    REQUIRE(keys.add(ip(family.source), text_bytes(kKey)).ok());
    const auto verdict = inbound_verdict(signer, keys, *segment);
    CHECK(verdict == Md5Verdict::NotFound);
    CHECK_FALSE(accepted(verdict));
    CHECK(nstat_counter(verdict) == "TcpExtTCPMD5NotFound");
  }
}

TEST_CASE("an option but no key for the source: Unexpected, dropped") {
  Md5Signer signer;
  for (const auto& family : kFamilies) {
    CAPTURE(family.source);
    const auto built = build_segment(signer, ip(family.source), ip(family.destination), true);
    const auto segment = split_segment(ip(family.source), ip(family.destination), built.bytes);
    REQUIRE(segment);
    KeyTable keys;  // a key for the destination is no key for the source
    REQUIRE(keys.add(ip(family.destination), text_bytes(kKey)).ok());
    const auto verdict = inbound_verdict(signer, keys, *segment);
    CHECK(verdict == Md5Verdict::Unexpected);
    CHECK(nstat_counter(verdict) == "TcpExtTCPMD5Unexpected");
  }
}

TEST_CASE("a wrong digest: Failure, dropped, whichever bit of the digest is wrong") {
  Md5Signer signer;
  const auto source = ip("198.18.0.1");
  const auto destination = ip("198.18.0.2");
  const auto built = build_segment(signer, source, destination, true);
  const auto key = Md5Key::make(text_bytes(kKey));
  REQUIRE(key.ok());
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bytes = built.bytes;
      bytes[*built.digest_offset + i] ^= static_cast<std::uint8_t>(1 << bit);
      const auto segment = split_segment(source, destination, bytes);
      REQUIRE(segment);
      CAPTURE(i);
      CAPTURE(bit);
      CHECK(inbound_verdict(signer, &*key, built.digest_offset, *segment) == Md5Verdict::Failure);
    }
  }
  CHECK(nstat_counter(Md5Verdict::Failure) == "TcpExtTCPMD5Failure");
}

TEST_CASE("a wrong key, or the addresses swapped: Failure") {
  Md5Signer signer;
  const auto source = ip("2001:db8::1");
  const auto destination = ip("2001:db8::2");
  const auto built = build_segment(signer, source, destination, true);
  const auto wrong_key = Md5Key::make(text_bytes("a shared BGP secreT"));
  const auto right_key = Md5Key::make(text_bytes(kKey));
  const auto segment = split_segment(source, destination, built.bytes);
  const auto swapped = split_segment(destination, source, built.bytes);
  REQUIRE(segment);
  REQUIRE(swapped);
  CHECK(inbound_verdict(signer, &*wrong_key, built.digest_offset, *segment) == Md5Verdict::Failure);
  CHECK(inbound_verdict(signer, &*right_key, built.digest_offset, *swapped) == Md5Verdict::Failure);
  CHECK(inbound_verdict(signer, &*right_key, built.digest_offset, *segment) == Md5Verdict::Ok);
}

TEST_CASE("a digest offset outside the header, or mixed families, cannot verify: Failure") {
  Md5Signer signer;
  const auto built = build_segment(signer, ip("198.18.0.1"), ip("198.18.0.2"), true);
  const auto key = Md5Key::make(text_bytes(kKey));
  const auto segment = split_segment(ip("198.18.0.1"), ip("198.18.0.2"), built.bytes);
  REQUIRE(segment);
  CHECK(inbound_verdict(signer, &*key, 25u, *segment) == Md5Verdict::Failure);
  CHECK(inbound_verdict(signer, &*key, 1000u, *segment) == Md5Verdict::Failure);
  const auto mixed = split_segment(ip("198.18.0.1"), ip("2001:db8::2"), built.bytes);
  REQUIRE(mixed);
  CHECK(inbound_verdict(signer, &*key, built.digest_offset, *mixed) == Md5Verdict::Failure);
  CHECK(signer.digest(*mixed, key->bytes()).error().code == EINVAL);
}

TEST_CASE("sign_in_place refuses a digest place outside the options") {
  Md5Signer signer;
  auto built = build_segment(signer, ip("198.18.0.1"), ip("198.18.0.2"), true);
  const auto source = ip("198.18.0.1");
  const auto destination = ip("198.18.0.2");
  for (const std::size_t offset : {0u, 19u, 25u, 40u}) {
    CAPTURE(offset);
    const auto status =
        signer.sign_in_place(source, destination, built.bytes, offset, text_bytes(kKey));
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == EINVAL);
  }
  CHECK(signer.sign_in_place(source, destination, built.bytes, 24, text_bytes(kKey)).ok());
}

TEST_CASE("constant_time_equal compares every byte, and sizes") {
  const std::vector<std::uint8_t> a(16, 0x5a);
  CHECK(constant_time_equal(a, a));
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto b = a;
    b[i] ^= 0x80;
    CAPTURE(i);
    CHECK_FALSE(constant_time_equal(a, b));
  }
  CHECK_FALSE(constant_time_equal(a, ByteView(a).first(15)));
  CHECK(constant_time_equal(ByteView{}, ByteView{}));
}

}  // namespace
}  // namespace tapstack::md5test
