// A stack under test with a tiny vocabulary: inject a frame, collect what it sent, advance
// virtual time. Frames are crafted with libtins, an independent view of the packet formats.
#pragma once

#include <cstdint>
#include <vector>

#include <tins/tins.h>

#include "stack/stack.h"

namespace tapstack::test {

inline constexpr const char* kOurMac = "02:00:00:00:00:02";
inline constexpr const char* kPeerMac = "02:00:00:00:00:01";
inline constexpr const char* kOurIp = "198.18.0.2";
inline constexpr const char* kPeerIp = "198.18.0.1";

using Bytes = std::vector<uint8_t>;

inline StackConfig default_config() {
  StackConfig config;
  config.mac = *MacAddress::parse(kOurMac);
  config.ipv4 = *Ipv4Interface::parse("198.18.0.2/24");
  config.seed = 1;
  return config;
}

inline Ipv4Address ip(const char* text) { return *Ipv4Address::parse(text); }
inline Tins::HWAddress<6> hw(const char* text) { return Tins::HWAddress<6>(std::string(text)); }
inline Tins::IPv4Address ip4(const char* text) { return Tins::IPv4Address(std::string(text)); }

// Ethernet from the peer to us around an IPv4 PDU.
inline Bytes frame_from_peer(Tins::PDU& inner, const char* dst_mac = kOurMac) {
  Tins::EthernetII eth(hw(dst_mac), hw(kPeerMac));
  eth /= inner;
  return eth.serialize();
}

inline Tins::IP ip_from_peer(const char* dst = kOurIp) { return Tins::IP(ip4(dst), ip4(kPeerIp)); }

inline Bytes echo_request_frame(uint16_t id, uint16_t seq, size_t payload_size,
                                const char* dst = kOurIp) {
  Tins::ICMP icmp(Tins::ICMP::ECHO_REQUEST);
  icmp.id(id);
  icmp.sequence(seq);
  Bytes payload(payload_size);
  for (size_t i = 0; i < payload_size; ++i) payload[i] = static_cast<uint8_t>(i);
  Tins::IP ip = ip_from_peer(dst) / icmp / Tins::RawPDU(payload);
  return frame_from_peer(ip);
}

class Harness {
 public:
  explicit Harness(StackConfig config = default_config()) : stack(config) {
    stack.start(now);
    drain();  // the gratuitous ARP
  }

  // Delivers one frame and returns every frame the stack sent in response.
  std::vector<Bytes> inject(const Bytes& frame) {
    stack.on_frame(frame, now);
    return drain();
  }
  // Advances virtual time by d, running due timers; returns what was sent meanwhile.
  std::vector<Bytes> advance(Duration d) {
    const Instant until = now + d;
    std::vector<Bytes> out;
    while (stack.next_deadline() <= until) {
      now = std::max(now, stack.next_deadline());
      stack.on_timer(now);
      for (auto& f : drain()) out.push_back(std::move(f));
    }
    now = until;
    return out;
  }
  std::vector<Bytes> drain() {
    std::vector<Bytes> out;
    while (auto frame = stack.poll_transmit()) out.emplace_back(frame->begin(), frame->end());
    return out;
  }
  uint64_t count(Counter c) const { return stack.counters()[c]; }
  uint64_t drops(DropReason r) const { return stack.counters().drops(r); }
  // Teaches the stack the peer's MAC, as an ARP request from the peer would.
  void learn_peer() {
    Tins::EthernetII eth = Tins::ARP::make_arp_request(ip4(kOurIp), ip4(kPeerIp), hw(kPeerMac));
    eth.src_addr(hw(kPeerMac));
    inject(eth.serialize());
  }

  Instant now = Instant::from_ns(1'000'000'000);
  Stack stack;
};

// Parses a frame the stack sent with libtins.
inline Tins::EthernetII parse(const Bytes& frame) {
  return Tins::EthernetII(frame.data(), static_cast<uint32_t>(frame.size()));
}

}  // namespace tapstack::test
