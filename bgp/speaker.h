// The BGP speaker for one peer (RFC 4271) over a TCP connection of the stack: it carries out
// what the state machine (bgp/fsm.h) asks on the stack's sockets (listen, connect or accept,
// TCP-MD5 keys, send, close), feeds it what the sockets report, and hands what happened to
// the caller as events. Sans-I/O as the stack is: no system call, no clock; every call takes
// `now`, and next_deadline() says when to poll() again if nothing arrives before.
//
// Reading order: bgp/fsm.h, then RFC 4271 §8 (the FSM's events 16 to 18 are what poll()
// reports of the connection), §5.1.2 (the AS_PATH we announce), RFC 2385 §2.0 (why an
// unanswered attempt may be a key mismatch).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "bgp/fsm.h"
#include "bgp/message.h"
#include "stack/address.h"
#include "stack/error.h"
#include "stack/tcp/types.h"
#include "stack/time.h"

namespace tapstack {
class Tcp;  // stack/tcp/tcp.h
}

namespace tapstack::bgp {

// RFC 2385: the key for the peers in peer/prefix_length (32 or 128: that address alone), as
// setsockopt(TCP_MD5SIG_EXT) takes it.
struct Md5Key {
  IpAddress peer;
  uint8_t prefix_length = 32;
  std::vector<uint8_t> key;  // 1 to 80 bytes

  bool covers(const IpAddress& address) const;
  std::string peer_text() const;  // "198.18.0.1", "198.18.0.0/24", "2001:db8::/64"
};

struct Announcement {
  Prefix prefix;
  std::optional<Ipv4Address> next_hop;  // default: SpeakerConfig::local_address
};

struct SpeakerConfig {
  Ipv4Address local_address;  // the stack's: the default BGP Identifier and next hop
  // The transport: IPv4 or IPv6 (the routes stay IPv4 unicast with IPv4 next hops).
  IpAddress peer;
  uint32_t local_as = 0;
  uint32_t peer_as = 0;                  // equal to local_as: iBGP
  std::optional<Ipv4Address> router_id;  // our BGP Identifier; default: local_address
  uint16_t hold_time = 90;               // 0 or 3 to 65535
  // RFC 4271 §10 suggests 120 s; after an error the session starts again after this or 5 s,
  // whichever is shorter.
  Duration connect_retry = Duration::seconds(120);
  bool passive = false;  // listen on port 179 for the peer; never connect
  // Put on the listener or on each connection before it connects; one should cover peer.
  std::vector<Md5Key> md5_keys;
  std::vector<Announcement> announcements;
};

// RFC 4271 §5.1.2 and §5.1.5: the UPDATEs that announce config.announcements, one per next hop
// (or per 500 prefixes), ORIGIN IGP; to an external peer the AS_PATH is our AS, to an internal
// one it is empty and LOCAL_PREF is 100.
std::vector<Update> announcements(const SpeakerConfig& config);

// --- What the speaker reports (take_events()), besides the FSM's RouteLearned,
// RouteWithdrawn and Note. ---

struct SessionStateChanged {
  StateChanged change;
  uint64_t session = 0;  // to Established: 1 for the first session of the speaker, then 2, ...
  Instant next_attempt;  // when it will try to connect next (never: not on its own)
};
// An attempt of ours to connect failed (the FSM's ConnectFailed); unless it timed out, error
// is what TCP said (ECONNREFUSED, ETIMEDOUT, ...).
struct AttemptFailed {
  ConnectFailed failed;
  Error error;
};
// The session's connection failed or the peer closed it, in TCP's words.
struct ConnectionLost {
  std::string why;
};
// A connection to port 179 reset at once: not from the peer, or while a session is on.
struct ConnectionRefused {
  IpAddress from;
  bool from_peer = false;
};

using SpeakerEvent = std::variant<SessionStateChanged, RouteLearned, RouteWithdrawn, AttemptFailed,
                                  ConnectionLost, ConnectionRefused, Note>;

class Speaker {
 public:
  // tcp must outlive the speaker. A passive speaker's listener stays open when the speaker
  // goes (tapstack bgp lists it among the sockets at exit), so a stack holds one in its life.
  Speaker(Tcp& tcp, SpeakerConfig config);
  Speaker(const Speaker&) = delete;
  Speaker& operator=(const Speaker&) = delete;

  // Listens (passive), then ManualStart. An error that ends the run, or nullopt.
  std::optional<std::string> start(Instant now);
  // Accepts, reads, runs the FSM's timers and carries out what it asks. Call after the stack
  // took in frames, and at next_deadline().
  void poll(Instant now);
  // The FSM's next timer; while bytes wait for room in the send buffer, a short poll interval.
  Instant next_deadline() const;
  // ManualStop: a Cease NOTIFICATION on an open session, then its connection is closed.
  void stop(Instant now);

  // Connections closed (by stop() or an earlier end of a session) not yet seen done.
  bool closing() const { return !closing_.empty(); }
  // Forgets those whose bytes (our NOTIFICATION, the FIN) were all acknowledged, or that ended.
  void forget_closed();

  std::vector<SpeakerEvent> take_events();
  // A failure that ends the run (a socket could not be opened or keyed), once there is one.
  const std::optional<std::string>& failure() const { return failure_; }
  // A key covers the peer: our segments to it are signed.
  bool signs() const { return signs_; }
  State state() const { return fsm_.state(); }
  // The Adj-RIB-In: what the peer announced and has not withdrawn.
  const std::map<Prefix, PathAttributes>& routes() const { return fsm_.routes(); }

 private:
  std::optional<std::string> set_keys(SocketId id);
  void accept_new(Instant now);
  void poll_socket(Instant now);
  void connect_failed(const Error& error, Instant now);
  void connection_lost(std::string why, Instant now);
  void carry_out(Instant now);
  void open_connection(Instant now);
  void close_connection(Instant now);
  void flush(Instant now);
  // Built in place: see Fsm::emit.
  template <typename T>
  void emit(T event) {
    events_.emplace_back(std::in_place_type<T>, std::move(event));
  }

  Tcp& tcp_;
  SpeakerConfig config_;
  Fsm fsm_;
  bool signs_;
  SocketId listener_ = 0;
  SocketId socket_ = 0;
  bool connected_ = false;
  std::vector<uint8_t> pending_;  // bytes the send buffer had no room for yet
  Instant last_call_;             // the latest `now` given
  std::vector<SocketId> closing_;
  Error connect_error_;    // why our last attempt to connect failed
  uint64_t sessions_ = 0;  // how many times the session has been Established
  std::optional<std::string> failure_;
  std::vector<SpeakerEvent> events_;
};

}  // namespace tapstack::bgp
