// Running `tapstack serve` and `tapstack connect` against the kernel in a test's private
// network namespace: the kernel side of tap0 is 198.18.0.1/24, the stack 198.18.0.2/24.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stack/address.h"
#include "stack/error.h"
#include "tests/support/peer_netns.h"
#include "tests/support/subprocess.h"

namespace tapstack::testing {

inline constexpr Ipv4Address kKernelAddress = Ipv4Address::from_octets(198, 18, 0, 1);
inline constexpr Ipv4Address kStackAddress = Ipv4Address::from_octets(198, 18, 0, 2);

// Who gives the kernel side of tap0 its address: tapstack (--host-addr), or nobody because
// tap0 is a bridge port (BridgedPeer).
enum class HostSide { Configured, Bridged };

// tapstack COMMAND --tap tap0 --addr 198.18.0.2/24 [--host-addr 198.18.0.1/24] EXTRA...
std::vector<std::string> tapstack_command(const std::string& command,
                                          const std::vector<std::string>& extra,
                                          HostSide host = HostSide::Configured);

// Starts `tapstack serve` with extra options and waits until it listens.
Result<ChildProcess> start_serve(const std::vector<std::string>& extra,
                                 HostSide host = HostSide::Configured);

// The kernel peer (198.18.0.1/24 and 2001:db8::1/64) in a network namespace of its own, on the far side of a
// bridge from tap0: the test's namespace forwards the frames between it and the stack, and
// nftables drops a share of the TCP packets there, each way. Dropped in transit, a packet is
// lost for real to both TCPs. (Dropped in the sending host's own output hook, it is not:
// Linux sees the local drop and sends the segment again at once, counting no retransmission.)
// tap0 is made persistent beforehand, and the stack attaches to it (HostSide::Bridged).
class BridgedPeer {
 public:
  static Result<BridgedPeer> create(int loss_percent);

  // Runs fn in the peer's namespace (see PeerNamespace::within).
  template <typename Fn>
  auto within(Fn fn) const {
    return namespace_.within(std::move(fn));
  }

 private:
  explicit BridgedPeer(PeerNamespace peer_namespace) : namespace_(std::move(peer_namespace)) {}
  Status build(int loss_percent) const;

  PeerNamespace namespace_;
};

// A counter's value in a --stats file, or nullopt when the file or the counter is missing.
std::optional<uint64_t> stats_counter(const std::string& stats_path, std::string_view name);

// The lines of text that contain needle.
size_t count_lines_with(const std::string& text, std::string_view needle);

}  // namespace tapstack::testing
