// TCP timers: retransmission (RFC 6298 §5), zero-window probes (RFC 9293 §3.8.6.1),
// delayed ACK, keepalive (RFC 1122 §4.2.3.6), TIME-WAIT and FIN-WAIT-2.
#include <algorithm>
#include <cerrno>

#include "stack/tcp/tcp.h"

namespace tapstack {

// Each connection whose time has come is an event of its own, rescheduled at its end, so
// that a timer it set for now runs in this same call.
void Tcp::on_timer(Instant now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Event event(*this);
    const SocketId id = timers_.begin()->second;
    timers_.erase(timers_.begin());
    Connection& c = touch(*connections_.at(id));
    c.scheduled = Instant::never();
    if (c.delayed_ack_at <= now) {
      ctx_.counters.add(Counter::TcpExtDelayedACKs);
      ctx_.trace.begin("timer: delayed ACK for socket {}", id);
      send_ack(c, now);
    }
    if (c.retransmit_at <= now) {
      c.retransmit_at = Instant::never();
      ctx_.trace.begin("timer: {} for socket {}",
                       c.persist ? "zero-window probe" : "retransmission", id);
      if (c.persist) {
        persist_timeout(c, now);
      } else {
        retransmit_timeout(c, now);
      }
    }
    if (!c.destroyed && c.keepalive_at <= now) {
      ctx_.trace.begin("timer: keepalive for socket {}", id);
      keepalive_timeout(c, now);
    }
    if (!c.destroyed && c.state_timer_at <= now) {
      ctx_.trace.begin("timer: {} over for socket {}", tcp_state_name(c.state), id);
      state_timeout(c, now);
    }
    if (!c.destroyed && c.trim_at <= now) {
      c.trim_at = Instant::never();
      freed_buffer_bytes_ += c.send_buffer.trim() + c.receive_buffer.trim();
    }
  }
}

// An emptied socket buffer keeps its memory for kBufferTrimDelay, for the next burst of the
// same flow; then the timer gives it back. Linux reclaims socket memory in the same spirit
// (sk_mem_reclaim() keeps what the socket may soon need; tcp_collapse() and the memory
// pressure machinery take it back).
void Tcp::buffers_drained(Connection& c, Instant now) {
  if (!c.trim_at.is_never()) return;
  if (c.send_buffer.trimmable() || c.receive_buffer.trimmable()) {
    c.trim_at = now + kBufferTrimDelay;
  }
}

void Tcp::host_unreachable(const IpAddress& remote) {
  Event event(*this);
  std::vector<Connection*> failing;
  for (const auto& [id, c] : connections_) {
    if (c->state == TcpState::SynSent && c->remote_address == remote) failing.push_back(c.get());
  }
  for (Connection* c : failing) {
    ctx_.trace.begin("neighbour {} never answered: socket {} fails", remote, c->id);
    connection_failed(touch(*c), EHOSTUNREACH);
  }
}

void Tcp::path_mtu_reduced(const IpAddress& remote, uint32_t mtu, Instant now) {
  Event event(*this);
  // Never below IPv6's minimum link MTU less the headers, nor below tcp_min_snd_mss.
  const uint32_t floor = std::max<uint32_t>(mtu, 1280);
  for (const auto& [id, owned] : connections_) {
    Connection& c = *owned;
    if (c.remote_address != remote || c.state == TcpState::Listen) continue;
    const auto mss = static_cast<uint16_t>(
        std::max<uint32_t>(floor - ip_header_size(remote.family()) - 20, 48));
    if (mss >= c.mss) continue;
    ctx_.trace.begin("path mtu to {} is {}: socket {} mss {} → {}", remote, mtu, c.id, c.mss,
                     mss);
    c.mss = mss;
    c.advmss = std::min(c.advmss, mss);
    touch(c);
    // What is in flight went out in segments the path cannot carry: send it again now in
    // smaller ones, without treating it as congestion (Linux: tcp_simple_retransmit()).
    if (c.in_flight() > 0 && c.state != TcpState::SynSent && c.state != TcpState::SynReceived) {
      c.snd_nxt = c.snd_una;
      c.timed_seq.reset();
      write_xmit(c, now);
    }
    ctx_.trace.flush();
  }
}

