// What the TCP layer is given by the stack around it, and all it is given: the counters, the
// trace and the one drop path every layer shares, a random source, and the IP layer below as
// an interface. TCP includes nothing of the Stack (stack/stack.h): the Stack hands this down,
// and a second IP layer (IPv6) serves TCP through the same interface, by the addresses'
// family, without TCP changing.
//
// Time is not here: every call into TCP carries the current Instant (the Stack reads no clock
// either; its caller does).
#pragma once

#include <cstdint>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"
#include "stack/frame.h"
#include "stack/layer_context.h"
#include "stack/random.h"
#include "stack/time.h"

namespace tapstack {

// How TCP reaches a peer: the address to send from, and the largest datagram the way takes.
struct IpRoute {
  IpAddress source;
  uint16_t mtu = 0;
};

// One segment as the IP layer hands it up: the addresses of the datagram that carried it.
// Linux: the skb with its ip_hdr()/ipv6_hdr() at tcp_v4_rcv()/tcp_v6_rcv()
struct TcpArrival {
  IpAddress source;
  IpAddress destination;
  ByteView segment;  // the TCP header and payload
  // The datagram was sent to one of our addresses, not to a broadcast or multicast one
  // (Linux: skb->pkt_type == PACKET_HOST): TCP answers nothing else.
  bool to_us = true;
  // The link vouched for the checksum (FrameOffload::checksum_offloaded): not checked.
  bool checksum_offloaded = false;
};

// The IP layer as TCP sees it: a route to a peer, and a way to send a segment. The Stack
// implements it for IPv4 (and, by the addresses' family, for IPv6).
// Linux: struct inet_connection_sock_af_ops (ipv4_specific: queue_xmit, net_header_len)
class TcpIpLayer {
 public:
  // Where segments to remote leave from, and the MTU on the way; ENETUNREACH for an address
  // TCP may not connect to (unspecified, broadcast, multicast, another family).
  // Linux: ip_route_connect()
  virtual Result<IpRoute> route(const IpAddress& remote) const = 0;
  // One whole TCP segment (header, options, payload, checksum or its pseudo-header sum as
  // offload says) from source to destination. A failure (no route, no neighbour) was counted
  // and traced as a drop where it happened.
  // offload.segment_size: the payload is several segments for the link to cut (TSO).
  // Linux: ip_queue_xmit() for a socket's segments, ip_send_unicast_reply() for the others
  virtual Status send_segment(const IpAddress& source, const IpAddress& destination,
                              ByteView segment, Instant now, const FrameOffload& offload) = 0;
  // What the link takes off TCP's hands (segmentation, checksums).
  virtual const LinkOffloads& link_offloads() const = 0;

 protected:
  ~TcpIpLayer() = default;
};

// The header sizes TCP plans its segments with, by family.
constexpr uint16_t ip_header_size(IpFamily family) {
  return family == IpFamily::Ipv4 ? 20 : 40;
}
// The most one datagram of the family carries after its header: a TCP segment's limit (IPv6
// jumbograms aside).
constexpr size_t max_ip_payload(IpFamily family) {
  return family == IpFamily::Ipv4 ? 65535 - 20 : 65535;
}
// The MSS to announce over a route: its MTU less the IP and TCP headers (RFC 6691).
// Linux: tcp_mss_clamp()/tcp_advertise_mss() from dst_metric_advmss()
inline uint16_t advertised_mss(const IpRoute& route) {
  return static_cast<uint16_t>(route.mtu - ip_header_size(route.source.family()) - 20);
}

// Everything TCP is handed (a LayerContext: counters, trace, drop).
struct TcpContext : LayerContext {
  Random& random;
  TcpIpLayer& ip;
};

}  // namespace tapstack
