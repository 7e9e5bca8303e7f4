// The sans-I/O core. A Stack makes no system calls, reads no clock and draws no randomness
// of its own: frames, time and a seed come in from the caller, frames to send go out through
// poll_transmit() or a sink. The same core runs over a TAP device, in a simulated network in
// virtual time, and under a fuzzer.
//
// Ethernet in and out, IPv4 in and out, and the wiring of the layers: ARP (stack/arp.h),
// reassembly (stack/reassembly.h), ICMP (stack/icmp.h) and TCP (stack/tcp/tcp.h, a library of
// its own) each own their part and config; they share the counters, the trace and the one
// drop path (stack/layer_context.h). TCP reaches IP through the TcpIpLayer interface the
// Stack implements (stack/tcp/context.h).
//
// RFCs to have read: 826 (ARP), 791 and 1122 §3.2 (IPv4), 815 (reassembly), 5722 (overlapping
// fragments), 792 (ICMP), 1812 §4.3.2.8 (ICMP error rate limiting).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "stack/address.h"
#include "stack/arp.h"
#include "stack/bytes.h"
#include "stack/counters.h"
#include "stack/error.h"
#include "stack/frame.h"
#include "stack/icmp.h"
#include "stack/icmp6.h"
#include "stack/ipv4.h"
#include "stack/ipv6.h"
#include "stack/layer_context.h"
#include "stack/ndisc.h"
#include "stack/random.h"
#include "stack/reassembly.h"
#include "stack/reassembly6.h"
#include "stack/tcp/context.h"
#include "stack/tcp/types.h"
#include "stack/time.h"
#include "stack/trace.h"

