// IPv4 and IPv6 addresses (RFC 791 §3.1, RFC 8200 §3): parsing, printing, prefix match.
#include "md5opt/address.h"

#include <arpa/inet.h>

#include <algorithm>

namespace tapstack::md5opt {

IpAddress IpAddress::ipv6(std::span<const std::uint8_t, 16> bytes) {
  IpAddress address;
  address.family_ = Family::Ipv6;
  std::copy(bytes.begin(), bytes.end(), address.bytes_.begin());
  return address;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  const std::string terminated(text);  // inet_pton wants a C string
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, terminated.c_str(), bytes.data()) == 1) {
    return ipv4(std::span<const std::uint8_t, 4>(bytes.data(), 4));
  }
  if (inet_pton(AF_INET6, terminated.c_str(), bytes.data()) == 1) return ipv6(bytes);
  return std::nullopt;
}

bool IpAddress::matches_prefix(const IpAddress& other, int prefix_length) const {
  if (family_ != other.family_ || prefix_length < 0 || prefix_length > bit_length()) return false;
  const auto whole_bytes = static_cast<std::size_t>(prefix_length / 8);
  const int rest_bits = prefix_length % 8;
  if (!std::equal(bytes_.begin(), bytes_.begin() + whole_bytes, other.bytes_.begin())) {
    return false;
  }
  if (rest_bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest_bits));
  return (bytes_[whole_bytes] & mask) == (other.bytes_[whole_bytes] & mask);
}

std::string IpAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_ipv4() ? AF_INET : AF_INET6, bytes_.data(), text, sizeof text);
  return text;
}

}  // namespace tapstack::md5opt
