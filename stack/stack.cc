#include "stack/stack.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/arp.h"
#include "stack/checksum.h"
#include "stack/ipv4.h"
#include "stack/reassembly.h"
#include "stack/tcp_layer.h"

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

// The MTU is clamped to what IPv4 and our buffers allow: 68 (RFC 791) up to a jumbo frame.
uint16_t clamp_mtu(uint16_t mtu) {
  return std::clamp<uint16_t>(mtu, 68, kMaxFrameSize - kEthernetHeaderSize);
}
size_t frame_capacity(uint16_t mtu) { return kEthernetHeaderSize + clamp_mtu(mtu); }

bool is_icmp_error_type(uint8_t type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

}  // namespace

Stack::Stack(StackConfig config)
    : config_([&] {
        config.mtu = clamp_mtu(config.mtu);
        return std::move(config);
      }()),
      random_(config_.seed),
      tx_queue_(config_.transmit_queue_frames, frame_capacity(config_.mtu)),
      scratch_(frame_capacity(config_.mtu)),
      arp_(std::make_unique<ArpTable>(*this, config_.arp)),
      reassembler_(std::make_unique<Reassembler>(config_.reassembly, counters_)),
      tcp_(std::make_unique<Tcp>(*this, config_.tcp)),
      next_ip_id_(static_cast<uint16_t>(random_.next_u32())),
      icmp_tokens_(config_.icmp.error_burst) {
  ip_buffer_.resize(kIpv4MaxDatagramSize);
  message_buffer_.resize(kIpv4MaxDatagramSize);
}

Stack::~Stack() = default;

void Stack::start(Instant now) {
  icmp_refilled_ = now;
  if (!config_.gratuitous_arp) return;
  trace_.begin("tx gratuitous arp for {}", config_.ipv4.address);
  arp_->announce();
  trace_.flush();
}

// Linux: __netif_receive_skb() → eth_type_trans(), then the protocol handler
void Stack::on_frame(ByteView frame, Instant now, const FrameOffload& offload) {
  counters_.add(Counter::EthInFrames);
  trace_.begin("rx {} bytes", frame.size());
  if (frame.size() < kEthernetHeaderSize) {
    drop(DropReason::EthTooShort);
  } else {
    MacAddress dst;
    std::copy(frame.begin(), frame.begin() + 6, dst.bytes.begin());
    const uint16_t ethertype = load_be16(frame.data() + 12);
    const ByteView payload = frame.subspan(kEthernetHeaderSize);
    // Linux: eth_type_trans()'s PACKET_MULTICAST and PACKET_OTHERHOST; IPv6's neighbour
    // discovery and mDNS reach a TAP as multicast, and we join no group.
    if (dst.is_multicast() && !dst.is_broadcast()) {
      drop(DropReason::EthMulticastNotJoined);
    } else if (dst != config_.mac && !dst.is_broadcast()) {
      drop(DropReason::EthNotForUs);
    } else if (ethertype == kEtherTypeArp) {
      arp_->input(payload, now);
    } else if (ethertype == kEtherTypeIpv4) {
      ipv4_input(payload, now, offload);
    } else {
      drop(DropReason::EthUnknownType);
    }
  }
  trace_.flush();
}

void Stack::begin_burst() {
  tcp_->begin_burst();
}

void Stack::end_burst(Instant now) {
  tcp_->end_burst(now);
}

void Stack::on_timer(Instant now) {
  arp_->on_timer(now);
  tcp_->on_timer(now);
  reassembler_->on_timer(now, [&](ByteView first_fragment) {
    Ipv4Datagram quoted;
    quoted.packet = first_fragment;
    quoted.header.source = {load_be32(first_fragment.data() + 12)};
    quoted.header.destination = {load_be32(first_fragment.data() + 16)};
    quoted.header.protocol = first_fragment[9];
    trace_.begin("timer: reassembly from {} timed out", quoted.header.source);
    icmp_send_error(quoted, kIcmpTimeExceeded, kIcmpCodeReassemblyTimeExceeded, now);
    trace_.flush();
  });
}

Instant Stack::next_deadline() const {
  return std::min({arp_->next_deadline(), reassembler_->next_deadline(), tcp_->next_deadline()});
}

void Stack::set_transmit_sink(TransmitSink sink, LinkOffloads offloads) {
  sink_ = std::move(sink);
  offloads_ = sink_ ? offloads : LinkOffloads{};
  const size_t capacity =
      offloads_.tcp_segmentation ? kMaxOffloadFrameSize : frame_capacity(config_.mtu);
  if (scratch_.bytes.size() != capacity) scratch_ = FrameBuffer(capacity);
}

