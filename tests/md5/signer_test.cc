// Md5Signer::digest against RFC 2385 §2.0 spelled out by hand: MD5 of the pseudo-header, the
// fixed header with its checksum zeroed, the payload and the key, concatenated. Both address
// families, with and without payload, short and long keys; options never count.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "md5opt/md5_nettle.h"
#include "md5opt/signer.h"
#include "tests/md5/hex.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

std::vector<std::uint8_t> tcp_header(std::size_t options_size) {
  std::vector<std::uint8_t> header = hex("9cf300b3 01020304 05060708 5018faf0 beef0000");
  header[12] = static_cast<std::uint8_t>((20 + options_size) / 4 << 4);
  for (std::size_t i = 0; i < options_size; ++i) header.push_back(static_cast<std::uint8_t>(i));
  return header;
}

// RFC 2385 §2.0, written out independently of md5opt/signer.cc.
std::vector<std::uint8_t> hashed_bytes(const TcpSegment& s, ByteView key) {
  std::vector<std::uint8_t> bytes(s.source.bytes().begin(), s.source.bytes().end());
  bytes.insert(bytes.end(), s.destination.bytes().begin(), s.destination.bytes().end());
  const std::size_t length = s.header.size() + s.payload.size();
  if (s.source.is_ipv4()) {
    bytes.insert(bytes.end(),
                 {0, 6, static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)});
  } else {
    bytes.insert(
        bytes.end(),
        {static_cast<std::uint8_t>(length >> 24), static_cast<std::uint8_t>(length >> 16),
         static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length), 0, 0, 0, 6});
  }
  bytes.insert(bytes.end(), s.header.begin(), s.header.begin() + 16);
  bytes.insert(bytes.end(), {0, 0});  // the checksum, as zero
  bytes.insert(bytes.end(), s.header.begin() + 18, s.header.begin() + 20);
  bytes.insert(bytes.end(), s.payload.begin(), s.payload.end());
  bytes.insert(bytes.end(), key.begin(), key.end());
  return bytes;
}

TEST_CASE("the digest is MD5 of pseudo-header, fixed header, payload and key, in that order") {
  Md5Signer signer;
  auto reference = make_nettle_md5();  // another library for the expected side
  for (const char* source : {"198.18.0.2", "2001:db8::2"}) {
    const char* destination =
        std::string(source).find(':') == std::string::npos ? "198.18.0.1" : "2001:db8::1";
    for (const std::size_t options : {0u, 20u, 40u}) {
      for (const std::size_t payload_size : {0u, 1u, 63u, 1448u}) {
        for (const std::size_t key_size : {1u, 22u, 80u, 81u}) {
          CAPTURE(source);
          CAPTURE(options);
          CAPTURE(payload_size);
          CAPTURE(key_size);
          const auto header = tcp_header(options);
          const std::vector<std::uint8_t> payload(payload_size, 0x5a);
          const std::string key(key_size, 'k');
          const TcpSegment segment{*IpAddress::parse(source), *IpAddress::parse(destination),
                                   header, payload};
          const auto digest = signer.digest(segment, text_bytes(key));
          REQUIRE_MESSAGE(digest.ok(), digest.error().message);
          const auto expected = reference->digest_of(hashed_bytes(segment, text_bytes(key)));
          CHECK(to_hex(*digest) == to_hex(*expected));
        }
      }
    }
  }
}

TEST_CASE("the signer refuses what has no digest") {
  Md5Signer signer;
  const auto header = tcp_header(0);
  const auto v4 = *IpAddress::parse("198.18.0.1");
  const auto v6 = *IpAddress::parse("2001:db8::1");
  CHECK(signer.digest({v4, v6, header, {}}, text_bytes("k")).error().code == EINVAL);
  CHECK(signer.digest({v4, v4, ByteView(header).first(19), {}}, text_bytes("k")).error().code ==
        EINVAL);
  const std::vector<std::uint8_t> huge(65536 - 20, 0);
  CHECK(signer.digest({v4, v4, header, huge}, text_bytes("k")).error().code == EMSGSIZE);
  CHECK(signer.digest({v4, v4, header, ByteView(huge).first(65535 - 20)}, text_bytes("k")).ok());
  CHECK(signer.digest({v6, v6, header, huge}, text_bytes("k")).ok());  // a jumbogram's length
}

TEST_CASE("split_segment cuts at the data offset") {
  auto tcp = tcp_header(12);
  tcp.insert(tcp.end(), {1, 2, 3});
  const auto v4 = *IpAddress::parse("198.18.0.1");
  const auto segment = split_segment(v4, v4, tcp);
  REQUIRE(segment);
  CHECK(segment->header.size() == 32);
  CHECK(segment->payload.size() == 3);
  tcp[12] = 0x40;
  CHECK_FALSE(split_segment(v4, v4, tcp));
  tcp[12] = 0xf0;
  CHECK_FALSE(split_segment(v4, v4, tcp));
}

}  // namespace
}  // namespace tapstack::md5test
