// Connections between the kernel and the stack over the rig's TAP, each side with its own MD5
// keys, and byte-exact exchanges on them: what every test here is made of.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stack/bytes.h"
#include "tests/md5_kernel/kernel_side.h"
#include "tests/md5_kernel/rig.h"
#include "tests/md5_kernel/stream.h"

namespace tapstack::md5kernel {

// How long an attempt that must fail is given: the connector's SYN and its retransmission
// (the kernel's and the stack's initial RTO are both 1 s), with room to spare.
inline constexpr Duration kNeverForms = Duration::milliseconds(1500);

// Who listens; the other side connects.
enum class Listener { Kernel, Stack };
std::string_view to_string(Listener listener);

// The keys each side holds, on its listener or its connecting socket.
struct KeyPlan {
  std::vector<PeerKey> kernel;  // setsockopt(TCP_MD5SIG / TCP_MD5SIG_EXT)
  std::vector<PeerKey> stack;   // Tcp::set_md5_key
};

// The seed's configuration: key "12345", each side for the other's address (of the family).
KeyPlan seed_keys(IpFamily family = IpFamily::Ipv4);

inline ByteView key_bytes(const std::string& key) {
  return {reinterpret_cast<const uint8_t*>(key.data()), key.size()};
}

// Sets a stack socket's keys (a listener's, or a connection's before connect()).
void set_stack_keys(Tcp& tcp, SocketId id, const std::vector<PeerKey>& keys);

struct Connection {
  Fd kernel;
  SocketId stack = 0;
};

// Opens a connection to port, `who` listening, over the rig's family. nullopt when the handshake did not complete on
// both sides within limit. The listener is closed again either way. Throws
// std::runtime_error on a setup failure.
std::optional<Connection> open_connection(TapRig& rig, Listener who, uint16_t port,
                                          const KeyPlan& keys, Duration limit);
// Lets go of both ends.
void close_connection(TapRig& rig, Connection& connection);

// What one connection attempt did.
struct Outcome {
  bool connected = false;
  Md5Counters kernel;                   // how far the kernel's counters rose
  Md5Counters stack;                    // how far the stack's rose
  std::vector<SegmentRecord> segments;  // every TCP segment on the link meanwhile
  // TCP segments the stack sent (FrameDirection::Sent) or received.
  size_t count(FrameDirection direction) const;
};

// Tries to open a connection as open_connection() does, closes it again if it formed, and
// says what happened. Every attempt should use a port of its own.
Outcome attempt_connection(TapRig& rig, Listener who, uint16_t port, const KeyPlan& keys,
                           Duration limit);

// Moves both ends of an exchange to their goals: the kernel's on a thread of its own (with
// kernel_turn run on that thread at least every 10 ms), the stack's in the loop's hook (with
// stack_turn run first). True when both got there within limit.
bool run_exchange(TapRig& rig, KernelStream& kernel, const Goal& kernel_goal, StackStream& stack,
                  const Goal& stack_goal, Duration limit,
                  const std::function<void()>& kernel_turn = {},
                  const std::function<void(Instant)>& stack_turn = {});

}  // namespace tapstack::md5kernel
