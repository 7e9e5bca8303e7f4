#include "tests/fuzz/invariants.h"

#include <algorithm>
#include <array>
#include <set>
#include <tuple>

#include "md5opt/option.h"
#include "md5opt/verdict.h"
#include "stack/checksum.h"
#include "stack/tcp/tcp.h"

namespace tapstack::fuzz {
namespace {

using namespace socket_event;

// Each drop reason with the counters it counts under, read from the one list (counters.h).
struct DropRow {
  DropReason reason;
  Counter counter;
  Counter second;  // Counter::kCount when there is none
};

const std::array<DropRow, kDropReasonCount>& drop_rows() {
  using enum Counter;
  constexpr Counter None = Counter::kCount;
#define TAPSTACK_FUZZ_DROP_ROW(reason, counter, counter2, text) \
  DropRow{DropReason::reason, counter, counter2},
  static const std::array<DropRow, kDropReasonCount> rows{
      {TAPSTACK_DROP_REASONS(TAPSTACK_FUZZ_DROP_ROW)}};
#undef TAPSTACK_FUZZ_DROP_ROW
  return rows;
}

// Drops that do not stand for one received frame: the transmit side, timers, evictions, and
// what is trimmed from a segment that was otherwise taken. Every other reason ends the
// journey of exactly one received frame, so their sum cannot exceed the frames received.
bool counts_a_received_frame(DropReason reason) {
  switch (reason) {
    case DropReason::TxQueueFull:
    case DropReason::ArpQueueFull:
    case DropReason::ArpResolveFailed:
    case DropReason::IpOutNoRoute:
    case DropReason::IpOutTooLong:
    case DropReason::IcmpRateLimited:
    case DropReason::IpFragTimeout:
    case DropReason::IpFragMemoryLimit:
    case DropReason::TcpOfoQueueFull:
    case DropReason::TcpReceiveQueueFull:
    case DropReason::TcpZeroWindow:
    case DropReason::TcpDataAfterClose:
      return false;
    default:
      return true;
  }
}

bool contains(const std::vector<SocketId>& ids, SocketId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool one_of(TcpState state, std::initializer_list<TcpState> states) {
  return std::find(states.begin(), states.end(), state) != states.end();
}

void check_drop_counters(const Counters& c, Violations& v) {
  std::array<uint64_t, kCounterCount> implied{};
  for (const DropRow& row : drop_rows()) {
    implied[static_cast<size_t>(row.counter)] += c.drops(row.reason);
    if (row.second != Counter::kCount)
      implied[static_cast<size_t>(row.second)] += c.drops(row.reason);
  }
  for (size_t i = 0; i < kCounterCount; ++i) {
    const auto counter = static_cast<Counter>(i);
    if (c[counter] >= implied[i]) continue;
    v.add(fmt::format("counter {} is {}, below the {} drops counted under it",
                      counter_name(counter), c[counter], implied[i]));
  }
}

void check_queues(SocketId id, const TcpInfo& info, const SocketOptions& defaults, Violations& v) {
  // The application only ever shrinks buffers, so the defaults bound what a queue holds.
  v.check(info.receive_queue <= defaults.receive_buffer, "socket {}: {} bytes received, buffer {}",
          id, info.receive_queue, defaults.receive_buffer);
  v.check(info.send_queue <= defaults.send_buffer, "socket {}: {} bytes to send, buffer {}", id,
          info.send_queue, defaults.send_buffer);
  v.check(info.peer_window <= (65535u << 14), "socket {}: peer window {} beyond RFC 7323's limit",
          id, info.peer_window);
}

void check_connection_numbers(SocketId id, const TcpInfo& info, const Stack& stack, Violations& v) {
  const TcpConfig& tcp = stack.config().tcp;
  if (one_of(info.state, {TcpState::Closed, TcpState::Listen})) return;
  v.check(info.mss > 0 && info.mss <= stack.config().mtu - 40, "socket {} in {}: mss {}", id,
          tcp_state_name(info.state), info.mss);
  v.check(info.rto >= tcp.min_rto && info.rto <= tcp.max_rto, "socket {} in {}: rto {} ms", id,
          tcp_state_name(info.state), info.rto.ms());
  if (one_of(info.state, {TcpState::SynSent, TcpState::SynReceived})) return;
  v.check(info.cwnd > 0, "socket {} in {}: congestion window 0", id, tcp_state_name(info.state));
}

// Readiness must say what the state says (tcp.h, socket_event).
void check_events(SocketId id, const TcpInfo& info, uint32_t events, Violations& v) {
  const TcpState s = info.state;
  const auto name = tcp_state_name(s);
  if (s == TcpState::Listen) {
    v.check((events & ~kAcceptable) == 0, "listener {}: events {:#x}", id, events);
    return;
  }
  v.check(((events & kClosed) != 0) == one_of(s, {TcpState::Closed, TcpState::TimeWait}),
          "socket {} in {}: kClosed is {}", id, name, (events & kClosed) != 0);
  v.check(!(events & kWritable) || one_of(s, {TcpState::Established, TcpState::CloseWait}),
          "socket {} in {}: writable", id, name);
  v.check(!(events & kConnected) || !one_of(s, {TcpState::SynSent, TcpState::SynReceived}),
          "socket {} in {}: connected", id, name);
  v.check(s != TcpState::Established || (events & kConnected),
          "socket {} established, not connected", id);
  v.check(!(events & kPeerClosed) ||
              one_of(s, {TcpState::CloseWait, TcpState::Closing, TcpState::LastAck,
                         TcpState::TimeWait, TcpState::Closed}),
          "socket {} in {}: the peer's FIN was received", id, name);
}

// States no path leads to: the listener leaves LISTEN only when closed, a connection the
// application got after a handshake never goes back to one, a passive one never sends a SYN.
void check_reachable(SocketId id, const TcpInfo& info, const WorldFacts& facts, Violations& v) {
  const auto name = tcp_state_name(info.state);
  if (facts.listener == id) {
    v.check(info.state == TcpState::Listen, "the listener {} is in {}", id, name);
    return;
  }
  v.check(info.state != TcpState::Listen, "socket {} is in LISTEN, but no listen() made it", id);
  if (contains(facts.once_established, id)) {
    v.check(!one_of(info.state, {TcpState::SynSent, TcpState::SynReceived}),
            "socket {} was established and is now in {}", id, name);
  }
  if (!contains(facts.active_opens, id) && !contains(facts.once_established, id)) {
    v.check(info.state != TcpState::SynSent, "passive socket {} is in SYN-SENT", id);
  }
  v.check(!contains(facts.signed_sockets, id) || info.md5, "socket {} has a key, info.md5 false",
          id);
  v.check(!contains(facts.plain_sockets, id) || !info.md5, "socket {} has no key, info.md5 true",
          id);
}

}  // namespace

void check_counters(const Stack& stack, const WorldFacts& facts, Violations& v) {
  const Counters& c = stack.counters();
  v.check(c[Counter::EthInFrames] == facts.frames_in, "EthInFrames {} but {} frames were given",
          c[Counter::EthInFrames], facts.frames_in);
  v.check(c[Counter::EthOutFrames] == facts.frames_out, "EthOutFrames {} but {} frames were taken",
          c[Counter::EthOutFrames], facts.frames_out);
  uint64_t frame_drops = 0;
  for (size_t r = 0; r < kDropReasonCount; ++r) {
    const auto reason = static_cast<DropReason>(r);
    if (counts_a_received_frame(reason)) frame_drops += c.drops(reason);
  }
  v.check(frame_drops <= facts.frames_in, "{} received frames dropped, but only {} arrived",
          frame_drops, facts.frames_in);
  v.check(c[Counter::IpInReceives] <= c[Counter::EthInFrames], "IpInReceives {} > EthInFrames {}",
          c[Counter::IpInReceives], c[Counter::EthInFrames]);
  v.check(c[Counter::IpInDelivers] <= c[Counter::IpInReceives], "IpInDelivers {} > IpInReceives {}",
          c[Counter::IpInDelivers], c[Counter::IpInReceives]);
  v.check(c[Counter::TcpInSegs] + c[Counter::IcmpInMsgs] <= c[Counter::IpInDelivers],
          "TcpInSegs {} + IcmpInMsgs {} > IpInDelivers {}", c[Counter::TcpInSegs],
          c[Counter::IcmpInMsgs], c[Counter::IpInDelivers]);
  check_drop_counters(c, v);
}

void check_sockets(const Stack& stack, const WorldFacts& facts, Violations& v) {
  const Tcp& tcp = stack.tcp();
  const std::vector<SocketId> ids = tcp.sockets();
  v.check(ids.size() == tcp.connection_count(), "{} sockets listed, {} connections", ids.size(),
          tcp.connection_count());
  // Setup made 3; each step adds at most one by a SYN and one by the application.
  v.check(tcp.connection_count() <= 3 + 2 * facts.steps, "{} connections after {} steps",
          tcp.connection_count(), facts.steps);
  std::set<std::tuple<std::string, uint16_t, uint16_t>> flows;
  for (const SocketId id : ids) {
    const auto info = tcp.info(id);
    if (!info) continue;  // the application let go of it; the stack still runs it
    v.check(info->state <= TcpState::TimeWait, "socket {}: state {} out of range", id,
            static_cast<int>(info->state));
    check_queues(id, *info, stack.config().tcp.defaults, v);
    check_connection_numbers(id, *info, stack, v);
    check_events(id, *info, tcp.events(id), v);
    check_reachable(id, *info, facts, v);
    if (one_of(info->state, {TcpState::Closed, TcpState::Listen})) continue;
    const auto flow =
        std::tuple{info->remote_address.to_string(), info->remote_port, info->local_port};
    v.check(flows.insert(flow).second, "two sockets on {}:{} ← :{}", info->remote_address,
            info->remote_port, info->local_port);
  }
}

void check_memory(const Stack& stack, Violations& v) {
  const ReassemblyConfig& reassembly = stack.config().reassembly;
  // The limit counts payload; the first fragments' headers (at most 60 bytes each) come on top.
  const size_t reassembly_limit = reassembly.memory_limit + reassembly.max_datagrams * 60;
  v.check(stack.reassembly_bytes() <= reassembly_limit, "reassembly holds {} bytes, limit {}",
          stack.reassembly_bytes(), reassembly_limit);
  v.check(stack.reassembly_datagrams() <= reassembly.max_datagrams,
          "reassembly holds {} datagrams, limit {}", stack.reassembly_datagrams(),
          reassembly.max_datagrams);
  const TcpConfig& tcp = stack.config().tcp;
  const size_t per_connection =
      tcp.defaults.send_buffer + tcp.defaults.receive_buffer + tcp.max_out_of_order_bytes;
  const size_t limit = stack.tcp().connection_count() * per_connection;
  v.check(stack.tcp().buffer_memory() <= limit, "connections hold {} bytes, bound {}",
          stack.tcp().buffer_memory(), limit);
}

void check_liveness(const Stack& stack, Violations& v) {
  if (!stack.next_deadline().is_never()) return;
  const Tcp& tcp = stack.tcp();
  for (const SocketId id : tcp.sockets()) {
    const auto info = tcp.info(id);
    if (!info) continue;
    const bool waiting =
        one_of(info->state, {TcpState::SynSent, TcpState::SynReceived, TcpState::FinWait1,
                             TcpState::Closing, TcpState::LastAck, TcpState::TimeWait});
    const bool sending =
        one_of(info->state, {TcpState::Established, TcpState::CloseWait}) && info->send_queue > 0;
    v.check(!waiting && !sending,
            "socket {} in {} with {} bytes to send, and no timer is armed: it can never move on",
            id, tcp_state_name(info->state), info->send_queue);
  }
}

void SentFrameChecker::check(ByteView frame, const Stack& stack, const FlowTracker& flows,
                             const SigningRules& rules, Violations& v) {
  if (frame.size() < kEthernetHeaderSize)
    return v.add("sent a frame shorter than Ethernet's header");
  v.check(std::equal(frame.begin() + 6, frame.begin() + 12, stack.config().mac.bytes.begin()),
          "sent a frame from another MAC address");
  if (load_be16(frame.data() + 12) != kEtherTypeIpv4) return;
  Ipv4Datagram datagram;
  const auto reason = parse_ipv4(frame.subspan(kEthernetHeaderSize), datagram);
  if (reason)
    return v.add(fmt::format("sent an IPv4 packet we reject: {}", drop_reason_name(*reason)));
  v.check(datagram.header.source == stack.config().ipv4.address, "sent from {}",
          datagram.header.source);
  if (datagram.header.protocol == kProtocolIcmp && !datagram.header.is_fragment()) {
    v.check(internet_checksum(datagram.payload) == 0, "sent an ICMP message with a bad checksum");
  }
  if (datagram.header.protocol != kProtocolTcp) return;
  if (datagram.header.is_fragment()) {
    return v.add(fmt::format(
        "fragmented its own TCP segment to {} ({} bytes at offset {}): a "
        "segment must fit the MSS",
        datagram.header.destination, datagram.payload.size(), datagram.header.fragment_offset));
  }
  check_tcp(datagram, flows, rules, v);
}

void SentFrameChecker::check_tcp(const Ipv4Datagram& datagram, const FlowTracker& flows,
                                 const SigningRules& rules, Violations& v) {
  TcpSegment segment;
  const Ipv4Address peer = datagram.header.destination;
  if (const auto reason = parse_tcp(datagram.payload, datagram.header.source, peer, segment)) {
    return v.add(fmt::format("sent a TCP segment we reject: {}", drop_reason_name(*reason)));
  }
  check_signature(segment, datagram, rules, v);
  const auto before = flows.state(peer, segment.destination_port, segment.source_port);
  const bool plain_ack = segment.has(tcp_flags::kAck) && !segment.has(tcp_flags::kSyn) &&
                         !segment.has(tcp_flags::kRst);
  if (plain_ack && before.acknowledged) {
    v.check(segment.ack >= Seq(before.rcv_nxt),
            "acknowledgment went back on {}:{} ← :{}, from {} to {}", peer,
            segment.destination_port, segment.source_port, before.rcv_nxt, segment.ack.value());
  }
}

void SentFrameChecker::check_signature(const TcpSegment& segment, const Ipv4Datagram& datagram,
                                       const SigningRules& rules, Violations& v) {
  const Ipv4Address peer = datagram.header.destination;
  const md5opt::Md5Key* key = peer_keys_.lookup(IpAddress(peer));
  const auto digest_at = md5opt::find_md5_option(segment.header);
  const bool must_sign = std::any_of(
      rules.signed_flows.begin(), rules.signed_flows.end(), [&](const SigningRules::Flow& f) {
        return f.our_port == segment.source_port &&
               (f.peer_port == 0 || f.peer_port == segment.destination_port) &&
               (f.peer.value == 0 || f.peer == peer) && (f.resets || !segment.has(tcp_flags::kRst));
      });
  const auto what = fmt::format("{} from :{} to {}:{}", tcp_flags_text(segment.flags),
                                segment.source_port, peer, segment.destination_port);
  v.check(digest_at || !key || !must_sign, "sent {} unsigned", what);
  if (!digest_at) return;
  if (!key) return v.add(fmt::format("sent {} signed, but the peer has no key", what));
  const md5opt::TcpSegment signed_segment{IpAddress(datagram.header.source), IpAddress(peer),
                                          segment.header, segment.payload};
  v.check(
      md5opt::inbound_verdict(signer_, key, digest_at, signed_segment) == md5opt::Md5Verdict::Ok,
      "sent {} with a digest that does not verify", what);
}

}  // namespace tapstack::fuzz
