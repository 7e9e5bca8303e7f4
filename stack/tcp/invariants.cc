// What must hold between the TCP layer's variables after every call into it (RFC 9293 §3.3.1
// for the sequence variables). Compiled in every build so that it cannot rot, called only by
// the fuzz harness (tests/fuzz/world.cc) after each step: the receive-path target turns every
// sentence returned here into a crash report.
#include <algorithm>

#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

bool one_of(TcpState state, std::initializer_list<TcpState> states) {
  return std::find(states.begin(), states.end(), state) != states.end();
}

// Sends, windows and queues of one connection that has an ISS (not LISTEN, not CLOSED).
void check_sequence_space(const Connection& c, size_t max_out_of_order,
                          std::vector<std::string>& out) {
  const auto bad = [&](std::string what) {
    out.push_back(fmt::format("socket {} in {}: {}", c.id, tcp_state_name(c.state), what));
  };
  if (!(c.snd_una <= c.snd_nxt && c.snd_nxt <= c.snd_max)) {
    bad(fmt::format("snd_una {} snd_nxt {} snd_max {} out of order", c.snd_una.value(),
                    c.snd_nxt.value(), c.snd_max.value()));
  }
  // The send buffer starts at snd_una, but one after it while the SYN is unacknowledged; once
  // our FIN is acknowledged snd_una is one past the (empty) buffer.
  const int32_t lead = c.snd_una - c.send_buffer_seq;
  const bool syn_unacked = lead == -1 && c.snd_una == c.iss;
  const bool fin_acked = lead == 1 && c.write_shutdown && c.send_buffer.empty();
  if (lead != 0 && !syn_unacked && !fin_acked) {
    bad(fmt::format("snd_una {} but the send buffer starts at {}", c.snd_una.value(),
                    c.send_buffer_seq.value()));
  }
  if (c.snd_max > c.buffered_end() + 1) {
    bad(fmt::format("snd_max {} beyond the buffered data and a FIN ({})", c.snd_max.value(),
                    c.buffered_end().value()));
  }
  if (c.synchronized() && c.rcv_nxt > c.rcv_adv + (c.fin_received ? 1 : 0)) {
    bad(fmt::format("rcv_nxt {} beyond the advertised edge {}", c.rcv_nxt.value(),
                    c.rcv_adv.value()));
  }
  size_t queued = 0;
  const auto queue = c.out_of_order_segments();
  if (c.out_of_order && queue.empty()) bad("out-of-order queue kept while empty");
  for (size_t i = 0; i < queue.size(); ++i) {
    const OutOfOrderSegment& s = queue[i];
    queued += s.data.size();
    // Touching segments are merged, so there is a gap between any two.
    if (i > 0 && !(queue[i - 1].end() < s.seq)) bad("out-of-order queue not disjoint");
    // Only the first may reach back to rcv_nxt: its rest when the receive buffer filled.
    if (!(s.end() > c.rcv_nxt) || (i > 0 && !(s.seq > c.rcv_nxt))) {
      bad(fmt::format("out-of-order data at {} not beyond rcv_nxt {}", s.seq.value(),
                      c.rcv_nxt.value()));
    }
  }
  if (queued != c.out_of_order_bytes() || queued > max_out_of_order) {
    bad(fmt::format("out-of-order queue holds {} bytes, counted {}, limit {}", queued,
                    c.out_of_order_bytes(), max_out_of_order));
  }
  const auto board = c.sacked();
  if (c.scoreboard && board.empty()) bad("SACK scoreboard kept while empty");
  for (size_t i = 0; i < board.size(); ++i) {
    const SackBlock& b = board[i];
    const bool inside = c.snd_una <= b.left && b.left < b.right && b.right <= c.snd_max;
    if (!inside || (i > 0 && !(board[i - 1].right < b.left))) {
      bad("SACK scoreboard not sorted, disjoint and within [snd_una, snd_max]");
    }
  }
  if (c.in_recovery && c.recover > c.snd_max) bad("recovery point beyond snd_max");
  // Anything in flight is retransmitted or probed in time (RFC 6298 §5.1).
  if (c.in_flight() > 0 && !one_of(c.state, {TcpState::TimeWait}) && c.retransmit_at.is_never()) {
    bad(fmt::format("{} bytes in flight and no retransmission timer", c.in_flight()));
  }
}

}  // namespace

// Linux has no one such function; its nearest kin are the WARN_ON()s spread through
// tcp_input.c (e.g. in tcp_fastretrans_alert()) and tcp_verify_left_out().
std::vector<std::string> Tcp::check_invariants() const {
  std::vector<std::string> out;
  size_t scheduled = 0;
  for (const auto& [id, owned] : connections_) {
    const Connection& c = *owned;
    if (c.id != id) out.push_back(fmt::format("socket {} filed under {}", c.id, id));
    if (c.scheduled != Instant::never()) {
      ++scheduled;
      if (!timers_.contains({c.scheduled, c.id})) {
        out.push_back(fmt::format("socket {}: its timer is not in the timer set", id));
      }
    }
    // A timer armed earlier than the set says would fire late.
    if (c.next_deadline() < c.scheduled) {
      out.push_back(fmt::format("socket {}: a timer due at {} ns is scheduled at {} ns", id,
                                c.next_deadline().ns(), c.scheduled.ns()));
    }
    if (c.passive && c.state == TcpState::SynSent) {
      out.push_back(fmt::format("passive socket {} in SYN-SENT", id));
    }
    if (c.state == TcpState::Listen) {
      const SocketId listener = c.id;  // clang 14 cannot capture a structured binding
      const auto children =
          std::count_if(connections_.begin(), connections_.end(), [&](const auto& e) {
            return e.second->listener == listener && e.second->state == TcpState::SynReceived;
          });
      if (static_cast<size_t>(children) != c.listen->half_open) {
        out.push_back(fmt::format("listener {}: half_open {} but {} children in SYN-RECEIVED", id,
                                  c.listen->half_open, children));
      }
      for (const SocketId child : c.listen->accept_queue) {
        const Connection* a = connections_.contains(child) ? connections_.at(child).get() : nullptr;
        if (!a || a->listener != id || !a->in_accept_queue ||
            one_of(a->state, {TcpState::SynSent, TcpState::SynReceived})) {
          out.push_back(fmt::format("listener {}: socket {} in its accept queue", id, child));
        }
      }
    } else if (c.state != TcpState::Closed) {
      check_sequence_space(c, config_.max_out_of_order_bytes, out);
    }
  }
  if (scheduled != timers_.size()) {
    out.push_back(
        fmt::format("{} timers in the set, {} sockets scheduled", timers_.size(), scheduled));
  }
  for (const auto& [key, id] : flows_) {
    const Connection* c = connections_.contains(id) ? connections_.at(id).get() : nullptr;
    if (!c || !(c->flow() == key) || one_of(c->state, {TcpState::Listen, TcpState::Closed})) {
      out.push_back(fmt::format("flow {} → :{} names socket {}, not live on it",
                                Endpoint{key.remote_address, key.remote_port}, key.local_port,
                                id));
    }
  }
  for (const auto& [port, id] : listeners_) {
    const Connection* c = connections_.contains(id) ? connections_.at(id).get() : nullptr;
    if (!c || c->state != TcpState::Listen || c->local_port != port) {
      out.push_back(fmt::format("listener on :{} names socket {}, not listening there", port, id));
    }
  }
  return out;
}

}  // namespace tapstack
