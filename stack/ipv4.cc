#include "stack/ipv4.h"

#include "stack/checksum.h"

namespace tapstack {

// Linux: ip_rcv_core()
std::optional<DropReason> parse_ipv4(ByteView packet, Ipv4Datagram& out) {
  if (packet.size() < kIpv4MinHeaderSize) return DropReason::IpTruncated;
  const uint8_t* p = packet.data();
  if ((p[0] >> 4) != 4) return DropReason::IpBadVersion;
  const size_t header_length = (p[0] & 0x0f) * 4u;
  if (header_length < kIpv4MinHeaderSize) return DropReason::IpBadHeaderLength;
  if (header_length > packet.size()) return DropReason::IpTruncated;
  const uint16_t total_length = load_be16(p + 2);
  if (total_length > packet.size()) return DropReason::IpTotalLengthBeyondFrame;
  if (total_length < header_length) return DropReason::IpBadHeaderLength;
  if (internet_checksum(packet.first(header_length)) != 0) return DropReason::IpBadChecksum;
  // A host never forwards, so TTL matters only as a sanity check: a sender must not emit 0.
  if (p[8] == 0) return DropReason::IpTtlZero;

  Ipv4Header& h = out.header;
  h.header_length = static_cast<uint8_t>(header_length);
  h.tos = p[1];
  h.total_length = total_length;
  h.id = load_be16(p + 4);
  const uint16_t flags_offset = load_be16(p + 6);
  h.dont_fragment = (flags_offset & 0x4000) != 0;
  h.more_fragments = (flags_offset & 0x2000) != 0;
  h.fragment_offset = static_cast<uint16_t>((flags_offset & 0x1fff) * 8);
  h.ttl = p[8];
  h.protocol = p[9];
  h.source = {load_be32(p + 12)};
  h.destination = {load_be32(p + 16)};
  out.packet = packet.first(total_length);  // drops Ethernet padding
  out.payload = out.packet.subspan(header_length);
  return std::nullopt;
}

void write_ipv4_header(uint8_t* out, const Ipv4Header& header) {
  out[0] = 0x45;
  out[1] = header.tos;
  store_be16(out + 2, header.total_length);
  store_be16(out + 4, header.id);
  const uint16_t flags = (header.dont_fragment ? 0x4000 : 0) | (header.more_fragments ? 0x2000 : 0);
  store_be16(out + 6, static_cast<uint16_t>(flags | (header.fragment_offset / 8)));
  out[8] = header.ttl;
  out[9] = header.protocol;
  store_be16(out + 10, 0);
  store_be32(out + 12, header.source.value);
  store_be32(out + 16, header.destination.value);
  store_be16(out + 10, internet_checksum({out, kIpv4MinHeaderSize}));
}

}  // namespace tapstack
