#include "tests/fuzz/frames.h"

#include <algorithm>

#include "stack/checksum.h"
#include "stack/ipv4.h"
#include "stack/tcp/header.h"

namespace tapstack::fuzz {
namespace {

constexpr size_t kMaxOptionBytes = 40;

void put_ethernet(uint8_t* p, MacAddress destination, MacAddress source, uint16_t type) {
  std::copy(destination.bytes.begin(), destination.bytes.end(), p);
  std::copy(source.bytes.begin(), source.bytes.end(), p + 6);
  store_be16(p + 12, type);
}

void put_ipv4(uint8_t* p, Ipv4Address source, Ipv4Address destination, uint8_t protocol,
              size_t total_length, uint16_t id, uint16_t fragment_field, uint8_t ttl) {
  p[0] = 0x45;
  p[1] = 0;
  store_be16(p + 2, static_cast<uint16_t>(total_length));
  store_be16(p + 4, id);
  store_be16(p + 6, fragment_field);
  p[8] = ttl;
  p[9] = protocol;
  store_be16(p + 10, 0);
  store_be32(p + 12, source.value);
  store_be32(p + 16, destination.value);
  store_be16(p + 10, internet_checksum({p, kIpv4Size}));
}

MacAddress read_mac(const uint8_t* p) {
  MacAddress mac;
  std::copy(p, p + 6, mac.bytes.begin());
  return mac;
}

Bytes padded_options(const Bytes& options) {
  Bytes out(options.begin(), options.begin() + std::min(options.size(), kMaxOptionBytes));
  out.resize((out.size() + 3) / 4 * 4, 0);
  return out;
}

}  // namespace

Bytes build_ipv4_frame(MacAddress destination_mac, MacAddress source_mac, Ipv4Address source,
                       Ipv4Address destination, uint8_t protocol, ByteView payload, uint16_t ip_id,
                       uint16_t fragment_field) {
  Bytes frame(kEthernetSize + kIpv4Size + payload.size());
  put_ethernet(frame.data(), destination_mac, source_mac, kEtherTypeIpv4);
  put_ipv4(frame.data() + kEthernetSize, source, destination, protocol, kIpv4Size + payload.size(),
           ip_id, fragment_field, 64);
  std::copy(payload.begin(), payload.end(), frame.begin() + kTcpAt);
  return frame;
}

Bytes build_tcp_frame(const TcpFrame& f) {
  const Bytes options = padded_options(f.options);
  Bytes segment(kTcpSize + options.size() + f.payload.size());
  uint8_t* t = segment.data();
  store_be16(t, f.source_port);
  store_be16(t + 2, f.destination_port);
  store_be32(t + 4, f.seq);
  store_be32(t + 8, f.ack);
  t[12] = static_cast<uint8_t>((kTcpSize + options.size()) / 4 << 4);
  t[13] = f.flags;
  store_be16(t + 14, f.window);
  store_be16(t + 18, f.urgent);
  std::copy(options.begin(), options.end(), t + kTcpSize);
  std::copy(f.payload.begin(), f.payload.end(), t + kTcpSize + options.size());
  store_be16(t + 16, tcp_checksum(segment, f.source, f.destination));
  Bytes frame = build_ipv4_frame(f.destination_mac, f.source_mac, f.source, f.destination,
                                 kProtocolTcp, segment, f.ip_id, f.fragment_field);
  frame[kEthernetSize + 8] = f.ttl;
  uint8_t* ip = frame.data() + kEthernetSize;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, internet_checksum({ip, kIpv4Size}));
  return frame;
}

std::optional<TcpFrame> read_tcp_frame(ByteView frame) {
  if (frame.size() < kTcpAt + kTcpSize || load_be16(frame.data() + 12) != kEtherTypeIpv4) {
    return std::nullopt;
  }
  const uint8_t* ip = frame.data() + kEthernetSize;
  const uint8_t* t = frame.data() + kTcpAt;
  const size_t header_size = (t[12] >> 4) * 4u;
  if (ip[0] != 0x45 || ip[9] != kProtocolTcp || header_size < kTcpSize ||
      kTcpAt + header_size > frame.size()) {
    return std::nullopt;
  }
  TcpFrame f;
  f.destination_mac = read_mac(frame.data());
  f.source_mac = read_mac(frame.data() + 6);
  f.source = {load_be32(ip + 12)};
  f.destination = {load_be32(ip + 16)};
  f.ip_id = load_be16(ip + 4);
  f.fragment_field = load_be16(ip + 6);
  f.ttl = ip[8];
  f.source_port = load_be16(t);
  f.destination_port = load_be16(t + 2);
  f.seq = load_be32(t + 4);
  f.ack = load_be32(t + 8);
  f.flags = t[13];
  f.window = load_be16(t + 14);
  f.urgent = load_be16(t + 18);
  f.options.assign(t + kTcpSize, t + header_size);
  f.payload.assign(t + header_size, frame.data() + frame.size());
  return f;
}

