// TCP input: demultiplexing and the RFC 9293 §3.10.7 "segment arrives" steps.
#include <algorithm>
#include <cerrno>

#include "md5opt/option.h"
#include "md5opt/verdict.h"
#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

using namespace tcp_flags;

const md5opt::Md5Key* key_for(const Connection& socket, const IpAddress& peer) {
  return socket.md5_keys ? socket.md5_keys->lookup(peer) : nullptr;
}

// SYN with RST or FIN. Checked after RFC 2385, as Linux does: an unsigned segment to a signed
// connection is TCPMD5NotFound whatever its flags (every combination checked against the kernel
// in tests/md5_kernel/spoof_test.cc).
bool nonsense_flags(const TcpSegment& seg) {
  return seg.has(kSyn) && seg.has(kRst | kFin);
}

}  // namespace

// Linux: tcp_v4_rcv()
void Tcp::input(const TcpArrival& arrival, Instant now) {
  Event event(*this);
  TcpSegment seg;
  const IpAddress& source = arrival.source;
  if (const auto reason = parse_tcp(arrival.segment, source, arrival.destination, seg,
                                    !arrival.checksum_offloaded)) {
    return ctx_.drop(*reason);
  }
  ctx_.counters.add(Counter::TcpInSegs);
  ctx_.trace.step("tcp {} > :{} {} seq={} ack={} win={} len={} (tcp_v{}_rcv) | checksum {}",
                  Endpoint{source, seg.source_port}, seg.destination_port, tcp_flags_text(seg.flags),
                  seg.seq.value(), seg.ack.value(), seg.window, seg.payload.size(),
                  source.is_ipv4() ? 4 : 6, arrival.checksum_offloaded ? "offloaded" : "ok");
  if (!arrival.to_us) {
    return ctx_.drop(DropReason::TcpBroadcast);
  }
  if (seg.payload.empty() && seg.flags == kAck) ctx_.counters.add(Counter::TcpExtTCPPureAcks);
  // Found once, for whichever socket's check the segment meets. Linux: tcp_parse_md5sig_option()
  const auto digest_at = md5opt::find_md5_option(seg.header);

  // Demultiplex: connections first, then listeners. Linux: __inet_lookup_skb()
  const auto flow =
      flows_.find(FlowKey{source, arrival.destination, seg.source_port, seg.destination_port});
  if (flow != flows_.end()) {
    Connection& c = touch(*connections_.at(flow->second));
    ctx_.trace.step("lookup: connection {} in {}", c.id, tcp_state_name(c.state));
    Connection* const listener = reopening_listener(c, seg);
    if (!listener) return connection_input(c, seg, digest_at, now);
    // The SYN is the listener's now, to check with its key as any SYN it gets: a key added or
    // changed since the old connection began applies. Unlike Linux, which ends TIME-WAIT
    // first, a SYN that fails the check leaves it as it was (RFC 2385 §2.0: no state touched).
    // Linux: TCP_TW_SYN in tcp_v4_rcv(), then "goto process" with the listener
    ctx_.trace.step("SYN beyond TIME-WAIT: to listener :{}", c.local_port);
    if (!md5_accepts(key_for(*listener, source), digest_at, seg)) return;
    if (nonsense_flags(seg)) return ctx_.drop(DropReason::TcpBadFlags);
    ctx_.counters.add(Counter::TcpExtTWRecycled);
    ctx_.trace.step("connection {} reused", c.id);
    destroy(c);
    return listen_input(*listener, seg, now);
  }
  if (const auto listener = listeners_.find(seg.destination_port); listener != listeners_.end()) {
    ctx_.trace.step("lookup: listener :{}", seg.destination_port);
    Connection& l = *connections_.at(listener->second);
    if (!md5_accepts(key_for(l, source), digest_at, seg)) return;
    if (nonsense_flags(seg)) return ctx_.drop(DropReason::TcpBadFlags);
    return listen_input(l, seg, now);
  }
  if (nonsense_flags(seg)) return ctx_.drop(DropReason::TcpBadFlags);
  no_socket(seg, digest_at, now);
}

// A segment for one of our connections, TIME-WAIT included, checked with its key.
void Tcp::connection_input(Connection& c, const TcpSegment& seg, std::optional<size_t> digest_at,
                           Instant now) {
  if (!md5_accepts(md5_key(c), digest_at, seg)) return;
  if (nonsense_flags(seg)) return ctx_.drop(DropReason::TcpBadFlags);
  switch (c.state) {
    case TcpState::SynSent:
      syn_sent_input(c, seg, now);
      break;
    case TcpState::TimeWait:
      time_wait_input(c, seg, now);
      break;
    default:
      synchronized_input(c, seg, now);
      break;
  }
}

