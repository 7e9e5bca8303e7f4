// IPv6 header parsing and writing (RFC 8200), the extension-header walk with its bounds, and
// the constants of the IPv6 network layer.
//
// The walk is where embedded stacks went wrong (AMNESIA:33: header chains that loop or run
// past the packet), so it is bounded twice: at most kIpv6MaxExtensionHeaders headers and none
// reaching past the payload length. Every length is checked before it is read.
#pragma once

#include <cstdint>
#include <optional>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/counters.h"
#include "stack/error.h"
#include "stack/time.h"

namespace tapstack {

constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr size_t kIpv6HeaderSize = 40;
constexpr size_t kIpv6FragmentHeaderSize = 8;
constexpr uint16_t kIpv6MinMtu = 1280;  // RFC 8200 §5
constexpr uint8_t kDefaultHopLimit = 64;  // Linux: ipv6 hop_limit
// Next-header values (IANA "Assigned Internet Protocol Numbers").
constexpr uint8_t kIpv6HopByHop = 0;
constexpr uint8_t kIpv6Routing = 43;
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kProtocolIcmpv6 = 58;
constexpr uint8_t kIpv6NoNextHeader = 59;
constexpr uint8_t kIpv6DestinationOptions = 60;
// The walk's bounds: more extension headers than this, or more bytes of them, drop the packet
// (Linux bounds options per header: max_hbh_opts_cnt, max_dst_opts_cnt = 8).
constexpr size_t kIpv6MaxExtensionHeaders = 8;
constexpr size_t kIpv6MaxExtensionBytes = 2048;

struct Ipv6Header {
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  uint16_t payload_length = 0;  // bytes after the fixed header, extension headers included
  uint8_t next_header = 0;
  uint8_t hop_limit = kDefaultHopLimit;
  IpAddress source = ipv6_unspecified();
  IpAddress destination = ipv6_unspecified();
};

// The Fragment header of a datagram (RFC 8200 §4.5), as the walk found it.
struct Ipv6FragmentInfo {
  uint32_t id = 0;
  uint16_t offset = 0;  // in bytes
  bool more = false;
  // Where the Fragment header starts in the packet: what precedes it is the unfragmentable
  // part (the fixed header and the extension headers before it).
  size_t header_offset = 0;
  // Where the next-header byte that names the Fragment header is (6 for the fixed header's).
  size_t next_header_field = 6;
};

// A received IPv6 packet after the checks.
struct Ipv6Datagram {
  Ipv6Header header;
  ByteView packet;     // the fixed header and all that follows, link padding cut off
  uint8_t protocol = 0;  // the upper-layer protocol: the next header after the walk
  ByteView payload;    // what follows the last header the walk passed
  // Where in packet the payload starts, and where the next-header byte naming `protocol` is.
  size_t payload_offset = kIpv6HeaderSize;
  size_t protocol_field = 6;
  std::optional<Ipv6FragmentInfo> fragment;  // a (non-atomic) fragment: for reassembly
  // The link vouched for the upper layer's checksum (FrameOffload::checksum_offloaded).
  bool checksum_offloaded = false;
};

// What an error found by the walk calls for: an ICMPv6 Parameter Problem (RFC 4443 §3.4) with
// this code and pointer (an offset in the packet), or nothing but the drop.
struct Ipv6ParameterProblem {
  uint8_t code = 0;  // 0 erroneous header field, 1 unrecognized next header, 2 unrecognized
                     // option, 3 first fragment lacks the upper-layer header (RFC 7112)
  uint32_t pointer = 0;
  // RFC 8200 §4.2: option types 10 are reported even to a multicast destination, 11 are not.
  bool even_if_multicast = false;
};
struct Ipv6Problem {
  DropReason reason;
  std::optional<Ipv6ParameterProblem> icmp;
};

// The fixed header's checks, as Linux's ipv6_rcv() makes them: version 6, payload length
// within what arrived (link padding cut off), source not multicast. Does not walk extension
// headers: on return protocol is the fixed header's next header, payload what follows it.
// Jumbograms (payload length 0 with a hop-by-hop Jumbo option) are not supported: dropped.
std::optional<DropReason> parse_ipv6(ByteView packet, Ipv6Datagram& out);

// Walks the extension headers from datagram.protocol/payload_offset (RFC 8200 §4): hop-by-hop
// (only right after the fixed header), routing (type 0 refused, RFC 5095; another type with
// segments left refused with a Parameter Problem; with none left, skipped), destination
// options, and a Fragment header, where it stops and fills datagram.fragment (an atomic
// fragment, offset 0 and M clear, RFC 6946, is passed over instead). Options: Pad1, PadN, and
// unknown ones by their two high bits (skip, discard, discard and report, discard and report
// unless multicast). Stops at the first other next header (the upper layer) with protocol,
// payload_offset and payload set. Linux: ip6_parse_tlv(), ipv6_rthdr_rcv(), ipv6_frag_rcv()
std::optional<Ipv6Problem> walk_ipv6_extensions(Ipv6Datagram& datagram);

// RFC 8200 §4.5's checks of one fragment carrying data_length bytes after its Fragment header:
// a fragment with M set carries a multiple of 8 (Parameter Problem code 0 at the payload length
// field), and the reassembled payload length stays within 65535 (code 0 at the fragment offset
// field). The walk and the reassembler both ask it. Linux: the end checks of ip6_frag_queue()
std::optional<Ipv6Problem> check_ipv6_fragment(const Ipv6FragmentInfo& fragment,
                                               size_t data_length);

// Writes the 40-byte fixed header at out.
void write_ipv6_header(uint8_t* out, const Ipv6Header& header);

// The sum of the IPv6 pseudo-header (RFC 8200 §8.1), not complemented: the upper-layer checksum
// of TCP and ICMPv6 starts from it.
uint32_t ipv6_pseudo_header_sum(const IpAddress& source, const IpAddress& destination,
                                 uint32_t upper_layer_length, uint8_t next_header);

// Where a layer above IPv6 (ICMPv6, neighbour discovery) hands a payload to be sent: routed
// (on link, or through the gateway), fragmented to the path MTU when it must be, resolved
// through neighbour discovery (or, for multicast, mapped to its Ethernet group). A failure
// was counted and traced as a drop where it happened. The Stack is the one implementation.
// Linux: ip6_xmit(), ip6_output()
class Ipv6Output {
 public:
  // source: ours, or :: for neighbour discovery's DAD probes.
  virtual Status send_ip6_payload(const IpAddress& source, const IpAddress& destination,
                                  uint8_t next_header, ByteView payload, Instant now,
                                  uint8_t hop_limit) = 0;
  // The address we send from to destination (RFC 6724 in its simplest form: link-local for a
  // link-local destination, else our global address); nullopt when we have none usable.
  virtual std::optional<IpAddress> ip6_source_for(const IpAddress& destination) const = 0;

 protected:
  ~Ipv6Output() = default;
};

}  // namespace tapstack
