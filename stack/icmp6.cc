// ICMPv6 (RFC 4443). Read with it: RFC 8200 §8.1 (the pseudo-header of the checksum) and
// RFC 4443 §2.4 (the rules on sending errors), RFC 8201 (Packet Too Big and the path MTU).
#include "stack/icmp6.h"

#include <algorithm>
#include <cerrno>

#include "stack/checksum.h"
#include "stack/ndisc.h"

namespace tapstack {
namespace {

constexpr size_t kIcmp6HeaderSize = 4;  // type, code, checksum
constexpr size_t kIcmp6EchoHeaderSize = 8;
constexpr size_t kIcmp6ErrorHeaderSize = 8;  // and the 32-bit parameter (MTU, pointer, unused)
constexpr uint8_t kCodePortUnreachable = 4;
constexpr uint8_t kCodeReassemblyTimeExceeded = 1;
// RFC 4443 §2.4 (c): an error carries as much of the offending packet as keeps it within the
// minimum MTU. Linux: icmp6_send()'s len = min(len, IPV6_MIN_MTU - sizeof(ipv6hdr) -
// sizeof(icmp6hdr))
constexpr size_t kIcmp6ErrorMaxQuote = kIpv6MinMtu - kIpv6HeaderSize - kIcmp6ErrorHeaderSize;
constexpr size_t kMaxQueuedEchoReplies = 1024;
constexpr size_t kMaxIcmp6MessageSize = 65535;

IpAddress address_at(const uint8_t* p) {
  return IpAddress::ipv6(std::span<const uint8_t, 16>(p, 16));
}

// The upper-layer header of a packet (fixed header first) and where it starts: extension
// headers skipped, at most kIpv6MaxExtensionHeaders of them. nullopt when it cannot be told
// (a chain too long or truncated, a later fragment). Linux: ipv6_skip_exthdr()
struct UpperLayer {
  uint8_t protocol;
  size_t offset;
};
std::optional<UpperLayer> find_upper_layer(ByteView packet) {
  if (packet.size() < kIpv6HeaderSize) return std::nullopt;
  uint8_t next = packet[6];
  size_t offset = kIpv6HeaderSize;
  for (size_t count = 0; count <= kIpv6MaxExtensionHeaders; ++count) {
    if (next != kIpv6HopByHop && next != kIpv6Routing && next != kIpv6DestinationOptions &&
        next != kIpv6Fragment) {
      return UpperLayer{next, offset};
    }
    if (packet.size() < offset + 8) return std::nullopt;
    const uint8_t* header = packet.data() + offset;
    if (next == kIpv6Fragment) {
      if ((load_be16(header + 2) & 0xfff8) != 0) return std::nullopt;  // not the first
      offset += kIpv6FragmentHeaderSize;
    } else {
      offset += (size_t{header[1]} + 1) * 8;
    }
    next = header[0];
  }
  return std::nullopt;
}

// RFC 4443 §2.4 (e.1), and RFC 4861's messages besides: an error or neighbour discovery
// message is never the subject of an error. A message whose type cannot be read counts as
// one (Linux: is_ineligible()).
bool is_icmp6_error_or_ndisc(ByteView packet) {
  const auto upper = find_upper_layer(packet);
  if (!upper || upper->protocol != kProtocolIcmpv6) return false;
  if (packet.size() <= upper->offset) return true;
  const uint8_t type = packet[upper->offset];
  return type < kIcmp6EchoRequest || (type >= kIcmp6RouterSolicitation && type <= kIcmp6Redirect);
}

}  // namespace

// The pseudo-header (RFC 8200 §8.1): source, destination, the 32-bit upper-layer length,
// three zero bytes and next header 58. Linux: csum_ipv6_magic()
uint16_t icmp6_checksum(const IpAddress& source, const IpAddress& destination, ByteView message) {
  InternetChecksum sum;
  sum.add(source.bytes());
  sum.add(destination.bytes());
  sum.add_u32(static_cast<uint32_t>(message.size()));
  sum.add_u16(kProtocolIcmpv6);
  sum.add(message);
  return sum.finish();
}

Icmp6::Icmp6(const Icmp6Config& config, LayerContext& context, Ipv6Output& ip, Ndisc& ndisc)
    : config_(config),
      context_(context),
      ip_(ip),
      ndisc_(ndisc),
      message_(kMaxIcmp6MessageSize),
      tokens_(config.error_burst) {}

// Linux: icmpv6_rcv()
void Icmp6::input(const Ipv6Datagram& datagram, Instant now) {
  Counters& counters = context_.counters;
  Trace& trace = context_.trace;
  const Ipv6Header& h = datagram.header;
  const ByteView message = datagram.payload;
  counters.add(Counter::Icmp6InMsgs);
  if (message.size() < kIcmp6HeaderSize) return context_.drop(DropReason::Icmp6Truncated);
  // A checksum the link vouched for (FrameOffload::checksum_offloaded) is not summed again.
  if (!datagram.checksum_offloaded && icmp6_checksum(h.source, h.destination, message) != 0) {
    return context_.drop(DropReason::Icmp6BadChecksum);
  }
  const uint8_t type = message[0];
  switch (type) {
    case kIcmp6EchoRequest:
      counters.add(Counter::Icmp6InEchos);
      return echo_request(datagram, now);
    case kIcmp6EchoReply: {
      counters.add(Counter::Icmp6InEchoReplies);
      if (message.size() < kIcmp6EchoHeaderSize) return context_.drop(DropReason::Icmp6Malformed);
      const uint16_t id = load_be16(message.data() + 4);
      const uint16_t sequence = load_be16(message.data() + 6);
      trace.step("icmpv6 echo reply id={} seq={}", id, sequence);
      if (echo_replies_.size() >= kMaxQueuedEchoReplies) echo_replies_.pop_front();
      echo_replies_.push_back({h.source, id, sequence, message.size() - kIcmp6EchoHeaderSize, now});
      return;
    }
    case kIcmp6DestinationUnreachable:
      counters.add(Counter::Icmp6InDestUnreachs);
      trace.step("icmpv6 destination unreachable code {}", message[1]);
      return;
    case kIcmp6PacketTooBig:
      counters.add(Counter::Icmp6InPktTooBigs);
      return packet_too_big(message);
    case kIcmp6TimeExceeded:
      counters.add(Counter::Icmp6InTimeExcds);
      trace.step("icmpv6 time exceeded code {}", message[1]);
      return;
    case kIcmp6ParameterProblem:
      counters.add(Counter::Icmp6InParmProblems);
      trace.step("icmpv6 parameter problem code {}", message[1]);
      return;
    case kIcmp6RouterSolicitation:
      counters.add(Counter::Icmp6InRouterSolicits);
      return ndisc_.input(datagram, message, now);
    case kIcmp6RouterAdvertisement:
      counters.add(Counter::Icmp6InRouterAdvertisements);
      return ndisc_.input(datagram, message, now);
    case kIcmp6NeighborSolicitation:
      counters.add(Counter::Icmp6InNeighborSolicits);
      return ndisc_.input(datagram, message, now);
    case kIcmp6NeighborAdvertisement:
      counters.add(Counter::Icmp6InNeighborAdvertisements);
      return ndisc_.input(datagram, message, now);
    case kIcmp6Redirect:
      counters.add(Counter::Icmp6InRedirects);
      return ndisc_.input(datagram, message, now);
    default:
      // RFC 4443 §2.4 (a), (b): unknown informational messages are discarded; unknown errors
      // would go to the upper layer, which has no use for them.
      trace.step("icmpv6 type {} ignored", type);
      return;
  }
}

// RFC 4443 §4.2. A request to a multicast group is answered (Linux's icmpv6_echo_ignore_multicast
// is 0) from a unicast address of ours, never from the group. Linux: icmpv6_echo_reply()
void Icmp6::echo_request(const Ipv6Datagram& datagram, Instant now) {
  const Ipv6Header& h = datagram.header;
  const ByteView message = datagram.payload;
  if (message.size() < kIcmp6EchoHeaderSize) return context_.drop(DropReason::Icmp6Malformed);
  const uint16_t id = load_be16(message.data() + 4);
  const uint16_t sequence = load_be16(message.data() + 6);
  context_.trace.step("icmpv6 echo id={} seq={}", id, sequence);
  if (is_ipv6_unspecified(h.source) || is_ipv6_multicast(h.source)) {
    context_.trace.step("from {}: no reply", h.source);
    return;
  }
  const std::optional<IpAddress> source = source_for(h.destination, h.source);
  if (!source) {
    context_.trace.step("no address to reply from");
    return;
  }
  uint8_t* reply = message_.data();
  std::copy_n(message.data(), message.size(), reply);
  reply[0] = kIcmp6EchoReply;
  reply[1] = 0;
  store_be16(reply + 2, 0);
  store_be16(reply + 2, icmp6_checksum(*source, h.source, {reply, message.size()}));
  context_.trace.step("reply from {}", *source);
  send_message(*source, h.source, message.size(), Counter::Icmp6OutEchoReplies, now);
}

// RFC 8201 §4: an MTU below the IPv6 minimum is taken as 1280. The quoted packet is ours; its
// destination is the path that shrank. Linux: icmpv6_notify() → tcp_v6_err()
void Icmp6::packet_too_big(ByteView message) {
  if (message.size() < kIcmp6ErrorHeaderSize + kIpv6HeaderSize ||
      (message[kIcmp6ErrorHeaderSize] >> 4) != 6) {
    return context_.drop(DropReason::Icmp6Malformed);
  }
  const uint32_t mtu = std::max<uint32_t>(load_be32(message.data() + 4), kIpv6MinMtu);
  const IpAddress destination = address_at(message.data() + kIcmp6ErrorHeaderSize + 24);
  context_.trace.step("icmpv6 packet too big: path mtu to {} is {}", destination, mtu);
  if (packet_too_big_) packet_too_big_(destination, mtu);
}

void Icmp6::port_unreachable(const Ipv6Datagram& datagram, Instant now) {
  send_error(datagram.packet, kIcmp6DestinationUnreachable, kCodePortUnreachable, 0, false, now);
}

void Icmp6::parameter_problem(const Ipv6Datagram& datagram, const Ipv6ParameterProblem& problem,
                              Instant now) {
  send_error(datagram.packet, kIcmp6ParameterProblem, problem.code, problem.pointer,
             problem.even_if_multicast, now);
}

void Icmp6::reassembly_time_exceeded(ByteView first_fragment, Instant now) {
  send_error(first_fragment, kIcmp6TimeExceeded, kCodeReassemblyTimeExceeded, 0, false, now);
}

// RFC 4443 §2.4 (e), (f): no error about an error (nor a neighbour discovery message), to a
// multicast destination (but Packet Too Big and a Parameter Problem about an option whose type
// asks for one), from an unspecified or multicast source; at most a token bucket's rate.
// Linux: icmp6_send(), icmpv6_xrlim_allow()
void Icmp6::send_error(ByteView packet, uint8_t type, uint8_t code, uint32_t parameter,
                       bool even_if_multicast, Instant now) {
  if (packet.size() < kIpv6HeaderSize) return;
  const IpAddress offender = address_at(packet.data() + 8);
  const IpAddress offended = address_at(packet.data() + 24);
  if (is_ipv6_multicast(offended) && type != kIcmp6PacketTooBig && !even_if_multicast) {
    context_.trace.step("no icmpv6 error about a packet to {}", offended);
    return;
  }
  if (is_ipv6_unspecified(offender) || is_ipv6_multicast(offender)) {
    context_.trace.step("no icmpv6 error to {}", offender);
    return;
  }
  if (is_icmp6_error_or_ndisc(packet)) {
    context_.trace.step("no icmpv6 error about an icmpv6 error or neighbour discovery");
    return;
  }
  // Linux exempts Packet Too Big from the limit (icmpv6_mask_allow()).
  if (type != kIcmp6PacketTooBig && !take_token(now)) {
    return context_.drop(DropReason::Icmp6RateLimited);
  }
  const std::optional<IpAddress> source = source_for(offended, offender);
  if (!source) {
    context_.trace.step("no address to send an icmpv6 error from");
    return;
  }
  const size_t quote = std::min(packet.size(), kIcmp6ErrorMaxQuote);
  uint8_t* message = message_.data();
  message[0] = type;
  message[1] = code;
  store_be16(message + 2, 0);
  store_be32(message + 4, parameter);
  std::copy_n(packet.data(), quote, message + kIcmp6ErrorHeaderSize);
  const size_t size = kIcmp6ErrorHeaderSize + quote;
  store_be16(message + 2, icmp6_checksum(*source, offender, {message, size}));
  context_.trace.step("icmpv6 error type {} code {} → {}", type, code, offender);
  const Counter counter = type == kIcmp6DestinationUnreachable ? Counter::Icmp6OutDestUnreachs
                          : type == kIcmp6TimeExceeded         ? Counter::Icmp6OutTimeExcds
                                                               : Counter::Icmp6OutParmProblems;
  send_message(*source, offender, size, counter, now);
}

// Token bucket refilled at errors_per_second, holding at most error_burst.
// Linux: icmp_global_allow()
bool Icmp6::take_token(Instant now) {
  const double elapsed = (now - refilled_).seconds_f();
  tokens_ = std::min<double>(config_.error_burst, tokens_ + elapsed * config_.errors_per_second);
  refilled_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

// RFC 4443 §2.2: a message answering one sent to a unicast address of ours comes from that
// address; else from the address the IP layer picks for the peer. Linux: icmp6_send()'s saddr
std::optional<IpAddress> Icmp6::source_for(const IpAddress& received_at,
                                           const IpAddress& peer) const {
  if (!is_ipv6_multicast(received_at) && ndisc_.owns(received_at)) return received_at;
  return ip_.ip6_source_for(peer);
}

// Counts a message as sent once the IP layer took it (a routing failure was counted there).
void Icmp6::send_message(const IpAddress& source, const IpAddress& destination, size_t size,
                         Counter counter, Instant now) {
  const Status sent = ip_.send_ip6_payload(source, destination, kProtocolIcmpv6,
                                           {message_.data(), size}, now, kDefaultHopLimit);
  if (!sent) return;
  context_.counters.add(Counter::Icmp6OutMsgs);
  context_.counters.add(counter);
}

Status Icmp6::send_echo_request(const IpAddress& dst, uint16_t id, uint16_t sequence,
                                ByteView payload, Instant now) {
  if (payload.size() > kMaxIcmp6MessageSize - kIcmp6EchoHeaderSize) {
    return Error{EMSGSIZE, "echo payload longer than an IPv6 packet can carry"};
  }
  const std::optional<IpAddress> source = ip_.ip6_source_for(dst);
  if (!source) return Error{EADDRNOTAVAIL, "no IPv6 address of ours to send the echo from"};
  uint8_t* message = message_.data();
  message[0] = kIcmp6EchoRequest;
  message[1] = 0;
  store_be16(message + 2, 0);
  store_be16(message + 4, id);
  store_be16(message + 6, sequence);
  std::copy(payload.begin(), payload.end(), message + kIcmp6EchoHeaderSize);
  const size_t size = kIcmp6EchoHeaderSize + payload.size();
  store_be16(message + 2, icmp6_checksum(*source, dst, {message, size}));
  context_.trace.begin("tx icmpv6 echo to {} id={} seq={}", dst, id, sequence);
  const Status status =
      ip_.send_ip6_payload(*source, dst, kProtocolIcmpv6, {message, size}, now, kDefaultHopLimit);
  if (status) {
    context_.counters.add(Counter::Icmp6OutMsgs);
    context_.counters.add(Counter::Icmp6OutEchos);
  }
  context_.trace.flush();
  return status;
}

std::optional<Echo6Reply> Icmp6::poll_echo_reply() {
  if (echo_replies_.empty()) return std::nullopt;
  Echo6Reply reply = echo_replies_.front();
  echo_replies_.pop_front();
  return reply;
}

}  // namespace tapstack