// The listener a SYN for a connection in TIME-WAIT goes to instead, or nullptr: RFC 1122
// §4.2.2.13 lets a new SYN beyond the old connection's data reopen it.
// Linux: the TCP_TW_SYN case of tcp_timewait_state_process()
Connection* Tcp::reopening_listener(const Connection& c, const TcpSegment& seg) {
  if (c.state != TcpState::TimeWait || !seg.has(kSyn) || seg.has(kAck | kRst) ||
      seg.seq <= c.rcv_nxt) {
    return nullptr;
  }
  const auto listener = listeners_.find(c.local_port);
  return listener == listeners_.end() ? nullptr : connections_.at(listener->second).get();
}

// A segment for no connection and no listener: a reset, unless the segment is signed. Then, as
// Linux does, a listener on the segment's source port (where our end of a lost connection
// would have been) must have a key for the peer that verifies the segment, and signs the
// reset with it; failing that, nothing is sent. Linux: tcp_v4_send_reset() with sk == NULL
void Tcp::no_socket(const TcpSegment& seg, std::optional<size_t> digest_at, Instant now) {
  if (seg.has(kRst)) return ctx_.drop(DropReason::TcpResetNoSocket);
  const md5opt::Md5Key* key = nullptr;
  if (digest_at) {
    const auto listener = listeners_.find(seg.source_port);
    if (listener != listeners_.end()) {
      key = key_for(*connections_.at(listener->second), seg.source_address);
    }
  }
  if (!md5_accepts(key, digest_at, seg, Md5Check::ForReset)) return;
  ctx_.drop(DropReason::TcpNoSocket);
  send_reset_for(seg, key, now);
}

// RFC 9293 §3.10.7.2. Linux: tcp_v4_conn_request() via tcp_rcv_state_process()
void Tcp::listen_input(Connection& listener, const TcpSegment& seg, Instant now) {
  if (seg.has(kRst)) return ctx_.drop(DropReason::TcpResetNoSocket);
  const md5opt::Md5Key* const key = key_for(listener, seg.source_address);
  if (seg.has(kAck)) {
    // The ACK that completes a handshake answered with a SYN cookie. Linux:
    // tcp_v4_cookie_check() from tcp_v4_rcv()
    if (!seg.has(kSyn) && cookie_ack(listener, seg, key, now)) return;
    ctx_.drop(DropReason::TcpListenNotSyn);
    return send_reset_for(seg, key, now);
  }
  if (!seg.has(kSyn)) return ctx_.drop(DropReason::TcpListenNotSyn);
  // A full accept queue drops the SYN, cookies or not: the application is not keeping up.
  // Linux: sk_acceptq_is_full() in tcp_conn_request()
  const ListenerState& queues = *listener.listen;
  if (queues.accept_queue.size() >= static_cast<size_t>(queues.backlog)) {
    return ctx_.drop(DropReason::TcpListenOverflow);
  }
  // A full queue of half-open connections (or no room for one more connection): answer
  // with a cookie, keeping nothing. Linux: tcp_syn_flood_action() in tcp_conn_request()
  if (queues.half_open >= static_cast<size_t>(queues.backlog) ||
      connections_.size() >= config_.max_connections) {
    if (!config_.syn_cookies) {
      ctx_.counters.add(Counter::TcpExtTCPReqQFullDrop);
      return ctx_.drop(DropReason::TcpListenOverflow);
    }
    ctx_.counters.add(Counter::TcpExtTCPReqQFullDoCookies);
    return send_cookie_synack(listener, seg, key, now);
  }
  Connection& c = create_child(listener, seg, key, now);
  take_syn(c, seg);
  enter_syn_queue(listener, c);
  ctx_.trace.step("syn → new connection {} in SYN-RECEIVED (tcp_conn_request)", c.id);
  send_syn(c, now);
}

// A connection of listener's with the peer that sent syn, in SYN-RECEIVED, initialised but
// not yet reachable. It takes the listener's options, and its key for the peer.
// Linux: inet_csk_clone_lock() from tcp_create_openreq_child(); the key copied with
// tcp_md5_do_add() in tcp_v4_syn_recv_sock()
Connection& Tcp::create_child(const Connection& listener, const TcpSegment& syn,
                              const md5opt::Md5Key* key, Instant now) {
  Connection& c = create(TcpState::SynReceived, now);
  c.remote_address = syn.source_address;
  c.local_address = syn.destination_address;
  c.remote_port = syn.source_port;
  c.local_port = listener.local_port;
  c.passive = true;
  c.listener = listener.id;
  c.options = listener.options;
  if (key) {
    c.md5_keys = std::make_unique<md5opt::KeyTable>();
    c.md5_keys->add(c.remote_address, c.remote_address.bit_length(), key->bytes());
  }
  init_connection(c, now);
  return c;
}

// The child, its handshake state set, becomes reachable and counts in its listener's queue
// of half-open connections.
void Tcp::enter_syn_queue(Connection& listener, Connection& c) {
  flows_.emplace(c.flow(), c.id);
  ++listener.listen->half_open;
  c.in_syn_queue = true;
  ctx_.counters.add(Counter::TcpPassiveOpens);
}

