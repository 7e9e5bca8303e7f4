#include "stack/address.h"

#include <charconv>

#include <fmt/format.h>

namespace tapstack {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number in [0, max] occupying the whole of text.
std::optional<unsigned> parse_decimal(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 3) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

}  // namespace

std::optional<MacAddress> MacAddress::parse(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddress mac;
  for (size_t i = 0; i < 6; ++i) {
    const int hi = hex_digit(text[i * 3]);
    const int lo = hex_digit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != ':')) return std::nullopt;
    mac.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string MacAddress::to_string() const {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                     bytes[3], bytes[4], bytes[5]);
}

std::optional<Ipv4Address> Ipv4Address::parse(std::string_view text) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return std::nullopt;
    const auto octet = parse_decimal(text.substr(0, dot), 255);
    if (!octet) return std::nullopt;
    value = value << 8 | *octet;
    text.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return Ipv4Address{value};
}

std::string Ipv4Address::to_string() const {
  return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff,
                     value & 0xff);
}

std::optional<Ipv4Interface> Ipv4Interface::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address = Ipv4Address::parse(text.substr(0, slash));
  const auto length = parse_decimal(text.substr(slash + 1), 32);
  if (!address || !length) return std::nullopt;
  return Ipv4Interface{*address, static_cast<uint8_t>(*length)};
}

std::string Ipv4Interface::to_string() const {
  return fmt::format("{}/{}", address.to_string(), prefix_length);
}

namespace {
IpAddress ipv6_of(const std::array<uint8_t, 16>& bytes) {
  return IpAddress::ipv6(bytes);
}
}  // namespace

bool is_ipv6_unspecified(const IpAddress& a) {
  return !a.is_ipv4() && a == ipv6_unspecified();
}
bool is_ipv6_loopback(const IpAddress& a) {
  return !a.is_ipv4() && a == ipv6_of({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
}
bool is_ipv6_multicast(const IpAddress& a) {
  return !a.is_ipv4() && a.bytes()[0] == 0xff;
}
bool is_ipv6_link_local(const IpAddress& a) {
  return !a.is_ipv4() && a.bytes()[0] == 0xfe && (a.bytes()[1] & 0xc0) == 0x80;
}

IpAddress solicited_node_multicast(const IpAddress& unicast) {
  const auto b = unicast.bytes();
  return ipv6_of({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, b[13], b[14], b[15]});
}

MacAddress ipv6_multicast_mac(const IpAddress& multicast) {
  const auto b = multicast.bytes();
  return MacAddress{{0x33, 0x33, b[12], b[13], b[14], b[15]}};
}

IpAddress ipv6_unspecified() {
  return ipv6_of({});
}
IpAddress ipv6_all_nodes() {
  return ipv6_of({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
}
IpAddress ipv6_all_routers() {
  return ipv6_of({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
}

IpAddress ipv6_link_local_from_mac(const MacAddress& mac) {
  const auto& m = mac.bytes;
  return ipv6_of({0xfe, 0x80, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(m[0] ^ 0x02), m[1], m[2],
                  0xff, 0xfe, m[3], m[4], m[5]});
}

std::optional<Ipv6Interface> Ipv6Interface::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address = IpAddress::parse(text.substr(0, slash));
  const auto length = parse_decimal(text.substr(slash + 1), 128);
  if (!address || address->is_ipv4() || is_ipv6_multicast(*address) ||
      is_ipv6_unspecified(*address) || !length) {
    return std::nullopt;
  }
  return Ipv6Interface{*address, static_cast<uint8_t>(*length)};
}

std::string Ipv6Interface::to_string() const {
  return fmt::format("{}/{}", address.to_string(), prefix_length);
}

}  // namespace tapstack
