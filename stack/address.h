// Link and network addresses as value types, with parsing and formatting for the edges.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "md5opt/address.h"

namespace tapstack {

// An address of either family: what TCP keys its connections by, and the MD5 keys their peers
// by (md5opt/address.h). IPv4 addresses convert to it implicitly.
using IpAddress = md5opt::IpAddress;
using IpFamily = md5opt::IpAddress::Family;

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  static constexpr MacAddress broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_multicast() const { return (bytes[0] & 1) != 0; }
  constexpr bool is_zero() const { return *this == MacAddress{}; }
  // "02:00:5e:12:00:02"; nullopt on anything else.
  static std::optional<MacAddress> parse(std::string_view text);
  std::string to_string() const;
  constexpr auto operator<=>(const MacAddress&) const = default;
};

// An IPv4 address in host byte order.
struct Ipv4Address {
  uint32_t value = 0;

  static constexpr Ipv4Address from_octets(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return {uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | uint32_t{d}};
  }
  static constexpr Ipv4Address limited_broadcast() { return {0xffffffffu}; }
  // The IPv4 address of an IpAddress; nullopt for an IPv6 one.
  static std::optional<Ipv4Address> from(const IpAddress& address) {
    if (!address.is_ipv4()) return std::nullopt;
    const auto b = address.bytes();
    return from_octets(b[0], b[1], b[2], b[3]);
  }
  operator IpAddress() const {  // NOLINT(google-explicit-constructor): every one is one
    const std::array<uint8_t, 4> b{static_cast<uint8_t>(value >> 24),
                                   static_cast<uint8_t>(value >> 16),
                                   static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
    return IpAddress::ipv4(b);
  }
  constexpr bool is_zero() const { return value == 0; }
  constexpr bool is_multicast() const { return (value >> 28) == 0xe; }
  constexpr bool is_limited_broadcast() const { return value == 0xffffffffu; }
  // Dotted quad; nullopt on anything else (no leading "+", no octet above 255).
  static std::optional<Ipv4Address> parse(std::string_view text);
  std::string to_string() const;
  constexpr auto operator<=>(const Ipv4Address&) const = default;
};

// An interface address with its prefix length, "198.18.0.2/24".
struct Ipv4Interface {
  Ipv4Address address;
  uint8_t prefix_length = 32;

  constexpr uint32_t mask() const {
    return prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
  }
  constexpr bool on_link(Ipv4Address other) const {
    return (other.value & mask()) == (address.value & mask());
  }
  constexpr Ipv4Address subnet_broadcast() const { return {address.value | ~mask()}; }
  static std::optional<Ipv4Interface> parse(std::string_view text);
  std::string to_string() const;
  constexpr auto operator<=>(const Ipv4Interface&) const = default;
};

// IPv6 address classes (RFC 4291 §2.4), asked of an IpAddress of either family (false for IPv4).
bool is_ipv6_unspecified(const IpAddress& a);  // ::
bool is_ipv6_loopback(const IpAddress& a);     // ::1
bool is_ipv6_multicast(const IpAddress& a);    // ff00::/8
bool is_ipv6_link_local(const IpAddress& a);   // fe80::/10
// The solicited-node multicast address of a unicast one: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
IpAddress solicited_node_multicast(const IpAddress& unicast);
// The Ethernet group an IPv6 multicast address is sent to: 33:33 and its last 32 bits
// (RFC 2464 §7).
MacAddress ipv6_multicast_mac(const IpAddress& multicast);
// :: (unspecified), ff02::1 (all nodes) and ff02::2 (all routers).
IpAddress ipv6_unspecified();
IpAddress ipv6_all_nodes();
IpAddress ipv6_all_routers();
// fe80::/64 with the modified EUI-64 interface identifier of the MAC (RFC 4291 App. A).
IpAddress ipv6_link_local_from_mac(const MacAddress& mac);

// An IPv6 interface address with its prefix length, "2001:db8::2/64".
struct Ipv6Interface {
  IpAddress address = ipv6_unspecified();  // always an IPv6 address
  uint8_t prefix_length = 128;

  bool on_link(const IpAddress& other) const {
    return !other.is_ipv4() && address.matches_prefix(other, prefix_length);
  }
  // "2001:db8::2/64" (prefix length 0 to 128, an IPv6 unicast address); nullopt on anything
  // else.
  static std::optional<Ipv6Interface> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const Ipv6Interface& other) const {
    return address == other.address && prefix_length == other.prefix_length;
  }
};

// An address and a port as `ss` prints them: "198.18.0.1:179", "[2001:db8::1]:179" (RFC
// 3986's brackets, so that the port is not read as part of the address).
struct Endpoint {
  IpAddress address;
  uint16_t port;
};

}  // namespace tapstack

// fmt::format("{}", address) without building a std::string first (trace lines stay cheap).
template <>
struct fmt::formatter<tapstack::Ipv4Address> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const tapstack::Ipv4Address& a, Context& ctx) const {
    return fmt::format_to(ctx.out(), "{}.{}.{}.{}", a.value >> 24, (a.value >> 16) & 0xff,
                          (a.value >> 8) & 0xff, a.value & 0xff);
  }
};

// IPv4 as a dotted quad without a std::string; IPv6 as inet_ntop writes it.
template <>
struct fmt::formatter<tapstack::md5opt::IpAddress> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const tapstack::md5opt::IpAddress& a, Context& ctx) const {
    const auto b = a.bytes();
    if (a.is_ipv4()) return fmt::format_to(ctx.out(), "{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
    return fmt::format_to(ctx.out(), "{}", a.to_string());
  }
};

template <>
struct fmt::formatter<tapstack::MacAddress> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const tapstack::MacAddress& m, Context& ctx) const {
    const auto& b = m.bytes;
    return fmt::format_to(ctx.out(), "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2],
                          b[3], b[4], b[5]);
  }
};

template <>
struct fmt::formatter<tapstack::Endpoint> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const tapstack::Endpoint& e, Context& ctx) const {
    if (e.address.is_ipv4()) return fmt::format_to(ctx.out(), "{}:{}", e.address, e.port);
    return fmt::format_to(ctx.out(), "[{}]:{}", e.address, e.port);
  }
};