// What the peer's SYN tells: its ISN, its MSS (RFC 9293 §3.7.1: 536 when it gives none),
// its window.
// Linux: part of tcp_openreq_init() and tcp_rcv_synsent_state_process()
void Tcp::take_syn(Connection& c, const TcpSegment& seg) {
  c.irs = seg.seq;
  c.rcv_nxt = seg.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  // An MSS of 0 is ignored, and none is taken below 48, as Linux does (tcp_min_snd_mss).
  const uint16_t offered = seg.options.mss.value_or(0) != 0 ? *seg.options.mss : 536;
  c.mss = std::clamp<uint16_t>(offered, 48, c.advmss);
  c.snd_wnd = seg.window;  // a SYN's window is never scaled (RFC 7323 §2.2)
  c.max_snd_wnd = seg.window;
  c.snd_wl1 = seg.seq;
  c.peer_offered_window_scale = seg.options.window_scale.has_value();
  c.snd_wscale = std::min<uint8_t>(seg.options.window_scale.value_or(0), 14);  // §2.3
  c.peer_offered_sack = seg.options.sack_permitted;
  c.peer_offered_timestamps = seg.options.ts_value.has_value();
  c.ts_recent = seg.options.ts_value.value_or(0);
}

// RFC 9293 §3.10.7.3. Linux: tcp_rcv_synsent_state_process()
void Tcp::syn_sent_input(Connection& c, const TcpSegment& seg, Instant now) {
  const bool ack_acceptable = seg.has(kAck) && c.iss < seg.ack && seg.ack <= c.snd_max;
  if (seg.has(kAck) && !ack_acceptable) {
    ctx_.drop(DropReason::TcpAckNotAcceptable);
    if (!seg.has(kRst)) send_reset_for(seg, md5_key(c), now);
    return;
  }
  if (seg.has(kRst)) {
    if (!ack_acceptable) return ctx_.drop(DropReason::TcpRstOutOfWindow);
    ctx_.trace.step("reset: connection refused");
    return connection_failed(c, ECONNREFUSED);
  }
  if (!seg.has(kSyn)) return ctx_.drop(DropReason::TcpListenNotSyn);
  take_syn(c, seg);
  c.snd_wl2 = seg.ack;
  if (!ack_acceptable) {
    // Simultaneous open (RFC 9293 Figure 7): answer with SYN-ACK from SYN-RECEIVED.
    set_state(c, TcpState::SynReceived, "simultaneous open");
    transmit(c, c.iss, kSyn | kAck, 0, now);
    return;
  }
  c.snd_una = seg.ack;
  // What both SYNs carried is what the connection uses (RFC 7323 §2.2, §3.2; RFC 2018 §2).
  c.window_scaling = config_.window_scaling && c.peer_offered_window_scale;
  c.timestamps = config_.timestamps && !md5_key(c) && c.peer_offered_timestamps;
  c.sack = config_.sack && c.peer_offered_sack;
  if (!c.window_scaling) c.snd_wscale = c.rcv_wscale = 0;
  if (c.timed_seq) {
    update_rtt(c, now - c.timed_at);
    c.timed_seq.reset();
  }
  established(c, now);
  send_ack(c, now);
  write_xmit(c, now);
}

// Linux: tcp_timewait_state_process()
void Tcp::time_wait_input(Connection& c, const TcpSegment& seg, Instant now) {
  if (seg.has(kRst)) {
    ctx_.trace.step("reset in TIME-WAIT: closed");
    return state_timeout(c, now);
  }
  if (seg.has(kSyn) && !seg.has(kAck) && seg.seq > c.rcv_nxt) {
    // RFC 1122 §4.2.2.13 with no listener to take the SYN (input() gives it to one if there
    // is): the old connection ends.
    ctx_.counters.add(Counter::TcpExtTWRecycled);
    ctx_.trace.step("SYN beyond TIME-WAIT, no listener: connection ended");
    return destroy(c);
  }
  if (seg.has(kFin) || seg.has(kSyn) || !seg.payload.empty()) {
    // Only a retransmitted FIN can arrive here: acknowledge it, restart 2·MSL.
    if (seg.has(kFin)) c.state_timer_at = now + config_.msl * 2;
    ctx_.trace.step("TIME-WAIT: acknowledge again");
    send_ack(c, now);
  }
}

