#include "bgp/fsm.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace tapstack::bgp {
namespace {

// RFC 4271 §8.2.2: "a large value" for the HoldTimer until the peer's OPEN arrives.
constexpr Duration kOpenHoldTime = Duration::seconds(240);

Notification notification(ErrorCode code, uint8_t subcode) {
  return Notification{static_cast<uint8_t>(code), subcode, {}};
}

}  // namespace

std::string_view state_name(State state) {
  switch (state) {
    case State::Idle:
      return "Idle";
    case State::Connect:
      return "Connect";
    case State::Active:
      return "Active";
    case State::OpenSent:
      return "OpenSent";
    case State::OpenConfirm:
      return "OpenConfirm";
    case State::Established:
      return "Established";
  }
  return "?";
}

Fsm::Fsm(PeerConfig config) : config_(config) {
  codec_.external = config_.local_as != config_.peer_as;
}

std::vector<Output> Fsm::take_outputs() {
  return std::exchange(outputs_, {});
}

void Fsm::to(State next, std::string why) {
  if (next == state_) return;
  emit(StateChanged{state_, next, std::move(why)});
  state_ = next;
}

void Fsm::send(const Message& message, Instant now) {
  emit(SendBytes{encode(message, codec_)});
  // RFC 4271 §4.4: each KEEPALIVE or UPDATE sent restarts the KeepaliveTimer.
  if (hold_time_ > 0 && (state_ == State::OpenConfirm || state_ == State::Established)) {
    keepalive_deadline_ = now + Duration::seconds(hold_time_ / 3);
  }
}

void Fsm::send_open(Instant now) {
  send(Open::make(config_.local_as, config_.hold_time, config_.router_id), now);
}

// RFC 4271 §8.2.2, Idle state: ManualStart / AutomaticStart, active or passive.
void Fsm::start(Instant now) {
  stopped_ = false;
  if (state_ != State::Idle) return;
  restart_deadline_ = Instant::never();
  if (config_.passive) {
    connect_retry_deadline_ = Instant::never();
    return to(State::Active, "started, waiting for the peer to connect");
  }
  initiate(now);
  to(State::Connect, "started, connecting");
}

void Fsm::initiate(Instant now) {
  connect_retry_deadline_ = now + config_.connect_retry;
  ++attempts_;
  emit(OpenTcp{});
}

Instant Fsm::next_attempt() const {
  if (config_.passive) return Instant::never();
  if (state_ == State::Active) return connect_retry_deadline_;
  if (state_ == State::Idle) return restart_deadline_;
  return Instant::never();
}

// Event 2 in every state.
void Fsm::stop(Instant now) {
  const bool open =
      state_ == State::OpenSent || state_ == State::OpenConfirm || state_ == State::Established;
  stopped_ = true;
  restart_deadline_ = Instant::never();
  if (state_ == State::Idle) return;
  std::optional<Notification> cease;
  if (open) cease = notification(ErrorCode::Cease, cease::kAdministrativeShutdown);
  fail("stopped", cease, now);
  connect_retry_counter_ = 0;
  attempts_ = 0;
}

void Fsm::fail(std::string why, std::optional<Notification> notification, Instant now) {
  if (notification) {
    send(*notification, now);
    emit(Note{fmt::format("sent NOTIFICATION {}", notification->describe())});
  }
  if (state_ != State::Idle && state_ != State::Active) emit(CloseTcp{});
  for (const auto& [prefix, attributes] : routes_) emit(RouteWithdrawn{prefix, true});
  routes_.clear();
  buffer_.clear();
  connect_retry_deadline_ = hold_deadline_ = keepalive_deadline_ = Instant::never();
  ++connect_retry_counter_;
  restart_deadline_ = stopped_ ? Instant::never() : now + config_.idle_hold;
  to(State::Idle, std::move(why));
}

// Events 16/17.
void Fsm::tcp_connected(Instant now) {
  if (state_ != State::Connect && state_ != State::Active) return;
  connect_retry_deadline_ = Instant::never();
  send_open(now);
  hold_deadline_ = now + kOpenHoldTime;
  to(State::OpenSent, "TCP connection up, OPEN sent");
}

