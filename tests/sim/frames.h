// A second, independent view of frames for tests: small parsers to assert on what a stack
// sent, and builders to craft frames to inject. Written apart from stack/ on purpose (its own
// checksum too), so that a bug in the stack's parser is not shared by the oracle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"

namespace tapstack::sim {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint8_t kProtocolIcmp = 1;
constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;

struct EthernetFrame {
  MacAddress destination;
  MacAddress source;
  uint16_t type = 0;
  ByteView payload;
};

struct ArpPacket {
  uint16_t operation = 0;
  MacAddress sender_mac;
  Ipv4Address sender_ip;
  MacAddress target_mac;
  Ipv4Address target_ip;
};

struct Ipv4Packet {
  Ipv4Address source;
  Ipv4Address destination;
  uint8_t protocol = 0;
  uint8_t ttl = 0;
  uint16_t id = 0;
  bool more_fragments = false;
  uint32_t fragment_offset = 0;  // bytes
  size_t header_length = 0;
  bool checksum_ok = false;
  ByteView payload;  // total length minus header

  bool is_fragment() const { return more_fragments || fragment_offset != 0; }
};

struct IcmpEcho {
  uint8_t type = 0;
  uint16_t id = 0;
  uint16_t sequence = 0;
  size_t payload_size = 0;
  bool checksum_ok = false;
};

// RFC 1071, written out again here rather than taken from stack/checksum.h.
uint16_t reference_checksum(ByteView bytes);

std::optional<EthernetFrame> parse_ethernet(ByteView frame);
std::optional<ArpPacket> parse_arp(ByteView frame);
// An Ethernet frame carrying IPv4 with version 4, a sane header length and a total length
// that fits the frame; the checksum is reported, not required.
std::optional<Ipv4Packet> parse_ipv4(ByteView frame);
// An unfragmented ICMP echo request or reply.
std::optional<IcmpEcho> parse_icmp_echo(ByteView frame);
// One line for failure messages: "arp who-has 198.18.0.2 tell 198.18.0.1", ...
std::string describe(ByteView frame);

std::vector<uint8_t> make_ethernet(MacAddress destination, MacAddress source, uint16_t type,
                                   ByteView payload);
// An IPv4 header (no options, DF clear) in front of payload. fragment_field is the raw
// flags+offset word.
std::vector<uint8_t> make_ipv4(Ipv4Address source, Ipv4Address destination, uint8_t protocol,
                               ByteView payload, uint16_t id = 1, uint8_t ttl = 64,
                               uint16_t fragment_field = 0);
std::vector<uint8_t> make_icmp_echo(uint8_t type, uint16_t id, uint16_t sequence, ByteView payload);

}  // namespace tapstack::sim
