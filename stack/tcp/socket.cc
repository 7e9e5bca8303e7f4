// The socket API of the TCP layer, connection lifetime, timers' bookkeeping, ISNs and ports.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "md5opt/verdict.h"
#include "stack/tcp/tcp.h"

namespace tapstack {

// SipHash-2-4 (Aumasson and Bernstein, public domain) of one 64-bit word: the keyed hash
// behind initial sequence numbers (RFC 6528 §3 asks for a PRF of the 4-tuple and a secret).
uint64_t siphash_word(const uint64_t key[2], uint64_t message) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const uint64_t final_block = uint64_t{8} << 56;
  v3 ^= message;
  round();
  round();
  v0 ^= message;
  v3 ^= final_block;
  round();
  round();
  v0 ^= final_block;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

namespace {

constexpr uint16_t kEphemeralFirst = 32768;  // Linux: ip_local_port_range
constexpr uint16_t kEphemeralLast = 60999;

}  // namespace

std::string_view tcp_state_name(TcpState state) {
  static constexpr std::string_view kNames[] = {
      "CLOSED",     "LISTEN",     "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
      "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",  "LAST-ACK",     "TIME-WAIT"};
  return kNames[static_cast<size_t>(state)];
}

Tcp::Tcp(TcpContext context, const TcpConfig& config)
    : ctx_(context), config_(config), segment_buffer_(max_ip_payload(IpFamily::Ipv6)) {
  isn_secret_[0] = ctx_.random.next_u64();
  isn_secret_[1] = ctx_.random.next_u64();
  cookie_secret_[0] = ctx_.random.next_u64();
  cookie_secret_[1] = ctx_.random.next_u64();
  next_ephemeral_ = static_cast<uint16_t>(kEphemeralFirst +
                                          ctx_.random.below(kEphemeralLast - kEphemeralFirst + 1));
}

Tcp::~Tcp() = default;

Connection* Tcp::find(SocketId id) const {
  const auto it = connections_.find(id);
  return it == connections_.end() || it->second->user_closed ? nullptr : it->second.get();
}

Result<Connection*> Tcp::find_or_error(SocketId id) const {
  Connection* c = find(id);
  if (!c) return Error{EBADF, fmt::format("socket {} does not exist", id)};
  return c;
}

Connection& Tcp::create(TcpState state, Instant now) {
  auto c = std::make_unique<Connection>();
  c->id = next_id_++;
  c->state = state;
  c->options = config_.defaults;
  c->last_received = now;
  Connection& ref = *c;
  connections_.emplace(ref.id, std::move(c));
  return touch(ref);
}

// Unlinked from every table at once, so that nothing finds it; freed when the event ends.
// Linux: inet_csk_destroy_sock() from tcp_done()
void Tcp::destroy(Connection& c) {
  if (c.scheduled != Instant::never()) timers_.erase({c.scheduled, c.id});
  if (c.listener) {
    if (const auto it = connections_.find(*c.listener); it != connections_.end()) {
      Connection& l = *it->second;
      if (c.in_syn_queue) --l.listen->half_open;
      if (c.in_accept_queue) std::erase(l.listen->accept_queue, c.id);
    }
  }
  freed_buffer_bytes_ +=
      c.send_buffer.allocated() + c.receive_buffer.allocated() + c.out_of_order_bytes();
  if (c.state == TcpState::Listen) {
    listeners_.erase(c.local_port);
  } else if (c.remote_port != 0) {
    const auto it = flows_.find(c.flow());
    if (it != flows_.end() && it->second == c.id) flows_.erase(it);
  }
  set_state(c, TcpState::Closed);
  c.destroyed = true;
  const auto it = connections_.find(c.id);
  destroyed_.push_back(std::move(it->second));
  connections_.erase(it);
}

// The end of the outermost Event. The connections destroyed in it are freed last: touched_ may
// point to them.
void Tcp::end_event() {
  for (Connection* c : touched_) {
    if (!c->destroyed) reschedule(*c);
  }
  touched_.clear();
  if (!destroyed_.empty()) destroyed_.clear();
  if (ctx_.trace.enabled()) ctx_.trace.flush();
}

// One trace step for each change, "cause: OLD → NEW" (the cause when the caller gives one),
// and the counter Linux keeps here: TcpEstabResets for ESTABLISHED or CLOSE-WAIT straight to
// CLOSED, whatever ended it (a reset either way, a timeout, an abort). Linux also keeps the
// CurrEstab gauge here, which we do not have.
// Linux: tcp_set_state()
void Tcp::set_state(Connection& c, TcpState state, std::string_view cause) {
  if (c.state == state) return;
  ctx_.trace.step("{}{}{} → {}", cause, cause.empty() ? "" : ": ", tcp_state_name(c.state),
                  tcp_state_name(state));
  if (state == TcpState::Closed &&
      (c.state == TcpState::Established || c.state == TcpState::CloseWait)) {
    ctx_.counters.add(Counter::TcpEstabResets);
  }
  c.state = state;
}

// Keeps the stack-wide timer set in step with the connection's earliest timer.
void Tcp::reschedule(Connection& c) {
  const Instant next = c.next_deadline();
  if (next == c.scheduled) return;
  if (c.scheduled != Instant::never()) timers_.erase({c.scheduled, c.id});
  if (next != Instant::never()) timers_.insert({next, c.id});
  c.scheduled = next;
}

Instant Tcp::next_deadline() const {
  return timers_.empty() ? Instant::never() : timers_.begin()->first;
}

// RFC 6528: ISN = M + F(4-tuple, secret), M a clock ticking every 4 µs.
// Linux: secure_tcp_seq()
Seq Tcp::initial_sequence(const FlowKey& flow, Instant now) const {
  const uint32_t clock = static_cast<uint32_t>(now.ns() / 4000);
  return Seq(static_cast<uint32_t>(flow_hash(isn_secret_, flow)) + clock);
}

// The ports and the family in one word, then the addresses eight bytes at a time, each step
// a SipHash of what came before and the next word.
uint64_t Tcp::flow_hash(const uint64_t key[2], const FlowKey& flow) {
  uint64_t hash = siphash_word(key, uint64_t{flow.remote_port} << 16 | flow.local_port |
                                        uint64_t{flow.remote_address.is_ipv4()} << 32);
  const ByteView remote = flow.remote_address.bytes();
  const ByteView local = flow.local_address.bytes();
  if (flow.remote_address.is_ipv4() && flow.local_address.is_ipv4()) {
    return siphash_word(
        key, hash ^ (uint64_t{load_be32(remote.data())} << 32 | load_be32(local.data())));
  }
  for (const ByteView address : {remote, local}) {
    for (size_t i = 0; i + 8 <= address.size(); i += 8) {
      hash = siphash_word(key, hash ^ (uint64_t{load_be32(address.data() + i)} << 32 |
                                       load_be32(address.data() + i + 4)));
    }
    if (address.size() % 8 != 0) hash = siphash_word(key, hash ^ load_be32(address.data()));
  }
  return hash;
}

uint16_t Tcp::route_mss(const IpAddress& remote) const {
  const auto route = ctx_.ip.route(remote);
  return route ? advertised_mss(*route) : 536;  // RFC 9293 §3.7.1's default
}

// Linux: __inet_hash_connect() — a port from the range, starting at a random offset.
Result<uint16_t> Tcp::ephemeral_port(const IpAddress& remote, const IpAddress& local,
                                     uint16_t port) {
  constexpr uint32_t range = kEphemeralLast - kEphemeralFirst + 1;
  for (uint32_t i = 0; i < range; ++i) {
    const uint16_t candidate = next_ephemeral_;
    next_ephemeral_ = next_ephemeral_ == kEphemeralLast ? kEphemeralFirst : next_ephemeral_ + 1;
    if (listeners_.contains(candidate)) continue;
    if (!flows_.contains(FlowKey{remote, local, port, candidate})) return candidate;
  }
  return Error{EADDRNOTAVAIL, "no free local port for this destination"};
}

void Tcp::init_connection(Connection& c, Instant now) {
  c.send_buffer.set_limit(c.options.send_buffer);
  c.receive_buffer.set_limit(c.options.receive_buffer);
  c.congestion = c.options.cubic ? CongestionAlgorithm::Cubic : CongestionAlgorithm::NewReno;
  c.rto = config_.initial_rto;
  c.iss = initial_sequence(c.flow(), now);
  c.snd_una = c.iss;
  c.snd_nxt = c.iss;
  c.snd_max = c.iss;
  c.send_buffer_seq = c.iss + 1;
  // Our window-scale shift: the smallest that lets the field say the whole buffer (RFC 7323
  // §2.3, at most 14). Linux: tcp_select_initial_window()
  while (c.rcv_wscale < 14 && (c.receive_buffer.limit() >> c.rcv_wscale) > 65535) ++c.rcv_wscale;
  c.ts_offset = ctx_.random.next_u32();
  c.advmss = route_mss(c.remote_address);
  c.mss = std::min<uint16_t>(536, c.advmss);
  c.cwnd = 0;
}

Result<SocketId> Tcp::listen(uint16_t port, int backlog) {
  Event event(*this);
  if (port == 0) return Error{EINVAL, "listen needs a port from 1 to 65535"};
  if (listeners_.contains(port)) {
    return Error{EADDRINUSE, fmt::format("port {} already has a listener", port)};
  }
  Connection& c = create(TcpState::Listen, Instant{});
  c.local_port = port;
  c.listen = std::make_unique<ListenerState>();
  c.listen->backlog = std::clamp(backlog, 1, 65535);
  listeners_.emplace(port, c.id);
  return c.id;
}

Result<SocketId> Tcp::accept(SocketId id) {
  Event event(*this);
  auto listener = find_or_error(id);
  if (!listener) return listener.error();
  Connection& l = **listener;
  if (l.state != TcpState::Listen) return Error{EINVAL, "accept on a socket that is not listening"};
  if (l.listen->accept_queue.empty()) return Error{EAGAIN, "no connection waiting"};
  const SocketId child = l.listen->accept_queue.front();
  l.listen->accept_queue.pop_front();
  Connection* c = find(child);
  c->listener.reset();
  c->in_accept_queue = false;
  return child;
}

Result<SocketId> Tcp::open() {
  Event event(*this);
  if (connections_.size() >= config_.max_connections) return Error{EMFILE, "too many connections"};
  return create(TcpState::Closed, Instant{}).id;
}

Result<SocketId> Tcp::connect(const IpAddress& remote, uint16_t port, Instant now,
                              uint16_t local_port) {
  Event event(*this);
  auto id = open();
  if (!id) return id;
  if (auto status = connect(*id, remote, port, now, local_port); !status) {
    destroy(*connections_.at(*id));
    return status.error();
  }
  return id;
}

Status Tcp::connect(SocketId id, const IpAddress& remote, uint16_t port, Instant now,
                    uint16_t local_port) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = touch(**found);
  if (c.state != TcpState::Closed || c.was_established || c.error != 0) {
    return Error{EISCONN, "connect on a socket that is not fresh"};
  }
  if (port == 0) return Error{EINVAL, "connect needs a port from 1 to 65535"};
  const auto route = ctx_.ip.route(remote);
  if (!route) return route.error();
  if (local_port == 0) {
    auto chosen = ephemeral_port(remote, route->source, port);
    if (!chosen) return chosen.error();
    local_port = *chosen;
  } else if (flows_.contains(FlowKey{remote, route->source, port, local_port})) {
    return Error{EADDRINUSE, "that connection already exists"};
  }
  ctx_.trace.begin("connect {} > {}", Endpoint{route->source, local_port}, Endpoint{remote, port});
  set_state(c, TcpState::SynSent);
  c.last_received = now;
  c.remote_address = remote;
  c.local_address = route->source;
  c.remote_port = port;
  c.local_port = local_port;
  init_connection(c, now);
  flows_.emplace(c.flow(), c.id);
  ctx_.counters.add(Counter::TcpActiveOpens);
  send_syn(c, now);
  return Ok{};
}