// Event 18.
void Fsm::tcp_failed(Instant now) {
  switch (state_) {
    case State::Idle:
    case State::Active:
      return;
    case State::Connect:
      // §8.2.2 Connect: restart the ConnectRetryTimer, continue to listen in Active.
      emit(CloseTcp{});
      connect_retry_deadline_ = now + config_.connect_retry;
      emit(ConnectFailed{attempts_, false, connect_retry_deadline_});
      return to(State::Active, "TCP connection failed");
    case State::OpenSent:
      // §8.2.2 OpenSent: close, restart the ConnectRetryTimer, Active.
      emit(CloseTcp{});
      buffer_.clear();
      hold_deadline_ = Instant::never();
      connect_retry_deadline_ = config_.passive ? Instant::never() : now + config_.connect_retry;
      return to(State::Active, "TCP connection closed before the peer's OPEN");
    case State::OpenConfirm:
    case State::Established:
      return fail("TCP connection closed", std::nullopt, now);
  }
}

void Fsm::on_timer(Instant now) {
  if (now >= restart_deadline_) {
    restart_deadline_ = Instant::never();
    start(now);  // event 3, AutomaticStart
  }
  if (now >= connect_retry_deadline_) {  // event 9
    if (state_ == State::Connect) {
      emit(CloseTcp{});
      emit(ConnectFailed{attempts_, true, now});
      initiate(now);
    } else if (state_ == State::Active) {
      initiate(now);
      to(State::Connect, "ConnectRetry timer expired, connecting");
    } else {
      connect_retry_deadline_ = Instant::never();
    }
  }
  if (now >= hold_deadline_) {  // event 10
    hold_deadline_ = Instant::never();
    fail("hold timer expired", notification(ErrorCode::HoldTimerExpired, 0), now);
  }
  if (now >= keepalive_deadline_) {  // event 11
    keepalive_deadline_ = Instant::never();
    send(Keepalive{}, now);
  }
}

Instant Fsm::next_deadline() const {
  return std::min(
      {connect_retry_deadline_, hold_deadline_, keepalive_deadline_, restart_deadline_});
}

void Fsm::receive(ByteView bytes, Instant now) {
  if (state_ != State::OpenSent && state_ != State::OpenConfirm && state_ != State::Established) {
    return;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  size_t consumed = 0;
  while (state_ != State::Idle) {
    const ByteView rest = ByteView(buffer_).subspan(consumed);
    auto header = check_header(rest);
    if (std::holds_alternative<std::nullopt_t>(header)) break;
    if (auto* failed = std::get_if<DecodeError>(&header)) {  // event 21
      return fail(fmt::format("bad message header: {}", failed->reason), failed->notification, now);
    }
    const size_t length = std::get<size_t>(header);
    if (rest.size() < length) break;
    auto decoded = decode(rest.first(length), codec_);
    consumed += length;
    if (auto* failed = std::get_if<DecodeError>(&decoded)) {  // events 21, 22, 28
      return fail(fmt::format("bad message: {}", failed->reason), failed->notification, now);
    }
    handle(std::move(std::get<Message>(decoded)), now);
  }
  if (state_ == State::Idle) return;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed));
}

void Fsm::handle(Message message, Instant now) {
  if (auto* open = std::get_if<Open>(&message)) return on_open(*open, now);
  if (std::holds_alternative<Keepalive>(message)) return on_keepalive(now);
  if (auto* update = std::get_if<Update>(&message)) return on_update(std::move(*update), now);
  if (auto* received = std::get_if<Notification>(&message)) {  // events 24, 25
    return fail(fmt::format("peer sent NOTIFICATION {}", received->describe()), std::nullopt, now);
  }
  if (std::holds_alternative<RouteRefresh>(message)) {
    // RFC 2918 §4: send the Adj-RIB-Out again.
    if (state_ != State::Established) return unexpected("ROUTE-REFRESH", now);
    for (const Update& update : announcements_) send(update, now);
  }
}

