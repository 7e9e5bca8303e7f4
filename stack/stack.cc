#include "stack/stack.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

// The MTU is clamped to what IPv4 and our buffers allow: 68 (RFC 791) up to a jumbo frame.
uint16_t clamp_mtu(uint16_t mtu) {
  return std::clamp<uint16_t>(mtu, 68, kMaxFrameSize - kEthernetHeaderSize);
}
size_t frame_capacity(uint16_t mtu) {
  return kEthernetHeaderSize + clamp_mtu(mtu);
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
      arp_(std::make_unique<ArpTable>(config_.arp, config_.mac, config_.ipv4.address, context_,
                                      static_cast<EthernetOutput&>(*this))),
      reassembler_(std::make_unique<Reassembler>(config_.reassembly, context_)),
      icmp_(std::make_unique<Icmp>(config_.icmp, config_.ipv4.address, context_,
                                   static_cast<Ipv4Output&>(*this))),
      tcp_(std::make_unique<Tcp>(TcpContext{context_, random_, static_cast<TcpIpLayer&>(*this)},
                                 config_.tcp)),
      next_ip_id_(static_cast<uint16_t>(random_.next_u32())) {
  ip_buffer_.resize(kIpv4MaxDatagramSize);
}

Stack::~Stack() = default;

void Stack::start(Instant now) {
  icmp_->start(now);
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
  // An unreachable neighbour fails the connections that wait for it: an event from ARP that
  // the Stack passes up, ARP knowing nothing of TCP.
  arp_->on_timer(now, [&](Ipv4Address neighbour) { tcp_->host_unreachable(neighbour); });
  tcp_->on_timer(now);
  reassembler_->on_timer(now, [&](ByteView first_fragment) {
    Ipv4Datagram quoted;
    quoted.packet = first_fragment;
    quoted.header.source = {load_be32(first_fragment.data() + 12)};
    quoted.header.destination = {load_be32(first_fragment.data() + 16)};
    quoted.header.protocol = first_fragment[9];
    icmp_->reassembly_time_exceeded(quoted, now);
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
  return icmp_->poll_echo_reply();
}

std::optional<MacAddress> Stack::arp_lookup(Ipv4Address address) const {
  return arp_->lookup(address);
}
size_t Stack::reassembly_datagrams() const {
  return reassembler_->datagrams();
}
size_t Stack::reassembly_bytes() const {
  return reassembler_->bytes();
}

// Linux: ip_rcv() → ip_rcv_finish() → ip_local_deliver()
void Stack::ipv4_input(ByteView packet, Instant now, const FrameOffload& offload) {
  counters_.add(Counter::IpInReceives);
  Ipv4Datagram datagram;
  if (const auto reason = parse_ipv4(packet, datagram)) return drop(*reason);
  datagram.checksum_offloaded = offload.checksum_offloaded;
  const Ipv4Header& h = datagram.header;
  trace_.step("ipv4 {} > {} proto {} len {}", h.source, h.destination, h.protocol, h.total_length);
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

  const FragmentVerdict verdict = reassembler_->add(datagram, now);
  switch (verdict.outcome) {
    case FragmentVerdict::Outcome::Held:
      trace_.step("fragment held");
      return;
    case FragmentVerdict::Outcome::Dropped:
      return;  // the drop path has said why
    case FragmentVerdict::Outcome::Complete:
      break;
  }
  Ipv4Datagram reassembled;
  if (const auto reason = parse_ipv4(verdict.datagram, reassembled)) return drop(*reason);
  trace_.step("reassembled {} bytes", reassembled.header.total_length);
  deliver(reassembled, now);
}

// Linux: ip_local_deliver_finish() → ip_protocol_deliver_rcu()
void Stack::deliver(const Ipv4Datagram& datagram, Instant now) {
  if (datagram.header.protocol == kProtocolIcmp) {
    counters_.add(Counter::IpInDelivers);
    return icmp_->input(datagram, now);
  }
  if (datagram.header.protocol == kProtocolTcp) {
    counters_.add(Counter::IpInDelivers);
    // Linux: tcp_v4_rcv(), which answers only what was sent to us (PACKET_HOST)
    return tcp_->input({.source = datagram.header.source,
                        .destination = datagram.header.destination,
                        .segment = datagram.payload,
                        .to_us = datagram.header.destination == config_.ipv4.address,
                        .checksum_offloaded = datagram.checksum_offloaded},
                       now);
  }
  drop(DropReason::IpUnknownProtocol);
  icmp_->protocol_unreachable(datagram, now);
}

Status Stack::send_echo_request(Ipv4Address dst, uint16_t id, uint16_t sequence, ByteView payload,
                                Instant now) {
  return icmp_->send_echo_request(dst, id, sequence, payload, now);
}

Status Stack::send_ipv4(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now) {
  trace_.begin("tx ipv4 to {} proto {}", dst, protocol);
  const Status status = ipv4_output(dst, protocol, payload, now);
  trace_.flush();
  return status;
}

Status Stack::send_ip_payload(Ipv4Address dst, uint8_t protocol, ByteView payload, Instant now) {
  return ipv4_output(dst, protocol, payload, now);
}

// TCP connects only to a unicast address of the family we have; the source is our address.
Result<IpRoute> Stack::route(const IpAddress& remote) const {
  const auto address = Ipv4Address::from(remote);
  if (!address || address->is_zero() || address->is_multicast() ||
      address->is_limited_broadcast() || *address == config_.ipv4.subnet_broadcast()) {
    return Error{ENETUNREACH, fmt::format("cannot connect to {}", remote)};
  }
  return IpRoute{.source = config_.ipv4.address, .mtu = config_.mtu};
}

Status Stack::send_segment(const IpAddress& source, const IpAddress& destination, ByteView segment,
                           Instant now, const FrameOffload& offload) {
  const auto to = Ipv4Address::from(destination);
  if (!to || Ipv4Address::from(source) != config_.ipv4.address) {
    drop(DropReason::IpOutNoRoute);
    return Error{ENETUNREACH, "no IPv4 route for that segment"};
  }
  return ipv4_output(*to, kProtocolTcp, segment, now, offload);
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
      emit_frame(MacAddress::broadcast(), kEtherTypeIpv4, datagram, {});
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