Result<size_t> Tcp::send(SocketId id, ByteView data, Instant now) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = touch(**found);
  if (auto error = take_pending_error(c)) return *error;
  if (c.write_shutdown) return Error{EPIPE, "the sending side is shut down"};
  switch (c.state) {
    case TcpState::Listen:
    case TcpState::Closed:
      return Error{ENOTCONN, "not connected"};
    case TcpState::SynSent:
    case TcpState::SynReceived:
    case TcpState::Established:
    case TcpState::CloseWait:
      break;
    default:
      return Error{EPIPE, "the connection is closing"};
  }
  const size_t n = c.send_buffer.append(data);
  if (n == 0 && !data.empty()) return Error{EAGAIN, "send buffer full"};
  ctx_.trace.begin("send {} bytes on socket {}", n, id);
  write_xmit(c, now);
  return n;
}

Result<size_t> Tcp::receive(SocketId id, MutableByteView buffer, Instant now) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = touch(**found);
  const size_t n = std::min(buffer.size(), c.receive_buffer.size());
  if (n > 0) {
    c.receive_buffer.copy_out(0, buffer.first(n));
    c.receive_buffer.consume(n);
    buffers_drained(c, now);
    after_read(c, now);
    return n;
  }
  if (auto error = take_pending_error(c)) return *error;
  if (c.fin_received || c.read_shutdown || c.state == TcpState::Closed) return size_t{0};
  if (c.state == TcpState::Listen) return Error{ENOTCONN, "not connected"};
  return Error{EAGAIN, "no data yet"};
}

