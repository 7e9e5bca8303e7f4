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
  ip_buffer_.resize(kIpv6HeaderSize + kIpv6FragmentHeaderSize + kIpv4MaxDatagramSize);
  if (config_.ipv6) {
    link_local_ = ipv6_link_local_from_mac(config_.mac);
    next_ip6_id_ = random_.next_u32();
    ndisc_ = std::make_unique<Ndisc>(config_.ndisc, config_.mac, context_,
                                     static_cast<EthernetOutput&>(*this),
                                     static_cast<Ipv6Output&>(*this));
    icmp6_ = std::make_unique<Icmp6>(config_.icmp6, context_, static_cast<Ipv6Output&>(*this),
                                     *ndisc_);
    icmp6_->set_packet_too_big_handler(
        [this](const IpAddress& destination, uint32_t mtu) {
          packet_too_big(destination, mtu, now_);
        });
    reassembler6_ = std::make_unique<Reassembler6>(config_.reassembly, context_);
  }
}

Stack::~Stack() = default;

void Stack::start(Instant now) {
  icmp_->start(now);
  if (ndisc_) {
    // Both addresses are tentative until Duplicate Address Detection passes (RFC 4862 §5.4).
    icmp6_->start(now);
    trace_.begin("ipv6: {} and {} tentative, duplicate address detection", link_local_,
                 config_.ipv6->address);
    ndisc_->add_address(link_local_, now);
    if (config_.ipv6->address != link_local_) ndisc_->add_address(config_.ipv6->address, now);
    trace_.flush();
  }
  if (!config_.gratuitous_arp || !has_ipv4()) return;
  trace_.begin("tx gratuitous arp for {}", config_.ipv4.address);
  arp_->announce();
  trace_.flush();
}

