// Frames the fuzz targets build and edit: Ethernet II around IPv4 (no options) around TCP or
// ICMP, and ARP. Reading a frame back is lenient (no checksum is checked), so that a mutator
// can edit it field by field whatever its checksums say; the replay repairs them (records.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"

namespace tapstack::fuzz {

using Bytes = std::vector<uint8_t>;

constexpr size_t kEthernetSize = 14;
constexpr size_t kIpv4Size = 20;
constexpr size_t kTcpSize = 20;
constexpr size_t kTcpAt = kEthernetSize + kIpv4Size;  // where TCP starts in a frame we build
constexpr uint16_t kMoreFragments = 0x2000;

struct TcpFrame {
  MacAddress destination_mac;
  MacAddress source_mac;
  Ipv4Address source;
  Ipv4Address destination;
  uint16_t ip_id = 1;
  uint16_t fragment_field = 0;  // flags and offset, as on the wire
  uint8_t ttl = 64;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 65535;
  uint16_t urgent = 0;
  Bytes options;  // padded with EOL bytes to a multiple of 4 (at most 40) when built
  Bytes payload;
};

// A frame with its lengths and checksums right.
Bytes build_tcp_frame(const TcpFrame& f);
// Any frame laid out as Ethernet, a 20-byte IPv4 header with protocol 6, and a TCP header
// whose data offset fits; checksums and the IPv4 total length are not looked at.
std::optional<TcpFrame> read_tcp_frame(ByteView frame);

Bytes build_ipv4_frame(MacAddress destination_mac, MacAddress source_mac, Ipv4Address source,
                       Ipv4Address destination, uint8_t protocol, ByteView payload,
                       uint16_t ip_id = 1, uint16_t fragment_field = 0);
// An ICMP echo request message (RFC 792), checksum right.
Bytes build_icmp_echo(uint16_t id, uint16_t sequence, ByteView payload);
Bytes build_arp(uint16_t operation, MacAddress sender_mac, Ipv4Address sender_ip,
                Ipv4Address target_ip, MacAddress destination_mac);
// The datagram of an IPv4 frame (20-byte header) cut into fragments that carry at most
// `chunk` payload bytes each (a multiple of 8), as frames.
std::vector<Bytes> fragment_frame(ByteView frame, size_t chunk);

// TCP options, as the bytes of one option (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 2385).
namespace option_bytes {
Bytes mss(uint16_t value);
Bytes window_scale(uint8_t shift);
Bytes sack_permitted();
Bytes timestamps(uint32_t value, uint32_t echo);
Bytes sack(std::span<const std::pair<uint32_t, uint32_t>> blocks);
// NOP NOP, then kind 19 length 18 with a zero digest for the replay to fill in.
Bytes md5();
}  // namespace option_bytes

}  // namespace tapstack::fuzz
