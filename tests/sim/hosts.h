// Hosts for simulated tests: host n is 198.18.0.n/24 (RFC 2544's benchmarking range, the only
// addresses tests use) with MAC 02:00:00:00:00:n; with IPv6 on (dual_stack_host_config), also
// 2001:db8::n/64 (RFC 3849's documentation prefix) and the link-local address from its MAC.
#pragma once

#include <array>
#include <cstdint>

#include "stack/address.h"
#include "stack/stack.h"

namespace tapstack::sim {

inline Ipv4Address host_ip(uint8_t n) {
  return Ipv4Address::from_octets(198, 18, 0, n);
}

inline MacAddress host_mac(uint8_t n) {
  return MacAddress{{0x02, 0, 0, 0, 0, n}};
}

// No gratuitous ARP, so that a test sees every resolution it causes. The network takes every
// frame as soon as it is made, so a short transmit queue does (and a stack is cheap to build:
// the default 512 frames are 4.6 MB to allocate and clear).
inline StackConfig host_config(uint8_t n, uint64_t seed = 1) {
  StackConfig config;
  config.transmit_queue_frames = 64;
  config.mac = host_mac(n);
  config.ipv4 = Ipv4Interface{host_ip(n), 24};
  config.seed = seed * 1000 + n;
  config.gratuitous_arp = false;
  return config;
}

inline IpAddress host_ip6(uint8_t n) {
  const std::array<uint8_t, 16> bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n};
  return IpAddress::ipv6(bytes);
}

// host_config(n) with IPv6 on as well: both IPv6 addresses pass DAD (1 s of virtual time) before
// they can be used. IPv4 is as host_config() has it.
inline StackConfig dual_stack_host_config(uint8_t n, uint64_t seed = 1) {
  StackConfig config = host_config(n, seed);
  config.ipv6 = Ipv6Interface{host_ip6(n), 64};
  return config;
}

}  // namespace tapstack::sim
