#include "stack/icmp.h"

#include <algorithm>
#include <cerrno>

#include "stack/checksum.h"

namespace tapstack {
namespace {

constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpDestUnreachable = 3;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpTimeExceeded = 11;
constexpr uint8_t kIcmpCodeProtocolUnreachable = 2;
constexpr uint8_t kIcmpCodeReassemblyTimeExceeded = 1;
constexpr size_t kIcmpHeaderSize = 8;
// An ICMP error quotes as much of the offending datagram as keeps it within 576 bytes
// (RFC 1812 §4.3.2.3); Linux does the same.
constexpr size_t kIcmpErrorMaxQuote = 576 - kIpv4MinHeaderSize - kIcmpHeaderSize;
constexpr size_t kMaxQueuedEchoReplies = 1024;

bool is_icmp_error_type(uint8_t type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

}  // namespace

Icmp::Icmp(const IcmpConfig& config, Ipv4Address ours, LayerContext& context, Ipv4Output& ip)
    : config_(config),
      ours_(ours),
      context_(context),
      ip_(ip),
      message_(kIpv4MaxDatagramSize),
      tokens_(config.error_burst) {}

// Linux: icmp_rcv()
void Icmp::input(const Ipv4Datagram& datagram, Instant now) {
  Counters& counters = context_.counters;
  Trace& trace = context_.trace;
  counters.add(Counter::IcmpInMsgs);
  const ByteView message = datagram.payload;
  if (message.size() < kIcmpHeaderSize) return context_.drop(DropReason::IcmpTruncated);
  if (internet_checksum(message) != 0) return context_.drop(DropReason::IcmpBadChecksum);
  const uint8_t type = message[0];
  const uint16_t id = load_be16(message.data() + 4);
  const uint16_t sequence = load_be16(message.data() + 6);
  switch (type) {
    case kIcmpEchoRequest: {
      counters.add(Counter::IcmpInEchos);
      // Linux: icmp_echo_ignore_broadcasts defaults to 1.
      if (datagram.header.destination != ours_) {
        trace.step("icmp echo to broadcast ignored");
        return;
      }
      trace.step("icmp echo id={} seq={} → reply", id, sequence);
      uint8_t* reply = message_.data();
      std::copy_n(message.data(), message.size(), reply);
      reply[0] = kIcmpEchoReply;
      store_be16(reply + 2, 0);
      store_be16(reply + 2, internet_checksum({reply, message.size()}));
      counters.add(Counter::IcmpOutMsgs);
      counters.add(Counter::IcmpOutEchoReps);
      // A reply that cannot be routed was counted and traced as a drop where it failed.
      [[maybe_unused]] const Status sent =
          ip_.send_ip_payload(datagram.header.source, kProtocolIcmp, {reply, message.size()}, now);
      return;
    }
    case kIcmpEchoReply:
      counters.add(Counter::IcmpInEchoReps);
      trace.step("icmp echo reply id={} seq={}", id, sequence);
      if (echo_replies_.size() >= kMaxQueuedEchoReplies) echo_replies_.pop_front();
      echo_replies_.push_back(
          {datagram.header.source, id, sequence, message.size() - kIcmpHeaderSize, now});
      return;
    case kIcmpDestUnreachable:
      counters.add(Counter::IcmpInDestUnreachs);
      trace.step("icmp destination unreachable code {}", message[1]);
      return;
    default:
      trace.step("icmp type {} ignored", type);
      return;
  }
}

void Icmp::protocol_unreachable(const Ipv4Datagram& datagram, Instant now) {
  send_error(datagram, kIcmpDestUnreachable, kIcmpCodeProtocolUnreachable, now);
}

void Icmp::reassembly_time_exceeded(const Ipv4Datagram& first_fragment, Instant now) {
  send_error(first_fragment, kIcmpTimeExceeded, kIcmpCodeReassemblyTimeExceeded, now);
}

// RFC 1122 §3.2.2: never answer an ICMP error, a broadcast or multicast, or a non-first
// fragment with an ICMP error; and limit the rate (RFC 1812 §4.3.2.8). Linux: icmp_send()
void Icmp::send_error(const Ipv4Datagram& datagram, uint8_t type, uint8_t code, Instant now) {
  const Ipv4Header& h = datagram.header;
  const ByteView quoted = datagram.packet;
  const size_t header_length = quoted.empty() ? 0 : (quoted[0] & 0x0f) * 4u;
  if (h.destination != ours_ || h.source.is_zero() || h.source.is_multicast() ||
      h.source.is_limited_broadcast() || h.fragment_offset != 0) {
    return;
  }
  if (h.protocol == kProtocolIcmp && quoted.size() > header_length &&
      is_icmp_error_type(quoted[header_length])) {
    return;
  }
  // Token bucket refilled at errors_per_second, holding at most error_burst.
  const double elapsed = (now - refilled_).seconds_f();
  tokens_ = std::min<double>(config_.error_burst, tokens_ + elapsed * config_.errors_per_second);
  refilled_ = now;
  if (tokens_ < 1.0) return context_.drop(DropReason::IcmpRateLimited);
  tokens_ -= 1.0;

  const size_t quote = std::min(quoted.size(), kIcmpErrorMaxQuote);
  uint8_t* message = message_.data();
  message[0] = type;
  message[1] = code;
  store_be16(message + 2, 0);
  store_be32(message + 4, 0);
  std::copy_n(quoted.data(), quote, message + kIcmpHeaderSize);
  const size_t size = kIcmpHeaderSize + quote;
  store_be16(message + 2, internet_checksum({message, size}));
  context_.counters.add(Counter::IcmpOutMsgs);
  context_.counters.add(type == kIcmpDestUnreachable ? Counter::IcmpOutDestUnreachs
                                                     : Counter::IcmpOutTimeExcds);
  context_.trace.step("icmp error type {} code {} → {}", type, code, h.source);
  [[maybe_unused]] const Status sent = ip_.send_ip_payload(h.source, kProtocolIcmp, {message, size}, now);
}

Status Icmp::send_echo_request(Ipv4Address dst, uint16_t id, uint16_t sequence, ByteView payload,
                               Instant now) {
  if (payload.size() > kIpv4MaxDatagramSize - kIpv4MinHeaderSize - kIcmpHeaderSize) {
    return Error{EMSGSIZE, "echo payload longer than an IPv4 datagram can carry"};
  }
  uint8_t* message = message_.data();
  message[0] = kIcmpEchoRequest;
  message[1] = 0;
  store_be16(message + 2, 0);
  store_be16(message + 4, id);
  store_be16(message + 6, sequence);
  std::copy(payload.begin(), payload.end(), message + kIcmpHeaderSize);
  const size_t size = kIcmpHeaderSize + payload.size();
  store_be16(message + 2, internet_checksum({message, size}));
  context_.trace.begin("tx icmp echo to {} id={} seq={}", dst, id, sequence);
  const Status status = ip_.send_ip_payload(dst, kProtocolIcmp, {message, size}, now);
  if (status) {
    context_.counters.add(Counter::IcmpOutMsgs);
    context_.counters.add(Counter::IcmpOutEchos);
  }
  context_.trace.flush();
  return status;
}

std::optional<EchoReply> Icmp::poll_echo_reply() {
  if (echo_replies_.empty()) return std::nullopt;
  EchoReply reply = echo_replies_.front();
  echo_replies_.pop_front();
  return reply;
}

}  // namespace tapstack
