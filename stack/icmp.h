// ICMP for IPv4 (RFC 792): echo (ping) both ways, and the errors we send, Destination
// Unreachable (protocol) and Time Exceeded (reassembly), never about an error, a broadcast or
// a later fragment (RFC 1122 §3.2.2), at a limited rate (RFC 1812 §4.3.2.8).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"
#include "stack/ipv4.h"
#include "stack/layer_context.h"
#include "stack/time.h"

namespace tapstack {

struct IcmpConfig {
  // Token bucket for ICMP errors (RFC 1812 §4.3.2.8). Linux: icmp_msgs_per_sec, _burst.
  uint32_t errors_per_second = 1000;
  uint32_t error_burst = 50;
};

struct EchoReply {
  Ipv4Address from;
  uint16_t id = 0;
  uint16_t sequence = 0;
  size_t payload_size = 0;
  Instant received;
};

class Icmp {
 public:
  // ours: the stack's address; messages go out through ip.
  Icmp(const IcmpConfig& config, Ipv4Address ours, LayerContext& context, Ipv4Output& ip);

  void start(Instant now) { refilled_ = now; }
  // One ICMP message delivered to us. Linux: icmp_rcv()
  void input(const Ipv4Datagram& datagram, Instant now);
  // The errors we send about a datagram we received (or, for reassembly, its first
  // fragment). Linux: icmp_send()
  void protocol_unreachable(const Ipv4Datagram& datagram, Instant now);
  void reassembly_time_exceeded(const Ipv4Datagram& first_fragment, Instant now);

  Status send_echo_request(Ipv4Address dst, uint16_t id, uint16_t sequence, ByteView payload,
                           Instant now);
  std::optional<EchoReply> poll_echo_reply();

 private:
  void send_error(const Ipv4Datagram& datagram, uint8_t type, uint8_t code, Instant now);

  IcmpConfig config_;
  Ipv4Address ours_;
  LayerContext& context_;
  Ipv4Output& ip_;
  std::vector<uint8_t> message_;  // one outgoing message
  std::deque<EchoReply> echo_replies_;
  double tokens_ = 0;  // the error token bucket
  Instant refilled_;
};

}  // namespace tapstack