namespace tapstack {

struct StackConfig {
  MacAddress mac;
  // Our IPv4 address; 0.0.0.0/0 (the default) leaves IPv4 off: no ARP, IPv4 frames dropped.
  Ipv4Interface ipv4{Ipv4Address{}, 0};
  std::optional<Ipv4Address> gateway;
  // Our global IPv6 address; with it, IPv6 is on, with the link-local address made from the
  // MAC beside it (both through DAD before use). Without it, IPv6 is off.
  std::optional<Ipv6Interface> ipv6;
  std::optional<IpAddress> gateway6;  // on link: link-local or inside ipv6's prefix
  uint16_t mtu = 1500;
  uint64_t seed = 0;
  size_t transmit_queue_frames = 512;  // bound of the poll_transmit() queue
  bool gratuitous_arp = true;          // announce our address at start()
  ArpConfig arp;
  ReassemblyConfig reassembly;  // for both families
  IcmpConfig icmp;
  Icmp6Config icmp6;
  NdiscConfig ndisc;
  TcpConfig tcp;
};

class Tcp;

class Stack : private EthernetOutput,
              private Ipv4Output,
              private Ipv6Output,
              private TcpIpLayer {
 public:
  // offload: zero unless the sink was installed with LinkOffloads it can take.
  using TransmitSink = std::function<void(ByteView frame, const FrameOffload& offload)>;

  explicit Stack(StackConfig config);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Announces our address (gratuitous ARP) when so configured.
  void start(Instant now);
  // One whole Ethernet II frame from the wire. Never throws: bad input is counted and dropped.
  // offload: what the link's header said of it (a TAP with virtio-net headers).
  void on_frame(ByteView frame, Instant now, const FrameOffload& offload = {});
  // Frames read at once from the link (one wake-up of the event loop): between the two calls,
  // an ACK that received data calls for waits for end_burst(), so that the burst is
  // acknowledged once, as GRO makes Linux do (up to 64 KiB per connection). Without them
  // every frame is answered as it comes.
  void begin_burst();
  void end_burst(Instant now);
  // Runs every timer due at or before now.
  void on_timer(Instant now);
  // The earliest instant on_timer() has work to do; Instant::never() when none.
  Instant next_deadline() const;

  // Frames to send, oldest first; the view stays valid until the next call. Not used when a
  // sink is installed: then every frame goes to the sink as it is made.
  std::optional<ByteView> poll_transmit();
  // offloads: what the sink's link takes (TCP segmentation: TCP sends segments of up to
  // 64 KiB to peers whose segments are not signed, for the link to cut).
  void set_transmit_sink(TransmitSink sink, LinkOffloads offloads = {});
  const LinkOffloads& link_offloads() const override { return offloads_; }

  // ICMP echo request (ping) to dst; replies arrive through poll_echo_reply().
  Status send_echo_request(Ipv4Address dst, uint16_t id, uint16_t sequence, ByteView payload,
                           Instant now);
  std::optional<EchoReply> poll_echo_reply();
  // Sends payload as one IPv4 datagram (fragmented to the MTU when it must be).
  Status send_ipv4(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now);
  // ICMPv6 echo request to dst; replies arrive through poll_echo6_reply().
  Status send_echo6_request(const IpAddress& dst, uint16_t id, uint16_t sequence,
                            ByteView payload, Instant now);
  std::optional<Echo6Reply> poll_echo6_reply();
  // Sends payload as one IPv6 packet from our address for dst (fragmented to the path MTU
  // when it must be).
  Status send_ipv6(const IpAddress& dst, uint8_t next_header, ByteView payload, Instant now);

  // TCP sockets: listen, accept, connect, send, receive, close, ... (stack/tcp/tcp.h).
  Tcp& tcp() { return *tcp_; }
  const Tcp& tcp() const { return *tcp_; }

  const Counters& counters() const { return counters_; }
  const StackConfig& config() const { return config_; }
  Trace& trace() { return trace_; }
  std::optional<MacAddress> arp_lookup(Ipv4Address address) const;
  size_t reassembly_datagrams() const;  // both families
  size_t reassembly_bytes() const;
  bool has_ipv4() const { return !config_.ipv4.address.is_zero(); }
  bool has_ipv6() const { return config_.ipv6.has_value(); }
  // IPv6: our link-local address (from the MAC); the neighbour cache and DAD (ndisc.h): whether
  // each address passed DAD, and which failed (one line each).
  IpAddress ipv6_link_local() const { return link_local_; }
  const Ndisc* ndisc() const { return ndisc_.get(); }
  // The path MTU to an IPv6 destination: lowered by Packet Too Big, the link's otherwise.
  uint32_t path_mtu(const IpAddress& destination, Instant now) const;

 private:
  void ipv4_input(ByteView packet, Instant now, const FrameOffload& offload);
  void deliver(const Ipv4Datagram& datagram, Instant now);
  // offload.segment_size: payload is one TCP segment larger than the MTU for the link to cut
  // (not fragmented).
  Status ipv4_output(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now,
                     const FrameOffload& offload = {});
  // Ipv4Output, for ICMP.
  Status send_ip_payload(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now) override;
  // EthernetOutput: a whole Ethernet frame (dst, our MAC, type, payload) to the sink or the
  // queue.
  void emit_frame(const MacAddress& dst, uint16_t ethertype, ByteView payload,
                  const FrameOffload& offload) override;
  // TcpIpLayer, for TCP.
  Result<IpRoute> route(const IpAddress& remote) const override;
  Status send_segment(const IpAddress& source, const IpAddress& destination, ByteView segment,
                      Instant now, const FrameOffload& offload) override;
  // IPv6. Linux: ipv6_rcv() → ip6_rcv_finish() → ip6_input_finish()
  void ipv6_input(ByteView packet, Instant now, const FrameOffload& offload);
  void deliver6(const Ipv6Datagram& datagram, Instant now);
  // Whether an IPv6 destination is ours: an address that passed DAD, or a group we joined.
  // Linux: ipv6_chk_addr(), ipv6_chk_mcast_addr()
  bool ipv6_multicast_joined(const IpAddress& group) const;
  // Routes and sends one IPv6 packet (fragmented when larger than the path MTU and not a
  // segment for the link to cut). Linux: ip6_xmit() → ip6_output() → ip6_fragment()
  Status ipv6_output(const IpAddress& source, const IpAddress& destination, uint8_t next_header,
                     ByteView payload, Instant now, uint8_t hop_limit,
                     const FrameOffload& offload = {});
  // Ipv6Output, for ICMPv6 and neighbour discovery.
  Status send_ip6_payload(const IpAddress& source, const IpAddress& destination,
                          uint8_t next_header, ByteView payload, Instant now,
                          uint8_t hop_limit) override;
  std::optional<IpAddress> ip6_source_for(const IpAddress& destination) const override;
  // A Packet Too Big: the path MTU to destination is now mtu. Linux: rt6_pmtu_discovery()
  void packet_too_big(const IpAddress& destination, uint32_t mtu, Instant now);
  // The one drop path (LayerContext::drop).
  void drop(DropReason reason) { context_.drop(reason); }

  StackConfig config_;
  Random random_;
  Counters counters_;
  Trace trace_;
  LayerContext context_{counters_, trace_};
  TransmitSink sink_;
  LinkOffloads offloads_;
  FrameRing tx_queue_;
  bool popped_ = false;             // poll_transmit() handed out the front frame
  FrameBuffer scratch_;             // frames for the sink are built here
  std::vector<uint8_t> ip_buffer_;  // one outgoing datagram or fragment
  std::unique_ptr<ArpTable> arp_;
  std::unique_ptr<Reassembler> reassembler_;
  std::unique_ptr<Icmp> icmp_;
  std::unique_ptr<Ndisc> ndisc_;  // IPv6: null when off
  std::unique_ptr<Icmp6> icmp6_;
  std::unique_ptr<Reassembler6> reassembler6_;
  std::unique_ptr<Tcp> tcp_;
  uint16_t next_ip_id_ = 0;
  uint32_t next_ip6_id_ = 0;  // Fragment header identifications
  IpAddress link_local_ = ipv6_unspecified();
  // Path MTUs learned from Packet Too Big, each until it expires (Linux: mtu_expires, 10 min);
  // at most kMaxPathMtus, the oldest forgotten first.
  struct PathMtu {
    IpAddress destination;
    uint32_t mtu;
    Instant expires;
  };
  std::vector<PathMtu> path_mtus_;
  Instant now_;  // the last instant the stack was given (for the Packet Too Big handler)
};

}  // namespace tapstack