// RFC 9293 §3.10.7.4 (+ RFC 5961). Linux: tcp_rcv_state_process(), tcp_rcv_established()
void Tcp::synchronized_input(Connection& c, const TcpSegment& seg, Instant now) {
  c.last_received = now;
  c.keepalive_probes = 0;
  if (c.options.keepalive && (c.state == TcpState::Established || c.state == TcpState::CloseWait)) {
    c.keepalive_at = now + c.options.keepalive_idle;
  }
  if (c.state == TcpState::SynReceived && seg.has(kSyn) && !seg.has(kAck) && seg.seq == c.irs) {
    ctx_.trace.step("SYN again: SYN-ACK again");
    return transmit(c, c.iss, kSyn | kAck, 0, now);
  }
  // RFC 7323 §5.3 R1 (PAWS): a timestamp older than the last one is an old duplicate.
  // Linux: tcp_paws_discard()
  if (c.timestamps && seg.options.ts_value && !seg.has(kRst) &&
      static_cast<int32_t>(*seg.options.ts_value - c.ts_recent) < 0) {
    ctx_.drop(DropReason::TcpPawsRejected);
    note_duplicate(c, seg);
    return send_ack(c, now);
  }
  // Step 1: check the sequence number.
  if (!sequence_acceptable(c, seg)) {
    if (seg.has(kRst)) return ctx_.drop(DropReason::TcpRstOutOfWindow);
    ctx_.drop(DropReason::TcpOutOfWindow);
    // RFC 5961 §4.2: a SYN anywhere gets a challenge ACK, as Linux's syn_challenge path in
    // tcp_validate_incoming() does for out-of-window ones too.
    if (seg.has(kSyn)) return challenge_ack(c, now);
    note_duplicate(c, seg);
    return send_ack(c, now);
  }
  // RFC 7323 §4.3: remember the timestamp to echo, from segments at the left window edge.
  if (c.timestamps && seg.options.ts_value && seg.seq <= c.last_ack_sent) {
    c.ts_recent = *seg.options.ts_value;
  }
  // Step 2: the RST bit; only an exact match resets (RFC 5961 §3.2).
  if (seg.has(kRst)) {
    if (seg.seq != c.rcv_nxt) {
      ctx_.trace.step("reset in window but not at rcv_nxt: challenge ACK");
      return challenge_ack(c, now);
    }
    return reset_received(c);
  }
  // Step 4: the SYN bit: in any synchronized state, a challenge ACK (RFC 5961 §4.2).
  if (seg.has(kSyn)) {
    ctx_.trace.step("SYN in a synchronized state: challenge ACK");
    return challenge_ack(c, now);
  }
  // Step 5: the ACK field.
  if (!seg.has(kAck)) return ctx_.drop(DropReason::TcpNoAck);
  if (c.state == TcpState::SynReceived) {
    if (!(c.snd_una < seg.ack && seg.ack <= c.snd_max)) {
      ctx_.drop(DropReason::TcpAckNotAcceptable);
      return send_reset_for(seg, md5_key(c), now);
    }
    established(c, now);
  }
  if (!process_ack(c, seg, now) || c.destroyed) return;
  // Steps 7 and 8: the segment text and the FIN bit.
  process_data(c, seg, now);
  if (c.destroyed) return;
  write_xmit(c, now);  // the ACK may have opened the window; data carries the ACK too
  ack_check(c, now);
}

// Whether the data received calls for an ACK now. Delayed ACK: at least every second
// full-sized segment, else within the delay (RFC 1122 §4.2.3.2, RFC 5681 §4.2). Counted in
// bytes, as Linux does: more than one full segment unacknowledged. Two full segments, or one
// that TSO or GRO made of several, are acknowledged at once, and so is a run of small segments
// once it adds up to more than rcv_mss (at least 536 bytes), where counting segments would
// leave it to the timer. Within a burst of frames (begin_burst()), that ACK waits for the end
// of the burst, up to kBurstAckLimit bytes: what GRO does for Linux, which merges the
// segments one poll of a NIC brings into one before TCP sees them, so that TCP acknowledges
// them once. Each ACK we save saves the peer a receive path (over the TAP, the kernel's, with
// its TCP-MD5 check).
// Linux: __tcp_ack_snd_check()
void Tcp::ack_check(Connection& c, Instant now) {
  if (c.ack_now) return send_ack(c, now);
  if (c.delayed_ack_at.is_never()) return;  // no data waits for an ACK
  const int32_t unacknowledged = c.rcv_nxt - c.last_ack_sent;
  if (unacknowledged <= static_cast<int32_t>(c.rcv_mss)) return;  // the delayed-ACK timer's
  if (in_burst_ && unacknowledged < static_cast<int32_t>(kBurstAckLimit)) {
    acks_after_burst_.push_back(c.id);
    return;
  }
  send_ack(c, now);
}

void Tcp::begin_burst() {
  in_burst_ = true;
}

void Tcp::end_burst(Instant now) {
  Event event(*this);
  in_burst_ = false;
  for (const SocketId id : acks_after_burst_) {
    Connection* c = find(id);
    // Once: an ACK sent since (or the first of duplicates in the list) covers it.
    if (c && c->synchronized() && c->rcv_nxt != c->last_ack_sent) send_ack(touch(*c), now);
  }
  acks_after_burst_.clear();
}