// RFC 6608: which FSM error subcode a message that the state does not expect earns.
void Fsm::unexpected(std::string_view what, Instant now) {
  const uint8_t subcode = state_ == State::OpenSent      ? fsm_error::kUnexpectedInOpenSent
                          : state_ == State::OpenConfirm ? fsm_error::kUnexpectedInOpenConfirm
                                                         : fsm_error::kUnexpectedInEstablished;
  fail(fmt::format("unexpected {} in {}", what, state_name(state_)),
       notification(ErrorCode::FiniteStateMachine, subcode), now);
}

// Event 19 in OpenSent (§8.2.2) with the checks of §6.2.
void Fsm::on_open(const Open& open, Instant now) {
  if (state_ != State::OpenSent) return unexpected("OPEN", now);
  if (open.sender_as() != config_.peer_as) {
    std::vector<uint8_t> data(2);
    store_be16(data.data(), open.my_as);
    return fail(
        fmt::format("peer says AS {}, --peer-as is {}", open.sender_as(), config_.peer_as),
        Notification{static_cast<uint8_t>(ErrorCode::OpenMessage), open_error::kBadPeerAs, data},
        now);
  }
  if (open.bgp_identifier == config_.router_id) {
    return fail("peer's BGP identifier is ours",
                notification(ErrorCode::OpenMessage, open_error::kBadBgpIdentifier), now);
  }
  // §4.2: the smaller of the two hold times; the KeepaliveTimer a third of it.
  hold_time_ = std::min(config_.hold_time, open.hold_time);
  codec_.four_octet_as = open.capabilities.four_octet_as.has_value();
  connect_retry_deadline_ = Instant::never();
  to(State::OpenConfirm,
     fmt::format("OPEN received: AS {}, hold time {} s", open.sender_as(), hold_time_));
  send(Keepalive{}, now);
  if (hold_time_ == 0) {
    hold_deadline_ = keepalive_deadline_ = Instant::never();
  } else {
    restart_hold_timer(now);
  }
}

void Fsm::restart_hold_timer(Instant now) {
  if (hold_time_ > 0) hold_deadline_ = now + Duration::seconds(hold_time_);
}

// Event 26.
void Fsm::on_keepalive(Instant now) {
  if (state_ == State::OpenSent) return unexpected("KEEPALIVE", now);
  restart_hold_timer(now);
  if (state_ != State::OpenConfirm) return;
  connect_retry_counter_ = 0;
  attempts_ = 0;
  to(State::Established, "KEEPALIVE received");
  for (const Update& update : announcements_) send(update, now);
}

// Events 27 and 28 in Established; §9 on what an UPDATE does to the Adj-RIB-In.
void Fsm::on_update(Update update, Instant now) {
  if (state_ != State::Established) return unexpected("UPDATE", now);
  restart_hold_timer(now);
  const auto& path = update.attributes.as_path;
  // §6.3: from an external peer, the leftmost AS must be the peer's.
  if (codec_.external && !update.nlri.empty() && !update.treat_as_withdraw && path &&
      (path->empty() || path->front().type != AsPathSegment::AsSequence ||
       path->front().asns.empty() || path->front().asns.front() != config_.peer_as)) {
    return fail("AS_PATH does not begin with the peer's AS",
                notification(ErrorCode::UpdateMessage, update_error::kMalformedAsPath), now);
  }
  for (std::string& note : update.notes) emit(Note{std::move(note)});
  std::vector<Prefix> gone = std::move(update.withdrawn);
  if (update.treat_as_withdraw) gone.insert(gone.end(), update.nlri.begin(), update.nlri.end());
  for (const Prefix& prefix : gone) {
    if (routes_.erase(prefix) > 0) emit(RouteWithdrawn{prefix, false});
  }
  if (update.treat_as_withdraw) return;
  for (const Prefix& prefix : update.nlri) {
    routes_[prefix] = update.attributes;
    emit(RouteLearned{prefix, update.attributes});
  }
}

}  // namespace tapstack::bgp