std::optional<ByteView> Stack::poll_transmit() {
  if (popped_) {
    tx_queue_.pop();
    popped_ = false;
  }
  if (tx_queue_.empty()) return std::nullopt;
  popped_ = true;  // the view stays valid until the next call
  return tx_queue_.front().view();
}

std::optional<EchoReply> Stack::poll_echo_reply() {
  if (echo_replies_.empty()) return std::nullopt;
  EchoReply reply = echo_replies_.front();
  echo_replies_.pop_front();
  return reply;
}

std::optional<MacAddress> Stack::arp_lookup(Ipv4Address address) const {
  return arp_->lookup(address);
}
size_t Stack::reassembly_datagrams() const { return reassembler_->datagrams(); }
size_t Stack::reassembly_bytes() const { return reassembler_->bytes(); }

void Stack::drop(DropReason reason) {
  counters_.drop(reason);
  if (trace_.enabled()) {
    trace_.step("dropped: {} [counted: {}]", drop_reason_text(reason),
                drop_reason_counters(reason));
  }
}

// Linux: ip_rcv() → ip_rcv_finish() → ip_local_deliver()
void Stack::ipv4_input(ByteView packet, Instant now, const FrameOffload& offload) {
  counters_.add(Counter::IpInReceives);
  Ipv4Datagram datagram;
  if (const auto reason = parse_ipv4(packet, datagram)) return drop(*reason);
  datagram.checksum_offloaded = offload.checksum_offloaded;
  const Ipv4Header& h = datagram.header;
  trace_.step("ipv4 {} > {} proto {} len {}", h.source, h.destination,
              h.protocol, h.total_length);
  const Ipv4Address dst = h.destination;
  if (dst != config_.ipv4.address && !dst.is_limited_broadcast() &&
      dst != config_.ipv4.subnet_broadcast()) {
    return drop(DropReason::IpNotForUs);
  }
  if (h.source.is_multicast() || h.source.is_limited_broadcast() ||
      h.source == config_.ipv4.subnet_broadcast()) {
    return drop(DropReason::IpBadSource);
  }
  if (!h.is_fragment()) return deliver(datagram, now);

  const uint64_t drops_before = total_reassembly_drops();
  const auto whole = reassembler_->add(datagram, now);
  if (!whole) {
    trace_.step("{}", total_reassembly_drops() != drops_before ? "fragment dropped" : "fragment held");
    return;
  }
  Ipv4Datagram reassembled;
  if (const auto reason = parse_ipv4(*whole, reassembled)) return drop(*reason);
  trace_.step("reassembled {} bytes", reassembled.header.total_length);
  deliver(reassembled, now);
}

uint64_t Stack::total_reassembly_drops() const {
  return counters_[Counter::IpReasmFails] + counters_[Counter::IpReasmDuplicates];
}

// Linux: ip_local_deliver_finish() → ip_protocol_deliver_rcu()
void Stack::deliver(const Ipv4Datagram& datagram, Instant now) {
  if (datagram.header.protocol == kProtocolIcmp) {
    counters_.add(Counter::IpInDelivers);
    return icmp_input(datagram, now);
  }
  if (datagram.header.protocol == kProtocolTcp) {
    counters_.add(Counter::IpInDelivers);
    return tcp_->input(datagram, now);
  }
  drop(DropReason::IpUnknownProtocol);
  icmp_send_error(datagram, kIcmpDestUnreachable, kIcmpCodeProtocolUnreachable, now);
}