// Linux: __netif_receive_skb() → eth_type_trans(), then the protocol handler
void Stack::on_frame(ByteView frame, Instant now, const FrameOffload& offload) {
  now_ = now;
  counters_.add(Counter::EthInFrames);
  trace_.begin("rx {} bytes", frame.size());
  if (frame.size() < kEthernetHeaderSize) {
    drop(DropReason::EthTooShort);
  } else {
    MacAddress dst;
    std::copy(frame.begin(), frame.begin() + 6, dst.bytes.begin());
    const uint16_t ethertype = load_be16(frame.data() + 12);
    const ByteView payload = frame.subspan(kEthernetHeaderSize);
    // Linux: eth_type_trans()'s PACKET_MULTICAST and PACKET_OTHERHOST. The groups we join
    // are IPv6's all-nodes and the solicited-node groups of our addresses (the NIC's
    // multicast filter, dev_mc_add()); mDNS and the rest reach a TAP too and are not ours.
    if (dst.is_multicast() && !dst.is_broadcast() && !(ndisc_ && ndisc_->joined(dst))) {
      drop(DropReason::EthMulticastNotJoined);
    } else if (dst != config_.mac && !dst.is_multicast()) {
      drop(DropReason::EthNotForUs);
    } else if (ethertype == kEtherTypeArp && has_ipv4()) {
      arp_->input(payload, now);
    } else if (ethertype == kEtherTypeIpv4 && has_ipv4()) {
      ipv4_input(payload, now, offload);
    } else if (ethertype == kEtherTypeIpv6 && ndisc_) {
      ipv6_input(payload, now, offload);
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
  now_ = now;
  // An unreachable neighbour fails the connections that wait for it: an event from ARP (or
  // neighbour discovery) that the Stack passes up, ARP knowing nothing of TCP.
  arp_->on_timer(now, [&](Ipv4Address neighbour) { tcp_->host_unreachable(neighbour); });
  if (ndisc_) {
    ndisc_->on_timer(now, [&](const IpAddress& neighbour) { tcp_->host_unreachable(neighbour); });
    reassembler6_->on_timer(
        now, [&](ByteView first_fragment) { icmp6_->reassembly_time_exceeded(first_fragment, now); });
    std::erase_if(path_mtus_, [&](const PathMtu& p) { return p.expires <= now; });
  }
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
  Instant deadline =
      std::min({arp_->next_deadline(), reassembler_->next_deadline(), tcp_->next_deadline()});
  if (ndisc_) {
    deadline = std::min({deadline, ndisc_->next_deadline(), reassembler6_->next_deadline()});
    for (const PathMtu& p : path_mtus_) deadline = std::min(deadline, p.expires);
  }
  return deadline;
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
  return reassembler_->datagrams() + (reassembler6_ ? reassembler6_->datagrams() : 0);
}
size_t Stack::reassembly_bytes() const {
  return reassembler_->bytes() + (reassembler6_ ? reassembler6_->bytes() : 0);
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

// TCP connects only to a unicast address of a family we have; the source is our address of
// that family (for IPv6, the one RFC 6724 picks, once DAD passed).
Result<IpRoute> Stack::route(const IpAddress& remote) const {
  if (!remote.is_ipv4()) {
    if (!ndisc_ || is_ipv6_multicast(remote) || is_ipv6_unspecified(remote) ||
        is_ipv6_loopback(remote)) {
      return Error{ENETUNREACH, fmt::format("cannot connect to {}", remote)};
    }
    const auto source = ip6_source_for(remote);
    if (!source) {
      return Error{EADDRNOTAVAIL,
                   fmt::format("no IPv6 address to reach {} from: duplicate address detection "
                               "has not passed",
                               remote)};
    }
    return IpRoute{.source = *source, .mtu = static_cast<uint16_t>(path_mtu(remote, now_))};
  }
  if (!has_ipv4()) return Error{ENETUNREACH, fmt::format("cannot connect to {}: no IPv4 address", remote)};
  const auto address = Ipv4Address::from(remote);
  if (!address || address->is_zero() || address->is_multicast() ||
      address->is_limited_broadcast() || *address == config_.ipv4.subnet_broadcast()) {
    return Error{ENETUNREACH, fmt::format("cannot connect to {}", remote)};
  }
  return IpRoute{.source = config_.ipv4.address, .mtu = config_.mtu};
}

Status Stack::send_segment(const IpAddress& source, const IpAddress& destination, ByteView segment,
                           Instant now, const FrameOffload& offload) {
  if (!destination.is_ipv4()) {
    return ipv6_output(source, destination, kProtocolTcp, segment, now, kDefaultHopLimit,
                       offload);
  }
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

// ---- IPv6 ----

bool Stack::ipv6_multicast_joined(const IpAddress& group) const {
  if (group == ipv6_all_nodes()) return true;
  return group == solicited_node_multicast(link_local_) ||
         group == solicited_node_multicast(config_.ipv6->address);
}

// Linux: ipv6_rcv() → ip6_rcv_core(), ip6_rcv_finish() → ip6_input_finish()
void Stack::ipv6_input(ByteView packet, Instant now, const FrameOffload& offload) {
  counters_.add(Counter::Ip6InReceives);
  Ipv6Datagram datagram;
  if (const auto reason = parse_ipv6(packet, datagram)) return drop(*reason);
  datagram.checksum_offloaded = offload.checksum_offloaded;
  const Ipv6Header& h = datagram.header;
  trace_.step("ipv6 {} > {} next {} len {}", h.source, h.destination, h.next_header,
              h.payload_length);
  if (is_ipv6_multicast(h.destination)) {
    if (!ipv6_multicast_joined(h.destination)) return drop(DropReason::Ip6NotForUs);
    counters_.add(Counter::Ip6InMcastPkts);
  } else if (!ndisc_->owns(h.destination)) {
    // A tentative address takes only neighbour discovery's messages (RFC 4862 §5.4), and
    // those come to the solicited-node group.
    return drop(ndisc_->tentative(h.destination) ? DropReason::Ip6Tentative
                                                 : DropReason::Ip6NotForUs);
  }
  if (const auto problem = walk_ipv6_extensions(datagram)) {
    drop(problem->reason);
    if (problem->icmp) icmp6_->parameter_problem(datagram, *problem->icmp, now);
    return;
  }
  if (!datagram.fragment) return deliver6(datagram, now);

  const Fragment6Verdict verdict = reassembler6_->add(datagram, now);
  switch (verdict.outcome) {
    case Fragment6Verdict::Outcome::Held:
      trace_.step("fragment held");
      return;
    case Fragment6Verdict::Outcome::Dropped:
      if (verdict.icmp) icmp6_->parameter_problem(datagram, *verdict.icmp, now);
      return;  // the drop path has said why
    case Fragment6Verdict::Outcome::Complete:
      break;
  }
  // The reassembled packet is walked again from its fixed header: the unfragmentable part's
  // headers passed once already, and the byte that named the Fragment header now names what
  // followed it (Linux: ipv6_frag_rcv() returns to ip6_input_finish() with the whole packet).
  Ipv6Datagram reassembled;
  if (const auto reason = parse_ipv6(verdict.datagram, reassembled)) return drop(*reason);
  trace_.step("reassembled {} bytes", reassembled.packet.size());
  if (const auto problem = walk_ipv6_extensions(reassembled)) {
    drop(problem->reason);
    if (problem->icmp) icmp6_->parameter_problem(reassembled, *problem->icmp, now);
    return;
  }
  if (reassembled.fragment) return drop(DropReason::Ip6FragNested);
  deliver6(reassembled, now);
}

// Linux: ip6_protocol_deliver_rcu()
void Stack::deliver6(const Ipv6Datagram& datagram, Instant now) {
  const bool multicast = is_ipv6_multicast(datagram.header.destination);
  switch (datagram.protocol) {
    case kProtocolIcmpv6:
      counters_.add(Counter::Ip6InDelivers);
      return icmp6_->input(datagram, now);
    case kProtocolTcp:
      counters_.add(Counter::Ip6InDelivers);
      // Linux: tcp_v6_rcv(), which answers only what was sent to one of our addresses
      return tcp_->input({.source = datagram.header.source,
                          .destination = datagram.header.destination,
                          .segment = datagram.payload,
                          .to_us = !multicast,
                          .checksum_offloaded = datagram.checksum_offloaded},
                         now);
    case kIpv6NoNextHeader:
      return drop(DropReason::Ip6NoNextHeader);
    default:
      break;
  }
  drop(DropReason::Ip6UnknownProtocol);
  // RFC 8200 §4: an unrecognized next header is answered with Parameter Problem code 1,
  // pointing at the byte that named it.
  icmp6_->parameter_problem(
      datagram, {.code = 1, .pointer = static_cast<uint32_t>(datagram.protocol_field)}, now);
}

Status Stack::send_echo6_request(const IpAddress& dst, uint16_t id, uint16_t sequence,
                                 ByteView payload, Instant now) {
  if (!icmp6_) return Error{ENETUNREACH, "IPv6 is off: no --addr of that family"};
  now_ = now;
  return icmp6_->send_echo_request(dst, id, sequence, payload, now);
}

std::optional<Echo6Reply> Stack::poll_echo6_reply() {
  return icmp6_ ? icmp6_->poll_echo_reply() : std::nullopt;
}

Status Stack::send_ipv6(const IpAddress& dst, uint8_t next_header, ByteView payload,
                        Instant now) {
  if (!ndisc_) return Error{ENETUNREACH, "IPv6 is off: no --addr of that family"};
  const auto source = ip6_source_for(dst);
  if (!source) {
    drop(DropReason::Ip6OutNoSource);
    return Error{EADDRNOTAVAIL, "no IPv6 address of ours has passed duplicate address detection"};
  }
  trace_.begin("tx ipv6 to {} next {}", dst, next_header);
  const Status status = ipv6_output(*source, dst, next_header, payload, now, kDefaultHopLimit);
  trace_.flush();
  return status;
}

Status Stack::send_ip6_payload(const IpAddress& source, const IpAddress& destination,
                               uint8_t next_header, ByteView payload, Instant now,
                               uint8_t hop_limit) {
  return ipv6_output(source, destination, next_header, payload, now, hop_limit);
}

// RFC 6724 §5 in the two cases a host with one link-local and one global address has: the
// link-local source for a link-local (or link-scope multicast) destination, the global one for
// the rest; an address still tentative is never a source (rule 3's "avoid deprecated", and
// Linux's IFA_F_TENTATIVE). Linux: ipv6_dev_get_saddr()
std::optional<IpAddress> Stack::ip6_source_for(const IpAddress& destination) const {
  if (!ndisc_) return std::nullopt;
  const bool link_scope =
      is_ipv6_link_local(destination) ||
      (is_ipv6_multicast(destination) && (destination.bytes()[1] & 0x0f) <= 2);
  const IpAddress& first = link_scope ? link_local_ : config_.ipv6->address;
  const IpAddress& second = link_scope ? config_.ipv6->address : link_local_;
  if (ndisc_->owns(first)) return first;
  if (ndisc_->owns(second)) return second;
  return std::nullopt;
}

uint32_t Stack::path_mtu(const IpAddress& destination, Instant now) const {
  for (const PathMtu& p : path_mtus_) {
    if (p.destination == destination && p.expires > now) return p.mtu;
  }
  return config_.mtu;
}

// Linux: rt6_pmtu_discovery() (the route's MTU for 10 minutes), then tcpv6_err() →
// tcp_v6_mtu_reduced() for the connections to that destination.
void Stack::packet_too_big(const IpAddress& destination, uint32_t mtu, Instant now) {
  constexpr size_t kMaxPathMtus = 256;
  constexpr Duration kPathMtuLifetime = Duration::seconds(600);  // Linux: ip6_rt_mtu_expires
  mtu = std::clamp<uint32_t>(mtu, kIpv6MinMtu, config_.mtu);
  if (mtu >= path_mtu(destination, now)) return;  // only ever lowered (RFC 8201 §4)
  std::erase_if(path_mtus_, [&](const PathMtu& p) { return p.destination == destination; });
  if (path_mtus_.size() >= kMaxPathMtus) path_mtus_.erase(path_mtus_.begin());
  path_mtus_.push_back({destination, mtu, now + kPathMtuLifetime});
  trace_.step("path mtu to {} is now {}", destination, mtu);
  tcp_->path_mtu_reduced(destination, mtu, now);
}

// Linux: ip6_xmit() / ip6_finish_output2() → ip6_fragment() → neigh_output()
Status Stack::ipv6_output(const IpAddress& source, const IpAddress& destination,
                          uint8_t next_header, ByteView payload, Instant now, uint8_t hop_limit,
                          const FrameOffload& offload) {
  if (!ndisc_ || destination.is_ipv4()) {
    drop(DropReason::Ip6OutNoRoute);
    return Error{ENETUNREACH, "IPv6 is off: no --addr of that family"};
  }
  if (payload.size() > kIpv4MaxDatagramSize) {
    drop(DropReason::Ip6OutTooLong);
    return Error{EMSGSIZE, "IPv6 payload longer than 65535 bytes"};
  }
  const bool multicast = is_ipv6_multicast(destination);
  IpAddress next_hop = destination;
  if (!multicast && !is_ipv6_link_local(destination) && !config_.ipv6->on_link(destination)) {
    if (!config_.gateway6) {
      drop(DropReason::Ip6OutNoRoute);
      return Error{ENETUNREACH, fmt::format("no route to {}: not on {} and no IPv6 gateway",
                                            destination, config_.ipv6->to_string())};
    }
    next_hop = *config_.gateway6;
  }
  counters_.add(Counter::Ip6OutRequests);
  if (multicast) counters_.add(Counter::Ip6OutMcastPkts);
  Ipv6Header header;
  header.next_header = next_header;
  header.hop_limit = hop_limit;
  header.source = source;
  header.destination = destination;
  const uint32_t mtu = multicast ? config_.mtu : path_mtu(destination, now);
  const auto send = [&](ByteView packet, const FrameOffload& frame_offload) {
    if (multicast) {
      emit_frame(ipv6_multicast_mac(destination), kEtherTypeIpv6, packet, frame_offload);
    } else {
      ndisc_->send(next_hop, packet, now, frame_offload);
    }
  };
  if (kIpv6HeaderSize + payload.size() <= mtu || offload.segment_size > 0) {
    header.payload_length = static_cast<uint16_t>(payload.size());
    write_ipv6_header(ip_buffer_.data(), header);
    std::copy_n(payload.data(), payload.size(), ip_buffer_.data() + kIpv6HeaderSize);
    send({ip_buffer_.data(), kIpv6HeaderSize + payload.size()}, offload);
    return Ok{};
  }
  // Only the source fragments in IPv6 (RFC 8200 §4.5): every fragment but the last carries a
  // multiple of 8 bytes, each with a Fragment header naming the payload's next header. TCP
  // never comes here: it sizes its segments to the path MTU.
  header.next_header = kIpv6Fragment;
  const uint32_t id = next_ip6_id_++;
  const size_t per_fragment = (mtu - kIpv6HeaderSize - kIpv6FragmentHeaderSize) & ~size_t{7};
  for (size_t offset = 0; offset < payload.size(); offset += per_fragment) {
    const size_t size = std::min(per_fragment, payload.size() - offset);
    const bool more = offset + size < payload.size();
    header.payload_length = static_cast<uint16_t>(kIpv6FragmentHeaderSize + size);
    uint8_t* out = ip_buffer_.data();
    write_ipv6_header(out, header);
    out[kIpv6HeaderSize] = next_header;
    out[kIpv6HeaderSize + 1] = 0;
    store_be16(out + kIpv6HeaderSize + 2, static_cast<uint16_t>(offset | (more ? 1 : 0)));
    store_be32(out + kIpv6HeaderSize + 4, id);
    std::copy_n(payload.data() + offset, size,
                out + kIpv6HeaderSize + kIpv6FragmentHeaderSize);
    send({out, kIpv6HeaderSize + kIpv6FragmentHeaderSize + size}, {});
    counters_.add(Counter::Ip6FragCreates);
  }
  counters_.add(Counter::Ip6FragOKs);
  return Ok{};
}

}  // namespace tapstack
