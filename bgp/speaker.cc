#include "bgp/speaker.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "stack/tcp/tcp.h"

namespace tapstack::bgp {
namespace {

constexpr int kBacklog = 4;
// Prefixes per UPDATE we build: 500 /32s are 2500 bytes of NLRI, well under 4096.
constexpr size_t kPrefixesPerUpdate = 500;
// How soon to try again to send bytes the send buffer had no room for.
constexpr Duration kPollInterval = Duration::milliseconds(20);
// The longest pause before the session starts again after an error.
constexpr Duration kMaxIdleHold = Duration::seconds(5);

PeerConfig peer_config(const SpeakerConfig& config) {
  PeerConfig peer;
  peer.local_as = config.local_as;
  peer.peer_as = config.peer_as;
  peer.router_id = config.router_id.value_or(config.local_address).value;
  peer.hold_time = config.hold_time;
  peer.passive = config.passive;
  peer.connect_retry = config.connect_retry;
  peer.idle_hold = std::min(config.connect_retry, kMaxIdleHold);
  return peer;
}

}  // namespace

bool Md5Key::covers(const IpAddress& address) const {
  return peer.matches_prefix(address, prefix_length);
}

std::string Md5Key::peer_text() const {
  if (prefix_length == peer.bit_length()) return fmt::format("{}", peer);
  return fmt::format("{}/{}", peer, prefix_length);
}

std::vector<Update> announcements(const SpeakerConfig& config) {
  std::map<uint32_t, std::vector<Prefix>> by_next_hop;
  for (const Announcement& a : config.announcements) {
    by_next_hop[a.next_hop.value_or(config.local_address).value].push_back(a.prefix);
  }
  const bool external = config.local_as != config.peer_as;
  std::vector<Update> updates;
  for (const auto& [next_hop, prefixes] : by_next_hop) {
    for (size_t begin = 0; begin < prefixes.size(); begin += kPrefixesPerUpdate) {
      Update update;
      update.attributes.origin = Origin::Igp;
      // §5.1.2: to an external peer our AS leads the path; to an internal one, empty.
      update.attributes.as_path = std::vector<AsPathSegment>{};
      if (external) {
        update.attributes.as_path->push_back({AsPathSegment::AsSequence, {config.local_as}});
      } else {
        update.attributes.local_pref = 100;  // §5.1.5
      }
      update.attributes.next_hop = next_hop;
      const size_t end = std::min(prefixes.size(), begin + kPrefixesPerUpdate);
      update.nlri.assign(prefixes.begin() + static_cast<std::ptrdiff_t>(begin),
                         prefixes.begin() + static_cast<std::ptrdiff_t>(end));
      updates.push_back(std::move(update));
    }
  }
  return updates;
}

Speaker::Speaker(Tcp& tcp, SpeakerConfig config)
    : tcp_(tcp),
      config_(std::move(config)),
      fsm_(peer_config(config_)),
      signs_(std::any_of(config_.md5_keys.begin(), config_.md5_keys.end(),
                         [&](const Md5Key& key) { return key.covers(config_.peer); })) {
  fsm_.set_announcements(announcements(config_));
}

std::optional<std::string> Speaker::start(Instant now) {
  last_call_ = now;
  if (config_.passive) {
    auto listener = tcp_.listen(kBgpPort, kBacklog);
    if (!listener) return fmt::format("cannot listen on port 179: {}", listener.error().message);
    listener_ = *listener;
    if (auto failed = set_keys(listener_)) return failed;
  }
  fsm_.start(now);
  carry_out(now);
  return std::nullopt;
}

void Speaker::poll(Instant now) {
  if (failure_) return;
  last_call_ = now;
  if (listener_ != 0) accept_new(now);
  if (socket_ != 0) poll_socket(now);
  fsm_.on_timer(now);
  carry_out(now);
}

Instant Speaker::next_deadline() const {
  const Instant timer = fsm_.next_deadline();
  if (pending_.empty()) return timer;
  return std::min(timer, last_call_ + kPollInterval);
}

void Speaker::stop(Instant now) {
  last_call_ = now;
  fsm_.stop(now);
  carry_out(now);
}

void Speaker::forget_closed() {
  std::erase_if(closing_, [&](SocketId id) {
    if (tcp_.events(id) & socket_event::kClosed) return true;
    return tcp_.info(id) && tcp_.info(id)->send_queue == 0;
  });
}

std::vector<SpeakerEvent> Speaker::take_events() {
  return std::exchange(events_, {});
}

// Linux: setsockopt(TCP_MD5SIG) for each key, before connect() or on the listener.
std::optional<std::string> Speaker::set_keys(SocketId id) {
  for (const Md5Key& key : config_.md5_keys) {
    const Status set = tcp_.set_md5_key(id, key.peer, key.prefix_length, key.key);
    if (!set) {
      return fmt::format("setting the TCP-MD5 key for {}: {}", key.peer_text(),
                         set.error().message);
    }
  }
  return std::nullopt;
}

// Event 17 (the peer's connection accepted) in Active; any other connection is reset: one
// connection at a time, and only from the peer.
void Speaker::accept_new(Instant now) {
  for (;;) {
    auto accepted = tcp_.accept(listener_);
    if (!accepted) return;
    const auto info = tcp_.info(*accepted);
    const bool from_peer = info && info->remote_address == config_.peer;
    if (from_peer && socket_ == 0 && fsm_.state() == State::Active) {
      socket_ = *accepted;
      connected_ = true;
      fsm_.tcp_connected(now);
    } else {
      emit(ConnectionRefused{info ? info->remote_address : IpAddress{}, from_peer});
      tcp_.abort(*accepted, now);
    }
  }
}

// Events 16 (our connection came up), 18 (it failed or closed), and the bytes that arrived.
void Speaker::poll_socket(Instant now) {
  const uint32_t events = tcp_.events(socket_);
  if (!connected_) {
    if (events & socket_event::kConnected) {
      connected_ = true;
      fsm_.tcp_connected(now);
      carry_out(now);
    } else if (events & socket_event::kError) {
      const Status error = tcp_.take_error(socket_);
      return connect_failed(error ? Error{0, "closed"} : error.error(), now);
    } else {
      return;  // still connecting
    }
  }
  uint8_t buffer[8192];
  while (socket_ != 0) {
    auto received = tcp_.receive(socket_, MutableByteView(buffer), now);
    if (!received) {
      if (received.error().code != EAGAIN) connection_lost(received.error().message, now);
      return;
    }
    if (*received == 0) return connection_lost("the peer closed the connection", now);
    fsm_.receive(ByteView(buffer, *received), now);
    carry_out(now);
  }
}

// Our attempt failed before it was up: the FSM's ConnectFailed becomes AttemptFailed, with why.
void Speaker::connect_failed(const Error& error, Instant now) {
  connect_error_ = error;
  fsm_.tcp_failed(now);
  carry_out(now);
}

void Speaker::connection_lost(std::string why, Instant now) {
  emit(ConnectionLost{std::move(why)});
  fsm_.tcp_failed(now);
  carry_out(now);
}

// Does what the state machine asked, in order; the rest is the caller's to see.
void Speaker::carry_out(Instant now) {
  for (Output& output : fsm_.take_outputs()) {
    if (std::holds_alternative<OpenTcp>(output)) {
      open_connection(now);
    } else if (std::holds_alternative<CloseTcp>(output)) {
      close_connection(now);
    } else if (auto* send = std::get_if<SendBytes>(&output)) {
      pending_.insert(pending_.end(), send->bytes.begin(), send->bytes.end());
      flush(now);
    } else if (auto* change = std::get_if<StateChanged>(&output)) {
      const uint64_t session = change->to == State::Established ? ++sessions_ : 0;
      emit(SessionStateChanged{std::move(*change), session, fsm_.next_attempt()});
    } else if (auto* learned = std::get_if<RouteLearned>(&output)) {
      emit(std::move(*learned));
    } else if (auto* withdrawn = std::get_if<RouteWithdrawn>(&output)) {
      emit(std::move(*withdrawn));
    } else if (auto* note = std::get_if<Note>(&output)) {
      emit(std::move(*note));
    } else if (auto* failed = std::get_if<ConnectFailed>(&output)) {
      emit(AttemptFailed{*failed, connect_error_});
    }
  }
}

void Speaker::open_connection(Instant now) {
  if (socket_ != 0) close_connection(now);
  auto socket = tcp_.open();
  if (!socket) {
    failure_ = fmt::format("cannot open a socket: {}", socket.error().message);
    return;
  }
  socket_ = *socket;
  if (auto failed = set_keys(socket_)) {
    failure_ = failed;
    return;
  }
  if (const Status connected = tcp_.connect(socket_, config_.peer, kBgpPort, now); !connected) {
    connect_failed(connected.error(), now);
  }
}

void Speaker::close_connection(Instant now) {
  if (socket_ == 0) return;
  flush(now);
  // What is still queued (a NOTIFICATION) goes before the FIN; abort if it cannot close.
  if (connected_ && tcp_.close(socket_, now)) {
    closing_.push_back(socket_);
  } else {
    tcp_.abort(socket_, now);
  }
  socket_ = 0;
  connected_ = false;
  pending_.clear();
}

void Speaker::flush(Instant now) {
  if (socket_ == 0 || !connected_ || pending_.empty()) return;
  auto sent = tcp_.send(socket_, pending_, now);
  if (sent) pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(*sent));
}

}  // namespace tapstack::bgp