// Linux: icmp_rcv()
void Stack::icmp_input(const Ipv4Datagram& datagram, Instant now) {
  counters_.add(Counter::IcmpInMsgs);
  const ByteView message = datagram.payload;
  if (message.size() < kIcmpHeaderSize) return drop(DropReason::IcmpTruncated);
  if (internet_checksum(message) != 0) return drop(DropReason::IcmpBadChecksum);
  const uint8_t type = message[0];
  const uint16_t id = load_be16(message.data() + 4);
  const uint16_t sequence = load_be16(message.data() + 6);
  switch (type) {
    case kIcmpEchoRequest: {
      counters_.add(Counter::IcmpInEchos);
      // Linux: icmp_echo_ignore_broadcasts defaults to 1.
      if (datagram.header.destination != config_.ipv4.address) {
        trace_.step("icmp echo to broadcast ignored");
        return;
      }
      trace_.step("icmp echo id={} seq={} → reply", id, sequence);
      uint8_t* reply = message_buffer_.data();
      std::copy_n(message.data(), message.size(), reply);
      reply[0] = kIcmpEchoReply;
      store_be16(reply + 2, 0);
      store_be16(reply + 2, internet_checksum({reply, message.size()}));
      counters_.add(Counter::IcmpOutMsgs);
      counters_.add(Counter::IcmpOutEchoReps);
      ipv4_output(datagram.header.source, kProtocolIcmp, {reply, message.size()}, now);
      return;
    }
    case kIcmpEchoReply:
      counters_.add(Counter::IcmpInEchoReps);
      trace_.step("icmp echo reply id={} seq={}", id, sequence);
      if (echo_replies_.size() >= kMaxQueuedEchoReplies) echo_replies_.pop_front();
      echo_replies_.push_back({datagram.header.source, id, sequence,
                               message.size() - kIcmpHeaderSize, now});
      return;
    case kIcmpDestUnreachable:
      counters_.add(Counter::IcmpInDestUnreachs);
      trace_.step("icmp destination unreachable code {}", message[1]);
      return;
    default:
      trace_.step("icmp type {} ignored", type);
      return;
  }
}

// RFC 1122 §3.2.2: never answer an ICMP error, a broadcast or multicast, or a non-first
// fragment with an ICMP error; and limit the rate (RFC 1812 §4.3.2.8). Linux: icmp_send()
void Stack::icmp_send_error(const Ipv4Datagram& datagram, uint8_t type, uint8_t code,
                            Instant now) {
  const Ipv4Header& h = datagram.header;
  const ByteView quoted = datagram.packet;
  const size_t header_length = quoted.empty() ? 0 : (quoted[0] & 0x0f) * 4u;
  if (h.destination != config_.ipv4.address || h.source.is_zero() || h.source.is_multicast() ||
      h.source.is_limited_broadcast() || h.fragment_offset != 0) {
    return;
  }
  if (h.protocol == kProtocolIcmp && quoted.size() > header_length &&
      is_icmp_error_type(quoted[header_length])) {
    return;
  }
  // Token bucket refilled at errors_per_second, holding at most error_burst.
  const double elapsed = (now - icmp_refilled_).seconds_f();
  icmp_tokens_ = std::min<double>(config_.icmp.error_burst,
                                  icmp_tokens_ + elapsed * config_.icmp.errors_per_second);
  icmp_refilled_ = now;
  if (icmp_tokens_ < 1.0) return drop(DropReason::IcmpRateLimited);
  icmp_tokens_ -= 1.0;

  const size_t quote = std::min(quoted.size(), kIcmpErrorMaxQuote);
  uint8_t* message = message_buffer_.data();
  message[0] = type;
  message[1] = code;
  store_be16(message + 2, 0);
  store_be32(message + 4, 0);
  std::copy_n(quoted.data(), quote, message + kIcmpHeaderSize);
  const size_t size = kIcmpHeaderSize + quote;
  store_be16(message + 2, internet_checksum({message, size}));
  counters_.add(Counter::IcmpOutMsgs);
  counters_.add(type == kIcmpDestUnreachable ? Counter::IcmpOutDestUnreachs
                                             : Counter::IcmpOutTimeExcds);
  trace_.step("icmp error type {} code {} → {}", type, code, h.source);
  ipv4_output(h.source, kProtocolIcmp, {message, size}, now);
}

Status Stack::send_echo_request(Ipv4Address dst, uint16_t id, uint16_t sequence, ByteView payload,
                                Instant now) {
  if (payload.size() > kIpv4MaxDatagramSize - kIpv4MinHeaderSize - kIcmpHeaderSize) {
    return Error{EMSGSIZE, "echo payload longer than an IPv4 datagram can carry"};
  }
  uint8_t* message = message_buffer_.data();
  message[0] = kIcmpEchoRequest;
  message[1] = 0;
  store_be16(message + 2, 0);
  store_be16(message + 4, id);
  store_be16(message + 6, sequence);
  std::copy(payload.begin(), payload.end(), message + kIcmpHeaderSize);
  const size_t size = kIcmpHeaderSize + payload.size();
  store_be16(message + 2, internet_checksum({message, size}));
  trace_.begin("tx icmp echo to {} id={} seq={}", dst, id, sequence);
  const Status status = ipv4_output(dst, kProtocolIcmp, {message, size}, now);
  if (status) {
    counters_.add(Counter::IcmpOutMsgs);
    counters_.add(Counter::IcmpOutEchos);
  }
  trace_.flush();
  return status;
}