Bytes build_icmp_echo(uint16_t id, uint16_t sequence, ByteView payload) {
  Bytes message(8 + payload.size());
  message[0] = 8;  // echo request
  store_be16(message.data() + 4, id);
  store_be16(message.data() + 6, sequence);
  std::copy(payload.begin(), payload.end(), message.begin() + 8);
  store_be16(message.data() + 2, internet_checksum(message));
  return message;
}

Bytes build_arp(uint16_t operation, MacAddress sender_mac, Ipv4Address sender_ip,
                Ipv4Address target_ip, MacAddress destination_mac) {
  Bytes frame(kEthernetSize + 28);
  put_ethernet(frame.data(), destination_mac, sender_mac, kEtherTypeArp);
  uint8_t* p = frame.data() + kEthernetSize;
  store_be16(p, 1);  // Ethernet
  store_be16(p + 2, kEtherTypeIpv4);
  p[4] = 6;
  p[5] = 4;
  store_be16(p + 6, operation);
  std::copy(sender_mac.bytes.begin(), sender_mac.bytes.end(), p + 8);
  store_be32(p + 14, sender_ip.value);
  store_be32(p + 24, target_ip.value);
  return frame;
}

std::vector<Bytes> fragment_frame(ByteView frame, size_t chunk) {
  std::vector<Bytes> fragments;
  if (frame.size() <= kTcpAt || chunk < 8) return fragments;
  chunk &= ~size_t{7};
  const uint8_t* ip = frame.data() + kEthernetSize;
  const ByteView payload = frame.subspan(kTcpAt);
  for (size_t offset = 0; offset < payload.size(); offset += chunk) {
    const size_t size = std::min(chunk, payload.size() - offset);
    const bool more = offset + size < payload.size();
    const uint16_t field = static_cast<uint16_t>((more ? kMoreFragments : 0) | offset / 8);
    fragments.push_back(build_ipv4_frame(read_mac(frame.data()), read_mac(frame.data() + 6),
                                         {load_be32(ip + 12)}, {load_be32(ip + 16)}, ip[9],
                                         payload.subspan(offset, size), load_be16(ip + 4), field));
  }
  return fragments;
}

namespace option_bytes {

Bytes mss(uint16_t value) {
  return {tcp_option::kMss, 4, static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
}

Bytes window_scale(uint8_t shift) {
  return {tcp_option::kNop, tcp_option::kWindowScale, 3, shift};
}

Bytes sack_permitted() {
  return {tcp_option::kNop, tcp_option::kNop, tcp_option::kSackPermitted, 2};
}

Bytes timestamps(uint32_t value, uint32_t echo) {
  Bytes out{
      tcp_option::kNop, tcp_option::kNop, tcp_option::kTimestamps, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  store_be32(out.data() + 4, value);
  store_be32(out.data() + 8, echo);
  return out;
}

Bytes sack(std::span<const std::pair<uint32_t, uint32_t>> blocks) {
  Bytes out{tcp_option::kNop, tcp_option::kNop, tcp_option::kSack,
            static_cast<uint8_t>(2 + 8 * blocks.size())};
  for (const auto& [left, right] : blocks) {
    out.resize(out.size() + 8);
    store_be32(out.data() + out.size() - 8, left);
    store_be32(out.data() + out.size() - 4, right);
  }
  return out;
}

Bytes md5() {
  Bytes out(20, 0);
  out[0] = out[1] = tcp_option::kNop;
  out[2] = tcp_option::kMd5;
  out[3] = 18;
  return out;
}

}  // namespace option_bytes

}  // namespace tapstack::fuzz
