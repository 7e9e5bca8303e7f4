// What the ICMPv6 and neighbour discovery tests share: a fake IPv6 layer and link that keep
// what is sent, packets and messages built byte by byte, and a checksum of the test's own.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "stack/address.h"
#include "stack/checksum.h"
#include "stack/counters.h"
#include "stack/frame.h"
#include "stack/icmp6.h"
#include "stack/ipv6.h"
#include "stack/layer_context.h"
#include "stack/ndisc.h"
#include "stack/trace.h"

namespace tapstack::test6 {

using Bytes = std::vector<uint8_t>;

inline IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
inline MacAddress mac(const char* text) {
  return *MacAddress::parse(text);
}

const IpAddress kOurs = ip("2001:db8::2");
const IpAddress kOurLinkLocal = ip("fe80::2");
const IpAddress kPeer = ip("2001:db8::1");
const MacAddress kOurMac = mac("02:00:00:00:00:02");
const MacAddress kPeerMac = mac("02:00:00:00:00:01");

struct SentPayload {
  IpAddress source;
  IpAddress destination;
  uint8_t next_header = 0;
  Bytes payload;
  uint8_t hop_limit = 0;
};

struct SentFrame {
  MacAddress destination;
  uint16_t ethertype = 0;
  Bytes payload;
};

// The Stack's side of both interfaces: takes everything, sends from kOurLinkLocal to
// link-local peers and from kOurs to the rest (nullopt once no_source is set).
class FakeLinks final : public Ipv6Output, public EthernetOutput {
 public:
  Status send_ip6_payload(const IpAddress& source, const IpAddress& destination,
                          uint8_t next_header, ByteView payload, Instant,
                          uint8_t hop_limit) override {
    payloads.push_back(
        {source, destination, next_header, {payload.begin(), payload.end()}, hop_limit});
    return Ok{};
  }
  std::optional<IpAddress> ip6_source_for(const IpAddress& destination) const override {
    if (no_source) return std::nullopt;
    return is_ipv6_link_local(destination) ? kOurLinkLocal : kOurs;
  }
  void emit_frame(const MacAddress& dst, uint16_t ethertype, ByteView payload,
                  const FrameOffload&) override {
    frames.push_back({dst, ethertype, {payload.begin(), payload.end()}});
  }

