// The BGP finite state machine of RFC 4271 §8 for one peer, sans-I/O: it is told what happened
// (start, stop, the TCP connection came up or failed, bytes arrived, time passed) and answers
// with outputs in order (open or close TCP, bytes to send, state changes, routes learned and
// withdrawn). It reads no clock: every call takes `now`, and next_deadline() says when to call
// on_timer(). Optional parts of §8 left out: DelayOpen, collision detection (one connection
// at a time), peer oscillation damping (a fixed idle hold time instead).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bgp/message.h"
#include "stack/time.h"

namespace tapstack::bgp {

// RFC 4271 §8.2.2
enum class State { Idle, Connect, Active, OpenSent, OpenConfirm, Established };
std::string_view state_name(State state);

struct PeerConfig {
  uint32_t local_as = 0;
  uint32_t peer_as = 0;
  uint32_t router_id = 0;   // our BGP Identifier
  uint16_t hold_time = 90;  // RFC 4271 §10's suggestion; 0 or at least 3
  // ManualStart_with_PassiveTcpEstablishment (event 4): wait in Active for the peer to
  // connect, never connecting ourselves.
  bool passive = false;
  // The ConnectRetry time: how long one unanswered attempt may last, and the pause after a
  // failed one. RFC 4271 §10 suggests 120 s; tapstack bgp's default is shorter (its help).
  Duration connect_retry = Duration::seconds(120);
  // After an error takes the session to Idle, AutomaticStart (event 3) after this long.
  Duration idle_hold = Duration::seconds(5);
};

struct OpenTcp {};   // initiate a TCP connection to the peer (port 179)
struct CloseTcp {};  // close the connection, after what was sent on it has gone
struct SendBytes {
  std::vector<uint8_t> bytes;
};
struct StateChanged {
  State from;
  State to;
  std::string why;
};
struct RouteLearned {
  Prefix prefix;
  PathAttributes attributes;
};
struct RouteWithdrawn {
  Prefix prefix;
  // The peer withdrew it in an UPDATE (false), or the session ended and the route went with
  // it (true, RFC 4271 §8.2.2: "deletes all routes associated with this connection").
  bool session_ended = false;
};
// An attempt of ours to connect failed: the connection was refused or reset (event 18), or
// the ConnectRetry timer expired before it came up (event 9). `attempt` counts from 1 since
// the start or the last Established; the next attempt is at `next` (now, or a ConnectRetry
// time later).
struct ConnectFailed {
  uint32_t attempt = 0;
  bool timed_out = false;  // no answer within the ConnectRetry time
  Instant next;
};
// Something to log: an UPDATE error handled without a reset (RFC 7606 §2 asks that it be
// logged), or a NOTIFICATION we sent.
struct Note {
  std::string text;
};
using Output = std::variant<OpenTcp, CloseTcp, SendBytes, StateChanged, RouteLearned,
                            RouteWithdrawn, ConnectFailed, Note>;

class Fsm {
 public:
  explicit Fsm(PeerConfig config);

  // Events 1 and 4: ManualStart (with PassiveTcpEstablishment when configured).
  void start(Instant now);
  // Event 2: ManualStop. Sends Cease / Administrative Shutdown on an open session; no
  // automatic restart afterwards.
  void stop(Instant now);
  // Events 16 and 17: our connection was acknowledged, or the peer's was accepted.
  void tcp_connected(Instant now);
  // Event 18: the connection failed or closed.
  void tcp_failed(Instant now);
  // Bytes from the connection: messages are framed and handled (events 19 to 28).
  void receive(ByteView bytes, Instant now);
  // Events 9, 10 and 11 (ConnectRetry, Hold, Keepalive timers), and the automatic restart.
  void on_timer(Instant now);
  Instant next_deadline() const;

  // The UPDATEs to send whenever a session becomes Established (and on ROUTE-REFRESH).
  void set_announcements(std::vector<Update> updates) { announcements_ = std::move(updates); }
  std::vector<Output> take_outputs();

  State state() const { return state_; }
  // RFC 4271 §4.2: the hold time both sides agreed on (valid from OpenConfirm).
  uint16_t negotiated_hold_time() const { return hold_time_; }
  const CodecOptions& codec() const { return codec_; }
  // The Adj-RIB-In: what the peer announced and has not withdrawn.
  const std::map<Prefix, PathAttributes>& routes() const { return routes_; }
  uint32_t connect_retry_counter() const { return connect_retry_counter_; }
  // When the machine will next try to connect (never when passive, stopped or connecting).
  Instant next_attempt() const;

 private:
  void to(State next, std::string why);
  void send(const Message& message, Instant now);
  void send_open(Instant now);
  // Ends the session: NOTIFICATION (when given), close, routes withdrawn, then Idle with an
  // automatic restart unless stopped.
  void fail(std::string why, std::optional<Notification> notification, Instant now);
  void handle(Message message, Instant now);
  void on_open(const Open& open, Instant now);
  void on_keepalive(Instant now);
  void on_update(Update update, Instant now);
  void unexpected(std::string_view what, Instant now);
  void restart_hold_timer(Instant now);
  void initiate(Instant now);
  // Appends an output, built in place in outputs_: a temporary Output moved in would make
  // GCC 12 at -O2 report the inactive alternatives' members as maybe-uninitialized.
  template <typename T>
  void emit(T output) {
    outputs_.emplace_back(std::in_place_type<T>, std::move(output));
  }

  PeerConfig config_;
  State state_ = State::Idle;
  bool stopped_ = true;
  CodecOptions codec_;
  uint16_t hold_time_ = 0;
  uint32_t connect_retry_counter_ = 0;
  uint32_t attempts_ = 0;  // connections initiated since the start or the last Established
  Instant connect_retry_deadline_ = Instant::never();
  Instant hold_deadline_ = Instant::never();
  Instant keepalive_deadline_ = Instant::never();
  Instant restart_deadline_ = Instant::never();
  std::vector<uint8_t> buffer_;  // received bytes not yet a whole message
  std::map<Prefix, PathAttributes> routes_;
  std::vector<Update> announcements_;
  std::vector<Output> outputs_;
};

}  // namespace tapstack::bgp
