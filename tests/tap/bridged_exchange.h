// One exchange between the stack, in-process on a TAP bridged to a kernel peer in its own
// namespace with nftables loss (BridgedPeer), and a kernel socket: `size` bytes each way at
// once, every frame decoded with libtins on the way, for tests and benchmarks.
#pragma once

#include <cstdint>
#include <optional>

#include "stack/tcp/types.h"
#include "tests/support/kernel_socket.h"

namespace tapstack::testing {

// What one direction's segments showed on the wire.
struct Seen {
  std::optional<uint8_t> syn_window_scale;
  bool syn_sack_permitted = false;
  bool syn_timestamps = false;
  uint64_t segments = 0;            // after the handshake
  uint64_t without_timestamps = 0;  // of those, not resets
  uint64_t resets = 0;              // of those
  uint64_t with_sack_blocks = 0;
  uint32_t largest_window = 0;      // bytes, the scale applied
};

struct BridgedExchange {
  bool finished = false;        // our side read the end of stream in time
  uint64_t received = 0;        // by the stack
  bool received_intact = false; // and it was the kernel's pattern
  Transfer kernel;              // the kernel's side
  bool kernel_intact = false;   // the kernel received our pattern
  double seconds = 0;
  Seen ours;    // segments the stack sent
  Seen theirs;  // segments the kernel sent
  TcpInfo info; // our connection at the end
};

// Runs in the calling thread's (private) namespace, which must be fresh: it creates tap0 and
// the bridge. Set-up failures and a failed connection throw std::runtime_error. tcp configures the stack's TCP (SACK off for a comparison, say).
BridgedExchange bridged_exchange(uint64_t size, int loss_percent, const TcpConfig& tcp,
                                 uint16_t port);

}  // namespace tapstack::testing