// Linux: tcp_retransmit_timer(), tcp_write_timeout()
void Tcp::retransmit_timeout(Connection& c, Instant now) {
  c.rto = std::min(c.rto * 2, config_.max_rto);  // back off (RFC 6298 §5.5)
  c.timed_seq.reset();
  if (c.state == TcpState::SynSent || c.state == TcpState::SynReceived) {
    const int limit = c.state == TcpState::SynSent ? config_.syn_retries : config_.synack_retries;
    if (c.retries >= limit) {
      ctx_.trace.step("no answer to SYN after {} retries", c.retries);
      return connection_failed(c, ETIMEDOUT);
    }
    ++c.retries;
    ctx_.counters.add(Counter::TcpExtTCPSynRetrans);
    return send_syn(c, now);
  }
  if (c.retries == 0) c.first_retransmit_at = now;
  const bool user_timeout = c.options.user_timeout > Duration::zero() &&
                            now - c.first_retransmit_at >= c.options.user_timeout;
  if (c.retries >= config_.retries2 || user_timeout) {
    ctx_.trace.step("giving up after {} retransmissions", c.retries);
    ctx_.counters.add(Counter::TcpExtTCPAbortOnTimeout);
    return connection_failed(c, ETIMEDOUT);
  }
  ++c.retries;
  ctx_.counters.add(Counter::TcpExtTCPTimeouts);
  // RFC 5681 §3.1: the loss window is one segment; resend from the oldest unacknowledged.
  c.ssthresh = congestion_ssthresh_after_loss(c);
  c.cwnd = c.mss;
  c.bytes_acked = 0;
  c.dup_acks = 0;
  c.in_recovery = false;
  c.snd_nxt = c.snd_una;
  write_xmit(c, now);
  if (c.in_flight() > 0) arm_retransmit(c, now);
}

// Linux: tcp_probe_timer()
void Tcp::persist_timeout(Connection& c, Instant now) {
  c.persist = false;
  if (c.snd_wnd > 0) {
    // The window is open but too small for silly-window avoidance: send into it anyway.
    c.sws_override = true;
    write_xmit(c, now);
    c.sws_override = false;
    return;
  }
  if (c.probes >= config_.retries2) {
    ctx_.counters.add(Counter::TcpExtTCPAbortOnTimeout);
    return connection_failed(c, ETIMEDOUT);
  }
  ++c.probes;
  ++c.persist_backoff;
  ctx_.counters.add(Counter::TcpExtTCPWinProbe);
  send_probe(c, now);
  c.persist = true;
  Duration backoff = c.rto;
  for (int i = 0; i < c.persist_backoff && backoff < config_.max_rto; ++i) backoff = backoff * 2;
  c.retransmit_at = now + std::min(backoff, config_.max_rto);
}

// Linux: tcp_keepalive_timer()
void Tcp::keepalive_timeout(Connection& c, Instant now) {
  c.keepalive_at = Instant::never();
  if (!c.options.keepalive ||
      (c.state != TcpState::Established && c.state != TcpState::CloseWait)) {
    return;
  }
  const Instant idle_until = c.last_received + c.options.keepalive_idle;
  if (c.keepalive_probes == 0 && idle_until > now) {
    c.keepalive_at = idle_until;
    return;
  }
  if (c.keepalive_probes >= c.options.keepalive_probes) {
    ctx_.counters.add(Counter::TcpExtTCPAbortOnTimeout);
    send_reset(c, now);
    return connection_failed(c, ETIMEDOUT);
  }
  ++c.keepalive_probes;
  ctx_.counters.add(Counter::TcpExtTCPKeepAlive);
  send_probe(c, now);
  c.keepalive_at = now + c.options.keepalive_interval;
}

void Tcp::state_timeout(Connection& c, Instant now) {
  (void)now;
  if (c.state == TcpState::TimeWait) ctx_.counters.add(Counter::TcpExtTW);
  connection_failed(c, 0);
}

void Tcp::enter_time_wait(Connection& c, Instant now, std::string_view cause) {
  set_state(c, TcpState::TimeWait, cause);
  c.retransmit_at = c.keepalive_at = Instant::never();
  c.persist = false;
  c.state_timer_at = now + config_.msl * 2;
}

}  // namespace tapstack