Status Tcp::take_error(SocketId id) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  if (auto error = take_pending_error(**found)) return *error;
  return Ok{};
}

// Linux: sock_error()
std::optional<Error> Tcp::take_pending_error(Connection& c) {
  if (c.error == 0) return std::nullopt;
  const int error = std::exchange(c.error, 0);
  return Error{error, std::strerror(error)};
}

Status Tcp::shutdown(SocketId id, ShutdownHow how, Instant now) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = touch(**found);
  if (c.state == TcpState::Listen || c.state == TcpState::Closed) {
    return Error{ENOTCONN, "not connected"};
  }
  if (how != ShutdownHow::Write) c.read_shutdown = true;
  if (how != ShutdownHow::Read && !c.write_shutdown) {
    // Before the handshake completes the FIN waits with the data, as RFC 9293 §3.10.4 says
    // for SYN-RECEIVED; our sends are queued in SYN-SENT too, so the same holds there.
    c.write_shutdown = true;
    ctx_.trace.begin("shutdown: FIN after {} buffered bytes", c.send_buffer.size());
    write_xmit(c, now);
  }
  return Ok{};
}

Status Tcp::close(SocketId id, Instant now) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = touch(**found);
  ctx_.trace.begin("close socket {} in {}", id, tcp_state_name(c.state));
  c.user_closed = true;
  switch (c.state) {
    case TcpState::Listen: {
      // Connections not yet accepted go with their listener, reset.
      std::vector<SocketId> children;
      for (const auto& [other_id, other] : connections_) {
        if (other->listener == c.id) children.push_back(other_id);
      }
      for (const SocketId child : children) {
        Connection& o = *connections_.at(child);
        send_reset(o, now);
        destroy(o);
      }
      destroy(c);
      return Ok{};
    }
    case TcpState::Closed:
    case TcpState::SynSent:
      destroy(c);
      return Ok{};
    case TcpState::TimeWait:
      return Ok{};
    default:
      break;
  }
  if (!c.receive_buffer.empty()) {
    // RFC 2525 §2.17: unread data means the peer's data was lost: say so with a reset.
    ctx_.counters.add(Counter::TcpExtTCPAbortOnClose);
    send_reset(c, now);
    destroy(c);
    return Ok{};
  }
  c.read_shutdown = true;
  if (!c.write_shutdown) {
    c.write_shutdown = true;
    write_xmit(c, now);
  }
  if (c.state == TcpState::FinWait2) c.state_timer_at = now + config_.fin_wait2_timeout;
  return Ok{};
}

