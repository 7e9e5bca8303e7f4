// The invariants the receive-path target asserts after every step, through the stack's public
// API alone (counters, socket info and events, memory figures, deadlines) and the frames it
// sends. Those that need the stack's internals (snd_una ≤ snd_nxt ≤ snd_max, the out-of-order
// queue, the timer set, ...) are Tcp::check_invariants() in the core, which World calls too.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "md5opt/key_table.h"
#include "md5opt/signer.h"
#include "stack/ipv4.h"
#include "stack/stack.h"
#include "stack/tcp/header.h"
#include "tests/fuzz/fixups.h"
#include "tests/fuzz/violations.h"

namespace tapstack::fuzz {

// What the world knows that the stack does not say.
struct WorldFacts {
  uint64_t frames_in = 0;   // frames given to on_frame()
  uint64_t frames_out = 0;  // frames taken from poll_transmit()
  uint64_t steps = 0;
  std::optional<SocketId> listener;        // while it is open
  std::vector<SocketId> once_established;  // handed to the application after a handshake
  std::vector<SocketId> active_opens;      // opened by connect()
  std::vector<SocketId> signed_sockets;    // have a key for their peer
  std::vector<SocketId> plain_sockets;     // have none
};

// Frames in and out, drops against frames, each drop reason against its nstat counter.
void check_counters(const Stack& stack, const WorldFacts& facts, Violations& v);
// Every socket's state, queues, timers and readiness agree with each other.
void check_sockets(const Stack& stack, const WorldFacts& facts, Violations& v);
// Reassembly and socket buffers within their bounds.
void check_memory(const Stack& stack, Violations& v);
// A connection with something to send or to finish has a timer that will move it on.
void check_liveness(const Stack& stack, Violations& v);

// The flows on which every segment to a peer that has a key must be signed: our port, the
// peer's port (0: any) and the peer's address (0.0.0.0: any); resets too, unless said.
struct SigningRules {
  struct Flow {
    uint16_t our_port;
    uint16_t peer_port = 0;
    Ipv4Address peer{};
    bool resets = true;
  };
  std::vector<Flow> signed_flows;
};

// The frames the stack sends: well formed with checksums right, never a fragmented TCP
// segment, signed as the rules say with a digest that verifies, and acknowledgment numbers
// that never go back on a flow (RCV.NXT only advances, RFC 9293 §3.3.1).
class SentFrameChecker {
 public:
  explicit SentFrameChecker(const md5opt::KeyTable& peer_keys) : peer_keys_(peer_keys) {}
  void check(ByteView frame, const Stack& stack, const FlowTracker& flows,
             const SigningRules& rules, Violations& v);

 private:
  void check_tcp(const Ipv4Datagram& datagram, const FlowTracker& flows, const SigningRules& rules,
                 Violations& v);
  void check_signature(const TcpSegment& segment, const Ipv4Datagram& datagram,
                       const SigningRules& rules, Violations& v);

  const md5opt::KeyTable& peer_keys_;
  md5opt::Md5Signer signer_;
};

}  // namespace tapstack::fuzz
