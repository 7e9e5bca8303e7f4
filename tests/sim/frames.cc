#include "tests/sim/frames.h"

#include <cstring>

#include <fmt/format.h>

namespace tapstack::sim {
namespace {

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
void put16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
  out[at] = static_cast<uint8_t>(v >> 8);
  out[at + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& out, size_t at, uint32_t v) {
  put16(out, at, static_cast<uint16_t>(v >> 16));
  put16(out, at + 2, static_cast<uint16_t>(v));
}
MacAddress mac_from(const uint8_t* p) {
  MacAddress mac;
  std::memcpy(mac.bytes.data(), p, 6);
  return mac;
}

}  // namespace

uint16_t reference_checksum(ByteView bytes) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) sum += be16(&bytes[i]);
  if (bytes.size() % 2 == 1) sum += uint32_t{bytes.back()} << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::optional<EthernetFrame> parse_ethernet(ByteView frame) {
  if (frame.size() < 14) return std::nullopt;
  return EthernetFrame{mac_from(&frame[0]), mac_from(&frame[6]), be16(&frame[12]),
                       frame.subspan(14)};
}

std::optional<ArpPacket> parse_arp(ByteView frame) {
  auto ethernet = parse_ethernet(frame);
  if (!ethernet || ethernet->type != kEtherTypeArp || ethernet->payload.size() < 28) {
    return std::nullopt;
  }
  const uint8_t* p = ethernet->payload.data();
  if (be16(p) != 1 || be16(p + 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4) return std::nullopt;
  return ArpPacket{be16(p + 6), mac_from(p + 8), Ipv4Address{be32(p + 14)}, mac_from(p + 18),
                   Ipv4Address{be32(p + 24)}};
}

std::optional<Ipv4Packet> parse_ipv4(ByteView frame) {
  auto ethernet = parse_ethernet(frame);
  if (!ethernet || ethernet->type != kEtherTypeIpv4) return std::nullopt;
  const ByteView ip = ethernet->payload;
  if (ip.size() < 20 || ip[0] >> 4 != 4) return std::nullopt;
  const size_t header_length = size_t{ip[0] & 0x0fu} * 4;
  const size_t total_length = be16(&ip[2]);
  if (header_length < 20 || total_length < header_length || total_length > ip.size()) {
    return std::nullopt;
  }
  Ipv4Packet packet;
  packet.header_length = header_length;
  packet.id = be16(&ip[4]);
  packet.more_fragments = (ip[6] & 0x20) != 0;
  packet.fragment_offset = uint32_t{be16(&ip[6]) & 0x1fffu} * 8;
  packet.ttl = ip[8];
  packet.protocol = ip[9];
  packet.source = Ipv4Address{be32(&ip[12])};
  packet.destination = Ipv4Address{be32(&ip[16])};
  packet.checksum_ok = reference_checksum(ip.first(header_length)) == 0;
  packet.payload = ip.subspan(header_length, total_length - header_length);
  return packet;
}

std::optional<IcmpEcho> parse_icmp_echo(ByteView frame) {
  auto ip = parse_ipv4(frame);
  if (!ip || ip->protocol != kProtocolIcmp || ip->is_fragment() || ip->payload.size() < 8) {
    return std::nullopt;
  }
  const uint8_t* p = ip->payload.data();
  if (p[0] != kIcmpEchoRequest && p[0] != kIcmpEchoReply) return std::nullopt;
  return IcmpEcho{p[0], be16(p + 4), be16(p + 6), ip->payload.size() - 8,
                  reference_checksum(ip->payload) == 0};
}

std::string describe(ByteView frame) {
  if (auto arp = parse_arp(frame)) {
    if (arp->operation == kArpRequest) {
      return fmt::format("arp who-has {} tell {}", arp->target_ip.to_string(),
                         arp->sender_ip.to_string());
    }
    return fmt::format("arp {} is-at {}", arp->sender_ip.to_string(), arp->sender_mac.to_string());
  }
  if (auto echo = parse_icmp_echo(frame)) {
    auto ip = parse_ipv4(frame);
    return fmt::format("{} > {} icmp echo {} id {} seq {} len {}", ip->source.to_string(),
                       ip->destination.to_string(),
                       echo->type == kIcmpEchoRequest ? "request" : "reply", echo->id,
                       echo->sequence, echo->payload_size);
  }
  if (auto ip = parse_ipv4(frame)) {
    return fmt::format("{} > {} proto {} id {} offset {}{} len {}", ip->source.to_string(),
                       ip->destination.to_string(), ip->protocol, ip->id, ip->fragment_offset,
                       ip->more_fragments ? " MF" : "", ip->payload.size());
  }
  if (auto ethernet = parse_ethernet(frame)) {
    return fmt::format("ethernet {} > {} type {:#06x} len {}", ethernet->source.to_string(),
                       ethernet->destination.to_string(), ethernet->type, frame.size());
  }
  return fmt::format("runt frame of {} bytes", frame.size());
}

std::vector<uint8_t> make_ethernet(MacAddress destination, MacAddress source, uint16_t type,
                                   ByteView payload) {
  std::vector<uint8_t> frame(14);
  std::memcpy(&frame[0], destination.bytes.data(), 6);
  std::memcpy(&frame[6], source.bytes.data(), 6);
  put16(frame, 12, type);
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

std::vector<uint8_t> make_ipv4(Ipv4Address source, Ipv4Address destination, uint8_t protocol,
                               ByteView payload, uint16_t id, uint8_t ttl,
                               uint16_t fragment_field) {
  std::vector<uint8_t> packet(20);
  packet[0] = 0x45;
  put16(packet, 2, static_cast<uint16_t>(20 + payload.size()));
  put16(packet, 4, id);
  put16(packet, 6, fragment_field);
  packet[8] = ttl;
  packet[9] = protocol;
  put32(packet, 12, source.value);
  put32(packet, 16, destination.value);
  put16(packet, 10, reference_checksum(packet));
  packet.insert(packet.end(), payload.begin(), payload.end());
  return packet;
}

std::vector<uint8_t> make_icmp_echo(uint8_t type, uint16_t id, uint16_t sequence,
                                    ByteView payload) {
  std::vector<uint8_t> message(8);
  message[0] = type;
  put16(message, 4, id);
  put16(message, 6, sequence);
  message.insert(message.end(), payload.begin(), payload.end());
  put16(message, 2, reference_checksum(message));
  return message;
}

}  // namespace tapstack::sim