// RFC 2883 §4: data we had already is reported in the next ACK as a D-SACK block, the part
// of the segment below rcv_nxt, so the sender learns its retransmission was needless.
// Linux: tcp_dsack_set() from tcp_send_dupack() and tcp_data_queue()
void Tcp::note_duplicate(Connection& c, const TcpSegment& seg) {
  if (!c.sack || seg.payload.empty() || !(seg.seq < c.rcv_nxt)) return;
  const Seq end = seg.seq + static_cast<uint32_t>(seg.payload.size());
  c.dsack = SackBlock{seg.seq, seq_min(end, c.rcv_nxt)};
  c.ack_now = true;
  ctx_.counters.add(Counter::TcpExtTCPDSACKOldSent);
  ctx_.trace.step("duplicate data: D-SACK {}-{}", c.dsack->left.value(), c.dsack->right.value());
}

// RFC 9293 §3.10.7.4, first table: is any of the segment inside the receive window?
bool Tcp::sequence_acceptable(const Connection& c, const TcpSegment& seg) const {
  const uint32_t length = seg.length();
  const int32_t window = std::max<int32_t>(c.rcv_adv - c.rcv_nxt, 0);
  const Seq window_end = c.rcv_nxt + static_cast<uint32_t>(window);
  if (window == 0) {
    // Nothing fits, but the ACK, RST and a probe at rcv_nxt must still be read.
    return seg.seq == c.rcv_nxt;
  }
  if (length == 0) return seq_in_window(seg.seq, c.rcv_nxt, window_end);
  return seq_in_window(seg.seq, c.rcv_nxt, window_end) ||
         seq_in_window(seg.seq + (length - 1), c.rcv_nxt, window_end);
}

// Linux: tcp_reset()
void Tcp::reset_received(Connection& c) {
  ctx_.trace.step("reset accepted in {}", tcp_state_name(c.state));
  switch (c.state) {
    case TcpState::SynReceived:
      if (c.passive) return destroy(c);  // back to the listener, which knows nothing of it
      return connection_failed(c, ECONNREFUSED);
    case TcpState::Established:
    case TcpState::CloseWait:
    case TcpState::FinWait1:
    case TcpState::FinWait2:
      return connection_failed(c, ECONNRESET);
    default:
      return connection_failed(c, 0);
  }
}