Status Stack::send_ipv4(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now) {
  trace_.begin("tx ipv4 to {} proto {}", dst, protocol);
  const Status status = ipv4_output(dst, protocol, payload, now);
  trace_.flush();
  return status;
}

// Routes, then sends payload as one datagram or as fragments of at most the MTU.
// Linux: ip_queue_xmit() / ip_output() → ip_fragment()
Status Stack::ipv4_output(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now,
                          const FrameOffload& offload) {
  const bool broadcast = dst.is_limited_broadcast() || dst == config_.ipv4.subnet_broadcast();
  Ipv4Address next_hop = dst;
  if (!broadcast && !config_.ipv4.on_link(dst)) {
    if (!config_.gateway) {
      drop(DropReason::IpOutNoRoute);
      return Error{ENETUNREACH, fmt::format("no route to {}: not on {} and no gateway",
                                            dst.to_string(), config_.ipv4.to_string())};
    }
    next_hop = *config_.gateway;
  }
  if (payload.size() > kIpv4MaxDatagramSize - kIpv4MinHeaderSize) {
    drop(DropReason::IpOutTooLong);
    return Error{EMSGSIZE, "datagram longer than 65535 bytes"};
  }
  counters_.add(Counter::IpOutRequests);
  Ipv4Header header;
  header.id = next_ip_id_++;
  header.protocol = protocol;
  header.source = config_.ipv4.address;
  header.destination = dst;
  // Every fragment but the last carries a multiple of 8 bytes; what fits goes whole, and so
  // does a segment for the link to cut.
  const bool fragmented =
      payload.size() > config_.mtu - kIpv4MinHeaderSize && offload.segment_size == 0;
  const size_t per_fragment =
      fragmented ? (config_.mtu - kIpv4MinHeaderSize) & ~size_t{7} : payload.size();
  for (size_t offset = 0; offset < payload.size() || offset == 0; offset += per_fragment) {
    const size_t size = std::min(per_fragment, payload.size() - offset);
    header.fragment_offset = static_cast<uint16_t>(offset);
    header.more_fragments = offset + size < payload.size();
    header.total_length = static_cast<uint16_t>(kIpv4MinHeaderSize + size);
    write_ipv4_header(ip_buffer_.data(), header);
    std::copy_n(payload.data() + offset, size, ip_buffer_.data() + kIpv4MinHeaderSize);
    const ByteView datagram{ip_buffer_.data(), kIpv4MinHeaderSize + size};
    if (broadcast) {
      emit_frame(MacAddress::broadcast(), kEtherTypeIpv4, datagram);
    } else {
      arp_->send(next_hop, datagram, now, offload);
    }
    if (fragmented) counters_.add(Counter::IpFragCreates);
    if (!header.more_fragments) break;
  }
  if (fragmented) counters_.add(Counter::IpFragOKs);
  if (offload.segment_size > 0) {
    // The link gives each segment an ID of its own, counting up (Linux: tcp4_gso_segment()).
    const size_t tcp_header = (payload[12] >> 4) * 4u;
    const size_t segments =
        (payload.size() - tcp_header + offload.segment_size - 1) / offload.segment_size;
    next_ip_id_ = static_cast<uint16_t>(next_ip_id_ + segments - 1);
  }
  return Ok{};
}

// Linux: dev_hard_start_xmit(), with the TAP write (or the queue) as the driver
void Stack::emit_frame(const MacAddress& dst, uint16_t ethertype, ByteView payload,
                       const FrameOffload& offload) {
  FrameBuffer* frame = &scratch_;
  if (!sink_) {
    if (tx_queue_.full()) return drop(DropReason::TxQueueFull);
    frame = &tx_queue_.back_slot();
  }
  if (kEthernetHeaderSize + payload.size() > frame->bytes.size()) {
    return drop(DropReason::IpOutTooLong);  // a segment for offload the link no longer takes
  }
  uint8_t* out = frame->bytes.data();
  std::copy(dst.bytes.begin(), dst.bytes.end(), out);
  std::copy(config_.mac.bytes.begin(), config_.mac.bytes.end(), out + 6);
  store_be16(out + 12, ethertype);
  std::copy_n(payload.data(), payload.size(), out + kEthernetHeaderSize);
  frame->size = kEthernetHeaderSize + payload.size();
  counters_.add(Counter::EthOutFrames);
  if (sink_) {
    sink_(frame->view(), offload);
  } else {
    tx_queue_.push();
  }
}

}  // namespace tapstack