Status Tcp::abort(SocketId id, Instant now) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = **found;
  ctx_.trace.begin("abort socket {} in {}", id, tcp_state_name(c.state));
  if (c.state == TcpState::Listen) return close(id, now);
  if (c.synchronized() && c.state != TcpState::TimeWait) send_reset(c, now);
  destroy(c);
  return Ok{};
}

uint32_t Tcp::events(SocketId id) const {
  const Connection* c = find(id);
  if (!c) return socket_event::kError | socket_event::kClosed;
  using namespace socket_event;
  uint32_t e = 0;
  if (c->state == TcpState::Listen) return c->listen->accept_queue.empty() ? 0 : kAcceptable;
  if (!c->receive_buffer.empty() || c->fin_received || c->error != 0 ||
      c->state == TcpState::Closed) {
    e |= kReadable;
  }
  const bool can_send = c->state == TcpState::Established || c->state == TcpState::CloseWait;
  if (can_send && !c->write_shutdown && c->send_buffer.free() > 0) e |= kWritable;
  if (c->was_established) e |= kConnected;
  if (c->fin_received) e |= kPeerClosed;
  if (c->error != 0) e |= kError;
  if (c->state == TcpState::Closed || c->state == TcpState::TimeWait) e |= kClosed;
  return e;
}