// Returns false when the segment is done with (dropped, or the connection ended).
// Linux: tcp_ack()
bool Tcp::process_ack(Connection& c, const TcpSegment& seg, Instant now) {
  const uint32_t window = uint32_t{seg.window} << (c.window_scaling ? c.snd_wscale : 0);
  // RFC 5961 §5.2: acceptable is SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT; outside it,
  // a challenge ACK (rate-limited) and the segment is dropped, so a blind attacker's ACKs
  // and data cannot get in by guessing. Linux: the checks at the top of tcp_ack()
  if (seg.ack > c.snd_max || seg.ack < c.snd_una - c.max_snd_wnd) {
    ctx_.drop(DropReason::TcpAckNotAcceptable);
    ctx_.trace.step("ack outside the acceptable range: challenge ACK");
    challenge_ack(c, now);
    return false;
  }
  const bool newly_sacked = c.sack && update_scoreboard(c, seg);
  if (seg.ack > c.snd_una) {
    const uint32_t acked = static_cast<uint32_t>(seg.ack - c.snd_una);
    const bool acks_syn = c.snd_una == c.iss;
    if (seg.ack > c.send_buffer_seq) {
      const size_t n = std::min<size_t>(static_cast<uint32_t>(seg.ack - c.send_buffer_seq),
                                        c.send_buffer.size());
      c.send_buffer.consume(n);
      c.send_buffer_seq += static_cast<uint32_t>(n);
      buffers_drained(c, now);
    }
    c.snd_una = seg.ack;
    if (c.snd_nxt < c.snd_una) c.snd_nxt = c.snd_una;
    prune_scoreboard(c);
    if (c.timestamps && seg.options.ts_value && seg.options.ts_echo != 0) {
      // RFC 7323 §4.1: every ACK that advances the window times a round trip, even after
      // a retransmission (the echo says which transmission it answers).
      const uint32_t elapsed = ts_now(c, now) - seg.options.ts_echo;
      if (elapsed < 60'000) update_rtt(c, Duration::milliseconds(elapsed));
      c.timed_seq.reset();
    } else if (c.timed_seq && seg.ack > *c.timed_seq) {
      update_rtt(c, now - c.timed_at);
      c.timed_seq.reset();
    }
    c.retries = 0;
    // The SYN's sequence number is no data: it does not grow the window.
    on_new_ack(c, acked - (acks_syn ? 1 : 0), now);
    if (c.in_flight() > 0) {
      arm_retransmit(c, now);
    } else {
      c.retransmit_at = Instant::never();
    }
  } else if (seg.ack == c.snd_una && c.in_flight() > 0 &&
             (newly_sacked || (seg.payload.empty() && !seg.has(kFin) && window == c.snd_wnd))) {
    on_duplicate_ack(c, now);  // RFC 6675 §2: an ACK that SACKs new data counts too
  }
  // RFC 9293 §3.10.7.4: take the window only from a segment newer than the last that set it.
  if (c.snd_wl1 < seg.seq || (c.snd_wl1 == seg.seq && c.snd_wl2 <= seg.ack)) {
    c.snd_wnd = window;
    c.max_snd_wnd = std::max(c.max_snd_wnd, c.snd_wnd);
    c.snd_wl1 = seg.seq;
    c.snd_wl2 = seg.ack;
  }
  if (c.persist) {
    c.probes = 0;  // the peer answers: it is alive, even with its window shut
    if (c.snd_wnd > 0) {
      c.persist = false;
      c.persist_backoff = 0;
      c.retransmit_at = Instant::never();
    }
  }
  const bool fin_acked = c.write_shutdown && c.snd_una > c.buffered_end();
  if (!fin_acked) return true;
  switch (c.state) {
    case TcpState::FinWait1:
      set_state(c, TcpState::FinWait2, "our FIN acknowledged");
      c.retransmit_at = Instant::never();
      if (c.user_closed) c.state_timer_at = now + config_.fin_wait2_timeout;
      return true;
    case TcpState::Closing:
      enter_time_wait(c, now, "our FIN acknowledged");
      return false;
    case TcpState::LastAck:
      ctx_.trace.step("our FIN acknowledged");
      connection_failed(c, 0);
      return false;
    default:
      return true;
  }
}

// RFC 5681 §3.1 and RFC 6582 (NewReno). Linux: tcp_cong_avoid(), tcp_fastretrans_alert()
void Tcp::on_new_ack(Connection& c, uint32_t acked, Instant now) {
  if (c.in_recovery) {
    if (c.snd_una >= c.recover) {
      c.in_recovery = false;
      c.dup_acks = 0;
      c.cwnd = std::min(c.ssthresh, c.in_flight() + c.mss);
      return;
    }
    if (c.sack) return;  // write_xmit() sends what the scoreboard says (RFC 6675)
    // A partial ACK: the next hole is lost too. Retransmit it, deflate the window.
    const uint32_t length = std::min<uint32_t>(
        send_mss(c), static_cast<uint32_t>(std::max<int32_t>(c.buffered_end() - c.snd_una, 0)));
    const bool fin = c.write_shutdown && c.snd_una + length == c.buffered_end();
    transmit(c, c.snd_una, kAck | (fin ? kFin : 0), length, now);
    c.cwnd = c.cwnd > acked ? c.cwnd - acked + c.mss : c.mss;
    return;
  }
  c.dup_acks = 0;
  congestion_on_ack(c, acked, now);
}

void Tcp::on_duplicate_ack(Connection& c, Instant now) {
  ++c.dup_acks;
  if (c.in_recovery) {
    if (!c.sack) c.cwnd += c.mss;  // NewReno: each duplicate means a segment left the network
    return;
  }
  if (c.dup_acks < 3 && !(c.sack && is_lost(c, c.snd_una))) return;
  // Fast retransmit and recovery (RFC 5681 §3.2; with SACK, RFC 6675 §5).
  ctx_.counters.add(Counter::TcpExtTCPFastRetrans);
  ctx_.counters.add(c.sack ? Counter::TcpExtTCPSackRecovery : Counter::TcpExtTCPRenoRecovery);
  ctx_.trace.step("loss detected ({} duplicate ACKs): fast retransmit", c.dup_acks);
  c.ssthresh = congestion_ssthresh_after_loss(c);
  c.recover = c.snd_max;
  c.in_recovery = true;
  if (c.sack) {
    c.cwnd = c.ssthresh;
    c.high_rxt = c.snd_una;
    c.snd_nxt = c.snd_max;  // holes are resent as the scoreboard shows them lost
    return;                 // write_xmit() runs the recovery
  }
  const uint32_t length = std::min<uint32_t>(
      send_mss(c), static_cast<uint32_t>(std::max<int32_t>(c.buffered_end() - c.snd_una, 0)));
  const bool fin = c.write_shutdown && c.snd_una + length == c.buffered_end();
  transmit(c, c.snd_una, kAck | (fin ? kFin : 0), length, now);
  c.cwnd = c.ssthresh + 3u * c.mss;
}

// Steps 7 and 8 of RFC 9293 §3.10.7.4. Linux: tcp_data_queue(), tcp_fin()
void Tcp::process_data(Connection& c, TcpSegment seg, Instant now) {
  const bool may_receive = c.state == TcpState::Established || c.state == TcpState::FinWait1 ||
                           c.state == TcpState::FinWait2;
  bool fin = seg.has(kFin);
  if (!may_receive || (seg.payload.empty() && !fin)) return;
  Seq seq = seg.seq;
  ByteView data = seg.payload;
  if (seq < c.rcv_nxt && !data.empty()) note_duplicate(c, seg);
  if (seq < c.rcv_nxt) {
    // Trim what we already have.
    const uint32_t old = static_cast<uint32_t>(c.rcv_nxt - seq);
    if (old > data.size()) {
      fin = false;
      data = {};
    } else {
      data = data.subspan(old);
    }
    seq = c.rcv_nxt;
  }
  if (c.read_shutdown && (c.state == TcpState::FinWait1 || c.state == TcpState::FinWait2) &&
      !data.empty()) {
    // Nobody will read it: tell the peer its data is lost. Linux: TCPAbortOnData
    ctx_.drop(DropReason::TcpDataAfterClose);
    send_reset(c, now);
    return connection_failed(c, 0);
  }
  // Trim what lies beyond the window we offered.
  const int32_t room = c.rcv_adv - seq;
  if (room < static_cast<int32_t>(data.size())) {
    ctx_.drop(c.rcv_adv == c.rcv_nxt ? DropReason::TcpZeroWindow : DropReason::TcpReceiveQueueFull);
    data = data.first(static_cast<size_t>(std::max(room, 0)));
    fin = false;
    c.ack_now = true;
  }
  if (data.empty() && !fin) return;
  if (seq != c.rcv_nxt) {
    ctx_.counters.add(Counter::TcpExtTCPOFOQueue);
    ctx_.trace.step("out of order by {} bytes: queued, duplicate ACK", seq - c.rcv_nxt);
    queue_out_of_order(c, seq, data, fin);
    c.ack_now = true;
    return;
  }
  const size_t taken = c.receive_buffer.append(data);
  c.rcv_nxt += static_cast<uint32_t>(taken);
  if (taken < data.size()) {
    ctx_.drop(DropReason::TcpReceiveQueueFull);
    fin = false;
  }
  // Full-sized is what the peer's segments carry at most, options taken out, which is less
  // than its MSS. Linux: tcp_measure_rcv_mss()
  c.rcv_mss = std::clamp<uint32_t>(static_cast<uint32_t>(data.size()), c.rcv_mss, c.mss);
  // With a FIN here, what is queued lies beyond the end of the stream: fin_received() drops it.
  if (c.out_of_order && !fin) {
    fin = drain_out_of_order(c);
    c.ack_now = true;  // a hole filled: tell the sender at once (RFC 5681 §4.2)
  }
  ctx_.trace.step("{} bytes in order, rcv_nxt={}", taken, c.rcv_nxt.value());
  if (fin) fin_received(c, now);
  // The delayed-ACK timer; ack_check() sends the ACK sooner when enough data came.
  if (!c.ack_now && c.delayed_ack_at.is_never()) c.delayed_ack_at = now + config_.delayed_ack;
}

void Tcp::queue_out_of_order(Connection& c, Seq seq, ByteView data, bool fin) {
  if (c.out_of_order_bytes() + data.size() > config_.max_out_of_order_bytes) {
    // Still the latest to arrive: the SACK blocks of what is queued follow it.
    if (c.out_of_order) c.out_of_order->latest = seq;
    return ctx_.drop(DropReason::TcpOfoQueueFull);
  }
  if (!c.out_of_order) c.out_of_order = std::make_unique<OutOfOrderQueue>();
  OutOfOrderQueue& ofo = *c.out_of_order;
  ofo.latest = seq;
  // Merge with every queued segment it overlaps or touches, so the queue stays disjoint.
  Seq begin = seq;
  Seq end = seq + static_cast<uint32_t>(data.size());
  auto& queue = ofo.segments;
  auto first =
      std::find_if(queue.begin(), queue.end(), [&](const auto& s) { return s.end() >= begin; });
  auto last = first;
  while (last != queue.end() && last->seq <= end) ++last;
  if (first != last) {
    begin = seq_min(begin, first->seq);
    end = seq_max(end, (last - 1)->end());
  }
  OutOfOrderSegment merged{begin, std::vector<uint8_t>(static_cast<uint32_t>(end - begin)), fin};
  for (auto it = first; it != last; ++it) {
    std::copy(it->data.begin(), it->data.end(), merged.data.begin() + (it->seq - begin));
    merged.fin = merged.fin || (it->fin && it->end() == end);
    ofo.bytes -= it->data.size();
  }
  std::copy(data.begin(), data.end(), merged.data.begin() + (seq - begin));
  ofo.bytes += merged.data.size();
  const auto at = queue.erase(first, last);
  queue.insert(at, std::move(merged));
}

// Moves queued segments that now continue the stream into the receive buffer; true when
// that reached a queued FIN. An emptied queue is freed.
bool Tcp::drain_out_of_order(Connection& c) {
  auto& queue = c.out_of_order->segments;
  bool fin = false;
  while (!fin && !queue.empty() && queue.front().seq <= c.rcv_nxt) {
    OutOfOrderSegment& s = queue.front();
    if (s.end() > c.rcv_nxt) {
      const size_t skip = static_cast<uint32_t>(c.rcv_nxt - s.seq);
      const size_t taken = c.receive_buffer.append(ByteView(s.data).subspan(skip));
      c.rcv_nxt += static_cast<uint32_t>(taken);
      if (skip + taken < s.data.size()) return false;  // no room: keep the rest queued
    }
    fin = s.fin;
    c.out_of_order->bytes -= s.data.size();
    queue.erase(queue.begin());
  }
  if (queue.empty()) c.out_of_order.reset();
  return fin;
}

// Linux: tcp_fin()
void Tcp::fin_received(Connection& c, Instant now) {
  c.rcv_nxt += 1;
  c.fin_received = true;
  c.ack_now = true;
  // Nothing comes after the FIN: data queued beyond it is no part of the stream (found by
  // fuzzing: a FIN queued out of order past the real one stayed, and its bytes with it).
  c.out_of_order.reset();
  switch (c.state) {
    case TcpState::Established:
      set_state(c, TcpState::CloseWait, "FIN");
      break;
    case TcpState::FinWait1:
      set_state(c, TcpState::Closing, "FIN before our FIN was acknowledged");
      break;
    case TcpState::FinWait2:
      enter_time_wait(c, now, "FIN");
      break;
    default:
      break;
  }
}

// RFC 6928: IW = min(10·MSS, max(2·MSS, 14600)), for any number of segments configured.
// Linux: tcp_init_cwnd()
uint32_t Tcp::initial_window(const Connection& c) const {
  const uint32_t segments = std::max<uint32_t>(config_.initial_window_segments, 1);
  return std::min(segments * c.mss, std::max(2u * c.mss, segments * 1460u));
}

void Tcp::established(Connection& c, Instant now) {
  set_state(c, TcpState::Established);
  c.was_established = true;
  c.retries = 0;
  c.retransmit_at = Instant::never();
  c.cwnd = initial_window(c);
  if (c.options.keepalive) c.keepalive_at = now + c.options.keepalive_idle;
  if (c.listener) {
    if (const auto it = connections_.find(*c.listener); it != connections_.end()) {
      Connection& l = *it->second;
      if (c.in_syn_queue) --l.listen->half_open;
      c.in_syn_queue = false;
      l.listen->accept_queue.push_back(c.id);
      c.in_accept_queue = true;
    }
  }
}

// RFC 6298 §2.
void Tcp::update_rtt(Connection& c, Duration sample) {
  if (!c.have_rtt) {
    c.srtt = sample;
    c.rttvar = sample / 2;
    c.have_rtt = true;
  } else {
    const Duration delta = c.srtt > sample ? c.srtt - sample : sample - c.srtt;
    c.rttvar = (c.rttvar * 3 + delta) / 4;
    c.srtt = (c.srtt * 7 + sample) / 8;
  }
  // Linux's floor: RTO never below SRTT + tcp_rto_min.
  c.rto = std::min(c.srtt + std::max(c.rttvar * 4, config_.min_rto), config_.max_rto);
}

// RFC 5961 §7: at most a fixed number of challenge ACKs per second. Linux: tcp_send_challenge_ack()
void Tcp::challenge_ack(Connection& c, Instant now) {
  constexpr uint32_t kPerSecond = 1000;
  if (now - challenge_window_start_ >= Duration::seconds(1)) {
    challenge_window_start_ = now;
    challenge_acks_in_window_ = 0;
  }
  if (++challenge_acks_in_window_ > kPerSecond) return;
  ctx_.counters.add(Counter::TcpExtTCPChallengeACK);
  send_ack(c, now);
}

// The connection is over: tell the application why (0: a normal close), release what it holds.
// Linux: tcp_done()
void Tcp::connection_failed(Connection& c, int error) {
  if (c.state == TcpState::SynSent || c.state == TcpState::SynReceived) {
    ctx_.counters.add(Counter::TcpAttemptFails);
  }
  // Destroyed in the state it failed in: a SYN-RECEIVED child leaves its listener's half-open
  // count (found by fuzzing: SYN-ACKs never answered leaked it until the listener refused all).
  if (c.user_closed || (c.listener && !c.in_accept_queue)) return destroy(c);
  c.error = error;
  set_state(c, TcpState::Closed);
  c.retransmit_at = c.delayed_ack_at = c.keepalive_at = c.state_timer_at = Instant::never();
  c.persist = false;
  const auto it = flows_.find(c.flow());
  if (it != flows_.end() && it->second == c.id) flows_.erase(it);
  touch(c);  // its timers are all off now
}

}  // namespace tapstack
