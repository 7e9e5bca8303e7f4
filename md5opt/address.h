// IPv4 and IPv6 addresses as small values: what the MD5 key table is keyed by and what the
// pseudo-headers carry (RFC 2385 §2.0 item 1; RFC 9293 §3.1; RFC 8200 §8.1).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "md5opt/bytes.h"

namespace tapstack::md5opt {

class IpAddress {
 public:
  enum class Family : std::uint8_t { Ipv4, Ipv6 };

  IpAddress() = default;  // 0.0.0.0
  static IpAddress ipv4(std::span<const std::uint8_t, 4> bytes) {  // inline: once a segment
    IpAddress address;
    std::memcpy(address.bytes_.data(), bytes.data(), 4);
    return address;
  }
  static IpAddress ipv6(std::span<const std::uint8_t, 16> bytes);
  // "198.18.0.1" or "2001:db8::1"; nullopt on anything else.
  static std::optional<IpAddress> parse(std::string_view text);

  Family family() const { return family_; }
  bool is_ipv4() const { return family_ == Family::Ipv4; }
  // 4 or 16 bytes, in network byte order.
  ByteView bytes() const { return {bytes_.data(), is_ipv4() ? 4u : 16u}; }
  // 32 or 128: the longest prefix an address of this family has.
  int bit_length() const { return is_ipv4() ? 32 : 128; }
  // Same family and the same first prefix_length bits.
  // Linux: the inet_make_mask() compare and ipv6_prefix_equal() in __tcp_md5_do_lookup()
  bool matches_prefix(const IpAddress& other, int prefix_length) const;
  std::string to_string() const;

  // Two words, not a byte loop: flows are found by a pair of these for every segment.
  bool operator==(const IpAddress& other) const {
    std::uint64_t a[2];
    std::uint64_t b[2];
    std::memcpy(a, bytes_.data(), sizeof a);
    std::memcpy(b, other.bytes_.data(), sizeof b);
    return family_ == other.family_ && ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
  }

 private:
  Family family_ = Family::Ipv4;
  std::array<std::uint8_t, 16> bytes_{};  // IPv4 uses the first 4
};

}  // namespace tapstack::md5opt
