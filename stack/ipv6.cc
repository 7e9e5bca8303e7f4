// IPv6 (RFC 8200): the fixed header's checks, the extension-header walk, the header writer and
// the pseudo-header of upper-layer checksums. Every read is preceded by the length check that
// makes it safe; the walk never looks past datagram.packet (the payload length, not the frame).
#include "stack/ipv6.h"

#include <algorithm>

#include "stack/checksum.h"

namespace tapstack {

namespace {

constexpr size_t kPayloadLengthField = 4;   // offset of the payload length in the fixed header
constexpr size_t kFragmentOffsetField = 2;  // offset of the fragment offset in its header
constexpr size_t kRoutingTypeField = 2;     // offsets in the routing header (RFC 8200 §4.4)
constexpr size_t kSegmentsLeftField = 3;
constexpr size_t kIpv6MaxPayload = 65535;

// Option types with a meaning of their own (RFC 8200 §4.2); every other is unknown.
constexpr uint8_t kOptionPad1 = 0;
constexpr uint8_t kOptionPadN = 1;

IpAddress load_ipv6_address(const uint8_t* p) {
  return IpAddress::ipv6(std::span<const uint8_t, 16>(p, 16));
}

Ipv6Problem problem(DropReason reason) {
  return {reason, std::nullopt};
}
Ipv6Problem problem(DropReason reason, uint8_t code, size_t pointer,
                    bool even_if_multicast = false) {
  return {reason, Ipv6ParameterProblem{code, static_cast<uint32_t>(pointer), even_if_multicast}};
}

// The options of a hop-by-hop or destination options header at [begin, end) of packet
// (RFC 8200 §4.2): Pad1 and PadN skipped, unknown ones by the two high bits of their type.
// Linux: ip6_parse_tlv(), ip6_tlvopt_unknown()
std::optional<Ipv6Problem> walk_options(ByteView packet, size_t begin, size_t end) {
  size_t at = begin;
  while (at < end) {
    const uint8_t type = packet[at];
    if (type == kOptionPad1) {
      ++at;
      continue;
    }
    if (at + 2 > end || at + 2 + packet[at + 1] > end) return problem(DropReason::Ip6BadOption);
    const size_t length = 2u + packet[at + 1];
    if (type != kOptionPadN) {
      switch (type >> 6) {
        case 0:  // 00: skip over it
          break;
        case 1:  // 01: discard the packet
          return problem(DropReason::Ip6UnknownOption);
        case 2:  // 10: discard, and report even to a multicast destination
          return problem(DropReason::Ip6UnknownOption, 2, at, true);
        default:  // 11: discard, and report unless the destination is multicast
          return problem(DropReason::Ip6UnknownOption, 2, at, false);
      }
    }
    at += length;
  }
  return std::nullopt;
}

// A routing header at `at` (RFC 8200 §4.4): a host is never a waypoint, so every type with
// segments left is one we do not process. Type 0 is treated as an unrecognized type (RFC 5095
// §3), so with no segments left it is skipped like any other. Linux: ipv6_rthdr_rcv()
std::optional<Ipv6Problem> check_routing(ByteView packet, size_t at) {
  if (packet[at + kSegmentsLeftField] == 0) return std::nullopt;
  const uint8_t type = packet[at + kRoutingTypeField];
  return problem(type == 0 ? DropReason::Ip6RoutingType0 : DropReason::Ip6RoutingUnknown, 0,
                 at + kRoutingTypeField);
}

// Moves the walk past the header at payload_offset, which is `length` bytes long.
void pass_header(Ipv6Datagram& datagram, size_t length) {
  const size_t at = datagram.payload_offset;
  datagram.protocol_field = at;
  datagram.protocol = datagram.packet[at];
  datagram.payload_offset = at + length;
  datagram.payload = datagram.packet.subspan(at + length);
}

}  // namespace

// Linux: ipv6_rcv() (ip6_rcv_core())
std::optional<DropReason> parse_ipv6(ByteView packet, Ipv6Datagram& out) {
  if (packet.size() < kIpv6HeaderSize) return DropReason::Ip6Truncated;
  const uint8_t* p = packet.data();
  if ((p[0] >> 4) != 6) return DropReason::Ip6BadVersion;
  const uint16_t payload_length = load_be16(p + kPayloadLengthField);
  // Payload length 0 with a hop-by-hop header announces a Jumbo Payload option (RFC 2675).
  if (payload_length == 0 && p[6] == kIpv6HopByHop) return DropReason::Ip6Jumbogram;
  if (kIpv6HeaderSize + payload_length > packet.size()) return DropReason::Ip6PayloadBeyondFrame;
  // RFC 4291 §2.7: a multicast address is never a source.
  const IpAddress source = load_ipv6_address(p + 8);
  if (is_ipv6_multicast(source)) return DropReason::Ip6BadSource;

  Ipv6Header& h = out.header;
  h.traffic_class = static_cast<uint8_t>((p[0] & 0x0f) << 4 | p[1] >> 4);
  h.flow_label = (uint32_t{p[1]} & 0x0f) << 16 | load_be16(p + 2);
  h.payload_length = payload_length;
  h.next_header = p[6];
  h.hop_limit = p[7];
  h.source = source;
  h.destination = load_ipv6_address(p + 24);
  out.packet = packet.first(kIpv6HeaderSize + payload_length);  // drops link padding
  out.protocol = h.next_header;
  out.payload_offset = kIpv6HeaderSize;
  out.protocol_field = 6;
  out.payload = out.packet.subspan(kIpv6HeaderSize);
  out.fragment.reset();
  return std::nullopt;
}

// Linux: ipv6_frag_rcv() and ip6_frag_queue()'s checks of the fragment's end
std::optional<Ipv6Problem> check_ipv6_fragment(const Ipv6FragmentInfo& fragment,
                                               size_t data_length) {
  if (fragment.more) {
    // An empty fragment adds nothing; Linux discards it without a report.
    if (data_length == 0) return problem(DropReason::Ip6FragBadLength);
    if (data_length % 8 != 0) {
      return problem(DropReason::Ip6FragBadLength, 0, kPayloadLengthField);
    }
  }
  // RFC 8200 §4.5: the reassembled payload (the unfragmentable extension headers and all the
  // fragments' data) must fit the 16-bit payload length.
  const size_t unfragmentable = fragment.header_offset - kIpv6HeaderSize;
  if (unfragmentable + fragment.offset + data_length > kIpv6MaxPayload) {
    return problem(DropReason::Ip6FragTooBig, 0, fragment.header_offset + kFragmentOffsetField);
  }
  return std::nullopt;
}

// Linux: ip6_parse_tlv() (hop-by-hop and destination options), ipv6_rthdr_rcv(),
// ipv6_frag_rcv(), with the loop of ip6_protocol_deliver_rcu() around them
std::optional<Ipv6Problem> walk_ipv6_extensions(Ipv6Datagram& datagram) {
  const ByteView packet = datagram.packet;
  size_t headers = 0;
  size_t header_bytes = 0;
  while (true) {
    const uint8_t type = datagram.protocol;
    if (type != kIpv6HopByHop && type != kIpv6Routing && type != kIpv6Fragment &&
        type != kIpv6DestinationOptions) {
      return std::nullopt;  // the upper layer, No Next Header, or one the Stack does not know
    }
    const size_t at = datagram.payload_offset;
    if (++headers > kIpv6MaxExtensionHeaders) return problem(DropReason::Ip6ExtTooMany);
    // RFC 8200 §4: a next header of 0 anywhere but in the fixed header is unrecognized.
    if (type == kIpv6HopByHop && at != kIpv6HeaderSize) {
      return problem(DropReason::Ip6HopByHopNotFirst, 1, datagram.protocol_field);
    }
    size_t length = kIpv6FragmentHeaderSize;
    if (type != kIpv6Fragment) {
      if (at + 2 > packet.size()) return problem(DropReason::Ip6ExtTruncated);
      length = (packet[at + 1] + 1u) * 8;  // Hdr Ext Len: 8-octet units beyond the first 8
    }
    if (at + length > packet.size()) return problem(DropReason::Ip6ExtTruncated);
    header_bytes += length;
    if (header_bytes > kIpv6MaxExtensionBytes) return problem(DropReason::Ip6ExtTooMany);

    if (type == kIpv6Routing) {
      if (auto refused = check_routing(packet, at)) return refused;
    } else if (type == kIpv6Fragment) {
      const uint16_t offset_flags = load_be16(&packet[at + kFragmentOffsetField]);
      const Ipv6FragmentInfo fragment{.id = load_be32(&packet[at + 4]),
                                      .offset = static_cast<uint16_t>(offset_flags & 0xfff8),
                                      .more = (offset_flags & 1) != 0,
                                      .header_offset = at,
                                      .next_header_field = datagram.protocol_field};
      // RFC 6946: an atomic fragment is a whole datagram, processed in isolation.
      if (fragment.offset != 0 || fragment.more) {
        if (auto bad = check_ipv6_fragment(fragment, packet.size() - at - length)) return bad;
        // Stop at the Fragment header: protocol and payload_offset still name it.
        datagram.fragment = fragment;
        return std::nullopt;
      }
    } else if (auto bad = walk_options(packet, at + 2, at + length)) {
      return bad;
    }
    pass_header(datagram, length);
  }
}

void write_ipv6_header(uint8_t* out, const Ipv6Header& header) {
  out[0] = static_cast<uint8_t>(0x60 | header.traffic_class >> 4);
  out[1] =
      static_cast<uint8_t>((header.traffic_class & 0x0f) << 4 | ((header.flow_label >> 16) & 0x0f));
  store_be16(out + 2, static_cast<uint16_t>(header.flow_label));
  store_be16(out + kPayloadLengthField, header.payload_length);
  out[6] = header.next_header;
  out[7] = header.hop_limit;
  // Both addresses are IPv6 ones (16 bytes): the header cannot carry another family.
  std::copy_n(header.source.bytes().data(), 16, out + 8);
  std::copy_n(header.destination.bytes().data(), 16, out + 24);
}

// RFC 8200 §8.1: source, destination, the 32-bit upper-layer length, three zero bytes and the
// next header. Linux: csum_ipv6_magic() (before its final fold and complement)
uint32_t ipv6_pseudo_header_sum(const IpAddress& source, const IpAddress& destination,
                                uint32_t upper_layer_length, uint8_t next_header) {
  InternetChecksum sum;
  sum.add(source.bytes());
  sum.add(destination.bytes());
  sum.add_u32(upper_layer_length);
  sum.add_u16(next_header);
  return static_cast<uint16_t>(~sum.finish());
}

}  // namespace tapstack
