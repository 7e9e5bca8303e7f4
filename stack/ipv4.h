// IPv4 header parsing and writing (RFC 791, RFC 1122 §3.2.1), and the shared constants of
// the network layer.
#pragma once

#include <cstdint>
#include <optional>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/counters.h"
#include "stack/error.h"
#include "stack/time.h"

namespace tapstack {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint8_t kProtocolIcmp = 1;
constexpr uint8_t kProtocolTcp = 6;
constexpr uint8_t kProtocolUdp = 17;
constexpr size_t kIpv4MinHeaderSize = 20;
constexpr size_t kIpv4MaxDatagramSize = 65535;
constexpr uint8_t kDefaultTtl = 64;  // Linux: ip_default_ttl

struct Ipv4Header {
  uint8_t header_length = kIpv4MinHeaderSize;  // in bytes, options included
  uint8_t tos = 0;
  uint16_t total_length = 0;
  uint16_t id = 0;
  bool dont_fragment = false;
  bool more_fragments = false;
  uint16_t fragment_offset = 0;  // in bytes
  uint8_t ttl = kDefaultTtl;
  uint8_t protocol = 0;
  Ipv4Address source;
  Ipv4Address destination;

  bool is_fragment() const { return more_fragments || fragment_offset != 0; }
};

// A received datagram after header checks: `packet` is the header and payload together
// (ICMP errors quote it), `payload` what follows the header.
struct Ipv4Datagram {
  Ipv4Header header;
  ByteView packet;
  ByteView payload;
  // The link vouched for the TCP checksum (FrameOffload::checksum_offloaded): not checked.
  bool checksum_offloaded = false;
};

// The checks of RFC 1122 §3.2.1 and Linux's ip_rcv_core(): version, header length, total
// length against what arrived, header checksum, TTL. Trailing link padding is cut off.
// Options are tolerated and skipped. Returns the reason when the packet must be dropped.
std::optional<DropReason> parse_ipv4(ByteView packet, Ipv4Datagram& out);

// Writes a 20-byte header (no options) with its checksum at out.
void write_ipv4_header(uint8_t* out, const Ipv4Header& header);

// Where a layer above IPv4 (ICMP) hands the payload of a datagram to be routed and sent:
// fragmented to the MTU when it must be, resolved through ARP. A failure was counted and
// traced as a drop where it happened. The Stack is the one implementation.
// Linux: ip_push_pending_frames() / ip_queue_xmit()
class Ipv4Output {
 public:
  virtual Status send_ip_payload(Ipv4Address dst, uint8_t protocol, ByteView payload,
                                 Instant now) = 0;

 protected:
  ~Ipv4Output() = default;
};

}  // namespace tapstack
