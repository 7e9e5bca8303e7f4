#include "tests/md5/kernel_checks.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "md5opt/option.h"
#include "md5opt/verdict.h"
#include "tests/md5/hex.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

// The kernel's segment, taken apart once, with the key it was signed with.
struct Signed {
  IpAddress source;
  IpAddress destination;
  std::vector<std::uint8_t> tcp;  // header and payload
  std::size_t digest_offset = 0;
  std::vector<std::uint8_t> key;
};

// The verdict of a receiver holding `key` for the source (none when empty).
Md5Verdict verdict(Md5Signer& signer, const IpAddress& source, const IpAddress& destination,
                   ByteView tcp, ByteView key) {
  const auto segment = split_segment(source, destination, tcp);
  if (!segment) return Md5Verdict::Failure;
  KeyTable keys;
  if (!key.empty() && !keys.add(source, key).ok()) return Md5Verdict::Failure;
  return inbound_verdict(signer, keys, *segment);
}

Md5Verdict verdict(Md5Signer& signer, const Signed& s) {
  return verdict(signer, s.source, s.destination, s.tcp, s.key);
}

void check_resigning_reproduces_it(Md5Signer& signer, const Signed& s) {
  auto tcp = s.tcp;
  std::fill_n(tcp.begin() + static_cast<std::ptrdiff_t>(s.digest_offset), kDigestSize, 0);
  const auto status = signer.sign_in_place(s.source, s.destination, tcp, s.digest_offset, s.key);
  REQUIRE_MESSAGE(status.ok(), status.error().message);
  CHECK(to_hex(tcp) == to_hex(s.tcp));
}

// Fixed header and payload are covered; the checksum is hashed as zero; other options are not
// covered, so changing them matters only when the MD5 option is then no longer found.
void check_tcp_byte_flips(Md5Signer& signer, const Signed& s) {
  const std::size_t header_size = *tcp_header_size(s.tcp);
  for (std::size_t i = 0; i < s.tcp.size(); ++i) {
    auto tcp = s.tcp;
    tcp[i] ^= 0x01;  // bit 0 of byte 12 is a flag, not the data offset
    Md5Verdict expected = Md5Verdict::Failure;
    if (i == 16 || i == 17) expected = Md5Verdict::Ok;
    const bool digest = i >= s.digest_offset && i < s.digest_offset + kDigestSize;
    if (i >= kTcpFixedHeaderSize && i < header_size && !digest) {
      expected = find_md5_option(tcp) == s.digest_offset ? Md5Verdict::Ok : Md5Verdict::NotFound;
    }
    CAPTURE(i);
    CHECK(verdict(signer, s.source, s.destination, tcp, s.key) == expected);
  }
}

void check_key_changes(Md5Signer& signer, const Signed& s) {
  for (std::size_t i = 0; i < s.key.size(); ++i) {
    auto key = s.key;
    key[i] ^= 0x01;
    CAPTURE(i);
    CHECK(verdict(signer, s.source, s.destination, s.tcp, key) == Md5Verdict::Failure);
  }
  auto longer = s.key;
  longer.push_back('!');
  const ByteView shorter = ByteView(s.key).first(s.key.size() - 1);
  CHECK(verdict(signer, s.source, s.destination, s.tcp, shorter) == Md5Verdict::Failure);
  if (longer.size() <= kMaxKeySize) {
    CHECK(verdict(signer, s.source, s.destination, s.tcp, longer) == Md5Verdict::Failure);
  }
  CHECK(verdict(signer, s.source, s.destination, s.tcp, {}) == Md5Verdict::Unexpected);
}

// The pseudo-header: both addresses and the TCP length are covered.
void check_pseudo_header_changes(Md5Signer& signer, const Signed& s) {
  const auto flipped = [](const IpAddress& address, std::size_t i) {
    std::vector<std::uint8_t> bytes(address.bytes().begin(), address.bytes().end());
    bytes[i] ^= 0x01;
    if (address.is_ipv4())
      return IpAddress::ipv4(std::span<const std::uint8_t, 4>(bytes.data(), 4));
    return IpAddress::ipv6(std::span<const std::uint8_t, 16>(bytes.data(), 16));
  };
  for (std::size_t i = 0; i < s.source.bytes().size(); ++i) {
    CAPTURE(i);
    const auto source = flipped(s.source, i);
    CHECK(verdict(signer, source, s.destination, s.tcp, s.key) == Md5Verdict::Failure);
    CHECK(verdict(signer, s.source, flipped(s.destination, i), s.tcp, s.key) ==
          Md5Verdict::Failure);
  }
  auto one_more_byte = s.tcp;
  one_more_byte.push_back(0);
  CHECK(verdict(signer, s.source, s.destination, one_more_byte, s.key) == Md5Verdict::Failure);
}

}  // namespace

void check_kernel_segment(Md5Signer& signer, const KernelSegment& segment) {
  CAPTURE(segment.what);
  const auto parts = tcp_segment_of(segment.ip_packet);
  REQUIRE(parts);
  CHECK(describe(*parts) == segment.what);
  Signed s{parts->source, parts->destination, {}, 0, segment.key};
  s.tcp.assign(parts->header.begin(), parts->payload.end());
  const auto digest_offset = find_md5_option(s.tcp);
  REQUIRE(digest_offset);
  s.digest_offset = *digest_offset;

  CHECK(verdict(signer, s) == Md5Verdict::Ok);
  check_resigning_reproduces_it(signer, s);
  check_tcp_byte_flips(signer, s);
  check_key_changes(signer, s);
  check_pseudo_header_changes(signer, s);
}

}  // namespace tapstack::md5test