  std::deque<SentPayload> payloads;
  std::deque<SentFrame> frames;
  bool no_source = false;
};

inline void append(Bytes& out, ByteView bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
inline void append(Bytes& out, const MacAddress& m) {
  out.insert(out.end(), m.bytes.begin(), m.bytes.end());
}

// RFC 8200 §8.1 written out: source, destination, 32-bit length, three zeros, next header 58,
// then the message. 0 when the message's checksum is right.
inline uint16_t checksum_of(const IpAddress& source, const IpAddress& destination,
                            ByteView message) {
  Bytes buffer;
  append(buffer, source.bytes());
  append(buffer, destination.bytes());
  const auto length = static_cast<uint32_t>(message.size());
  for (int shift : {24, 16, 8, 0}) buffer.push_back(static_cast<uint8_t>(length >> shift));
  buffer.insert(buffer.end(), {0, 0, 0, 58});
  append(buffer, message);
  return internet_checksum(buffer);
}

// Fills bytes 2-3 of an ICMPv6 message with its checksum.
inline Bytes with_checksum(Bytes message, const IpAddress& source, const IpAddress& destination) {
  message[2] = message[3] = 0;
  const uint16_t sum = checksum_of(source, destination, message);
  message[2] = static_cast<uint8_t>(sum >> 8);
  message[3] = static_cast<uint8_t>(sum);
  return message;
}

// An IPv6 packet, the fixed header written byte by byte, and the datagram parse_ipv6 and the
// walk would make of it (no extension headers unless `payload_offset` says where they end).
struct Packet {
  Bytes bytes;
  size_t payload_offset = 40;
  uint8_t protocol = 58;
  bool checksum_offloaded = false;

  Ipv6Datagram datagram() const {
    Ipv6Datagram d;
    d.header.payload_length = static_cast<uint16_t>(bytes.size() - 40);
    d.header.next_header = bytes[6];
    d.header.hop_limit = bytes[7];
    d.header.source = IpAddress::ipv6(std::span<const uint8_t, 16>(bytes.data() + 8, 16));
    d.header.destination = IpAddress::ipv6(std::span<const uint8_t, 16>(bytes.data() + 24, 16));
    d.packet = bytes;
    d.protocol = protocol;
    d.payload_offset = payload_offset;
    d.payload = ByteView(bytes).subspan(payload_offset);
    d.checksum_offloaded = checksum_offloaded;
    return d;
  }
};

inline Packet packet(const IpAddress& source, const IpAddress& destination, uint8_t next_header,
                     ByteView payload, uint8_t hop_limit = 64) {
  Packet p;
  p.bytes = {0x60,
             0,
             0,
             0,
             static_cast<uint8_t>(payload.size() >> 8),
             static_cast<uint8_t>(payload.size()),
             next_header,
             hop_limit};
  append(p.bytes, source.bytes());
  append(p.bytes, destination.bytes());
  append(p.bytes, payload);
  p.protocol = next_header;
  return p;
}

// RFC 4861 §4.3: type 135, code 0, checksum, reserved, target, then a source link-layer
// address option when given.
inline Bytes solicitation(const IpAddress& target, std::optional<MacAddress> source_mac = {}) {
  Bytes m = {135, 0, 0, 0, 0, 0, 0, 0};
  append(m, target.bytes());
  if (source_mac) {
    m.insert(m.end(), {1, 1});
    append(m, *source_mac);
  }
  return m;
}

// RFC 4861 §4.4: flags R 0x80, S 0x40, O 0x20; a target link-layer address option when given.
inline Bytes advertisement(const IpAddress& target, uint8_t flags,
                           std::optional<MacAddress> target_mac = {}) {
  Bytes m = {136, 0, 0, 0, flags, 0, 0, 0};
  append(m, target.bytes());
  if (target_mac) {
    m.insert(m.end(), {2, 1});
    append(m, *target_mac);
  }
  return m;
}

struct World {
  explicit World(NdiscConfig ndisc_config = {}, Icmp6Config icmp6_config = {})
      : ndisc(ndisc_config, kOurMac, context, links, links),
        icmp6(icmp6_config, context, links, ndisc) {}

  Counters counters;
  Trace trace;
  LayerContext context{counters, trace};
  FakeLinks links;
  Ndisc ndisc;
  Icmp6 icmp6;
  Instant now = Instant::from_ns(1'000'000'000);

  uint64_t count(Counter c) const { return counters.get(c); }
  uint64_t drops(DropReason r) const { return counters.drops(r); }
  // Runs the timers up to now + d, at each deadline on the way, as the Stack's loop does.
  std::vector<IpAddress> advance(Duration d) {
    std::vector<IpAddress> unreachable;
    const Instant end = now + d;
    for (int steps = 0; ndisc.next_deadline() <= end; ++steps) {
      REQUIRE_MESSAGE(steps < 10000, "the timers do not move on");
      REQUIRE(ndisc.next_deadline() >= now);
      now = ndisc.next_deadline();
      ndisc.on_timer(now, [&](const IpAddress& a) { unreachable.push_back(a); });
    }
    now = end;
    return unreachable;
  }
  // A neighbour discovery message from `source` to `destination` through Icmp6 (checksum
  // filled) or straight to Ndisc.
  void to_ndisc(const IpAddress& source, const IpAddress& destination, const Bytes& message,
                uint8_t hop_limit = 255) {
    const Packet p = packet(source, destination, 58, message, hop_limit);
    const Ipv6Datagram d = p.datagram();
    ndisc.input(d, d.payload, now);
  }
  SentPayload take_payload() {
    REQUIRE(!links.payloads.empty());
    SentPayload p = links.payloads.front();
    links.payloads.pop_front();
    return p;
  }
};

}  // namespace tapstack::test6
