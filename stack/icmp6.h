// ICMPv6 (RFC 4443): echo both ways, the errors we send (Destination Unreachable, Time
// Exceeded, Parameter Problem) at a limited rate and never about an error message, a
// multicast destination (except as RFC 4443 §2.4 (e.3) allows) or an unspecified or multicast
// source, and the errors we receive: Packet Too Big lowers the path MTU (RFC 8201). Neighbour
// discovery's messages (types 133 to 137) go to Ndisc.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"
#include "stack/ipv6.h"
#include "stack/layer_context.h"
#include "stack/time.h"

namespace tapstack {

class Ndisc;

// ICMPv6 types (RFC 4443 §2.1, RFC 4861 §4).
constexpr uint8_t kIcmp6DestinationUnreachable = 1;
constexpr uint8_t kIcmp6PacketTooBig = 2;
constexpr uint8_t kIcmp6TimeExceeded = 3;
constexpr uint8_t kIcmp6ParameterProblem = 4;
constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;
constexpr uint8_t kIcmp6RouterSolicitation = 133;
constexpr uint8_t kIcmp6RouterAdvertisement = 134;
constexpr uint8_t kIcmp6NeighborSolicitation = 135;
constexpr uint8_t kIcmp6NeighborAdvertisement = 136;
constexpr uint8_t kIcmp6Redirect = 137;

// The ICMPv6 checksum of `message` over the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1),
// the message's checksum field taken as it is: 0 for a received message whose checksum is
// right; for one being built, the value to store in the field left zero.
uint16_t icmp6_checksum(const IpAddress& source, const IpAddress& destination, ByteView message);

struct Icmp6Config {
  // Token bucket for ICMPv6 errors (RFC 4443 §2.4 (f)). Linux: icmp_msgs_per_sec, _burst
  // (shared by both families there).
  uint32_t errors_per_second = 1000;
  uint32_t error_burst = 50;
};

struct Echo6Reply {
  IpAddress from;
  uint16_t id = 0;
  uint16_t sequence = 0;
  size_t payload_size = 0;
  Instant received;
};

class Icmp6 {
 public:
  // A Packet Too Big for a packet we sent to `destination`: its path MTU is now `mtu` (at
  // least 1280). Linux: icmpv6_err() → tcpv6_err() → tcp_v6_mtu_reduced()
  using PacketTooBig = std::function<void(const IpAddress& destination, uint32_t mtu)>;

  Icmp6(const Icmp6Config& config, LayerContext& context, Ipv6Output& ip, Ndisc& ndisc);

  void start(Instant now) { refilled_ = now; }
  void set_packet_too_big_handler(PacketTooBig handler) { packet_too_big_ = std::move(handler); }
  // One ICMPv6 message delivered to us (datagram.protocol 58, payload the message): checksum,
  // then by type. Linux: icmpv6_rcv()
  void input(const Ipv6Datagram& datagram, Instant now);

  // The errors we send about a packet we received; `datagram` as parse_ipv6 made it (its
  // packet is quoted, as much as fits in 1280 bytes). Linux: icmp6_send()
  void port_unreachable(const Ipv6Datagram& datagram, Instant now);
  void parameter_problem(const Ipv6Datagram& datagram, const Ipv6ParameterProblem& problem,
                         Instant now);
  // Reassembly time ran out; first_fragment as received.
  void reassembly_time_exceeded(ByteView first_fragment, Instant now);

  Status send_echo_request(const IpAddress& dst, uint16_t id, uint16_t sequence,
                           ByteView payload, Instant now);
  std::optional<Echo6Reply> poll_echo_reply();

 private:
  void echo_request(const Ipv6Datagram& datagram, Instant now);
  void packet_too_big(ByteView message);
  void send_error(ByteView packet, uint8_t type, uint8_t code, uint32_t parameter,
                  bool even_if_multicast, Instant now);
  bool take_token(Instant now);
  std::optional<IpAddress> source_for(const IpAddress& received_at, const IpAddress& peer) const;
  // Sends the first size bytes of message_, checksum in place, and counts it under counter.
  void send_message(const IpAddress& source, const IpAddress& destination, size_t size,
                    Counter counter, Instant now);

  Icmp6Config config_;
  LayerContext& context_;
  Ipv6Output& ip_;
  Ndisc& ndisc_;
  PacketTooBig packet_too_big_;
  std::vector<uint8_t> message_;  // one outgoing message
  std::deque<Echo6Reply> echo_replies_;
  double tokens_ = 0;  // the error token bucket
  Instant refilled_;
};

}  // namespace tapstack