Result<TcpInfo> Tcp::info(SocketId id) const {
  auto found = find_or_error(id);
  if (!found) return found.error();
  const Connection& c = **found;
  TcpInfo info;
  info.state = c.state;
  info.local_address = c.local_address;
  info.local_port = c.local_port;
  info.remote_address = c.remote_address;
  info.remote_port = c.remote_port;
  info.send_queue = static_cast<uint32_t>(c.send_buffer.size());
  info.receive_queue = static_cast<uint32_t>(c.receive_buffer.size());
  info.srtt = c.srtt;
  info.rto = c.rto;
  info.cwnd = c.cwnd;
  info.ssthresh = c.ssthresh;
  info.mss = c.mss;
  if (c.state != TcpState::Listen && c.state != TcpState::Closed && c.mss > 0) {
    info.snd_mss = static_cast<uint16_t>(send_mss(c));
  }
  info.retransmits = c.total_retransmits;
  info.unacked = static_cast<uint32_t>(c.snd_max - c.snd_una);
  for (const SackBlock& b : c.sacked()) info.sacked += static_cast<uint32_t>(b.right - b.left);
  info.in_recovery = c.in_recovery;
  if (c.in_recovery && c.sack) info.pipe = pipe(c);
  info.peer_window = c.snd_wnd;
  info.md5 = c.md5_keys != nullptr;
  info.window_scaling = c.window_scaling;
  info.snd_wscale = c.snd_wscale;
  info.rcv_wscale = c.rcv_wscale;
  info.timestamps = c.timestamps;
  info.sack = c.sack;
  return info;
}

Status Tcp::set_options(SocketId id, const SocketOptions& options) {
  Event event(*this);
  auto found = find_or_error(id);
  if (!found) return found.error();
  Connection& c = touch(**found);
  if (options.send_buffer < 4096 || options.receive_buffer < 4096) {
    return Error{EINVAL, "buffers must hold at least 4096 bytes"};
  }
  if (options.keepalive_probes < 1 || options.keepalive_idle <= Duration::zero() ||
      options.keepalive_interval <= Duration::zero()) {
    return Error{EINVAL, "keepalive timings must be positive"};
  }
  c.options = options;
  c.congestion = options.cubic ? CongestionAlgorithm::Cubic : CongestionAlgorithm::NewReno;
  c.send_buffer.set_limit(options.send_buffer);
  c.receive_buffer.set_limit(options.receive_buffer);
  if (c.state == TcpState::Established || c.state == TcpState::CloseWait) {
    c.keepalive_at =
        options.keepalive ? c.last_received + options.keepalive_idle : Instant::never();
  }
  return Ok{};
}

Result<SocketOptions> Tcp::options(SocketId id) const {
  auto found = find_or_error(id);
  if (!found) return found.error();
  return (*found)->options;
}

std::vector<SocketId> Tcp::sockets() const {
  std::vector<SocketId> ids;
  for (const auto& [id, c] : connections_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<SocketMemory> Tcp::memory(SocketId id) const {
  auto found = find_or_error(id);
  if (!found) return found.error();
  const Connection& c = **found;
  SocketMemory m;
  m.control_block = sizeof(Connection);
  m.send_buffer = c.send_buffer.allocated();
  m.receive_buffer = c.receive_buffer.allocated();
  if (c.out_of_order) {
    m.out_of_order = sizeof(OutOfOrderQueue) + c.out_of_order->bytes +
                     c.out_of_order->segments.capacity() * sizeof(OutOfOrderSegment);
  }
  if (c.scoreboard) {
    m.sack_scoreboard =
        sizeof(SackScoreboard) + c.scoreboard->blocks.capacity() * sizeof(SackBlock);
  }
  if (c.cubic) m.congestion = sizeof(CubicState);
  if (c.md5_keys) {
    m.md5_keys =
        sizeof(md5opt::KeyTable) + c.md5_keys->entries().size() * sizeof(md5opt::KeyTable::Entry);
  }
  if (c.listen) {
    m.listener = sizeof(ListenerState) + c.listen->accept_queue.size() * sizeof(SocketId);
  }
  return m;
}

size_t Tcp::buffer_memory() const {
  size_t total = 0;
  for (const auto& [id, c] : connections_) {
    total += c->send_buffer.allocated() + c->receive_buffer.allocated() + c->out_of_order_bytes();
  }
  return total;
}

}  // namespace tapstack
