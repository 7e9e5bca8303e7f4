// The world of one receive-path fuzz input: the stack under test (198.18.0.2) and the peers
// around it, in virtual time. Every input starts from the same scripted state:
//   - a listener on port 179 with MD5 keys for 198.18.0.1 (/32) and 198.18.0.64/26, and none
//     for any other peer (198.18.0.3, 198.18.0.4, ...);
//   - an established signed connection, 198.18.0.1:40001 → :179, accepted from the listener;
//   - an established unsigned connection, :50000 → 198.18.0.3:80, opened by us.
// The handshakes go through the same record path as the fuzzer's input, so the setup is
// replayed bit for bit, and the invariants are checked after each of its steps too.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "md5opt/key_table.h"
#include "md5opt/signer.h"
#include "stack/stack.h"
#include "tests/fuzz/fixups.h"
#include "tests/fuzz/invariants.h"
#include "tests/fuzz/records.h"
#include "tests/fuzz/violations.h"

namespace tapstack::fuzz {

namespace world {
inline constexpr Ipv4Address kUs = Ipv4Address::from_octets(198, 18, 0, 2);
inline constexpr Ipv4Address kSignedPeer = Ipv4Address::from_octets(198, 18, 0, 1);
inline constexpr Ipv4Address kUnsignedPeer = Ipv4Address::from_octets(198, 18, 0, 3);
inline constexpr Ipv4Address kStranger = Ipv4Address::from_octets(198, 18, 0, 4);
inline constexpr Ipv4Address kPrefixPeer = Ipv4Address::from_octets(198, 18, 0, 70);
inline constexpr Ipv4Address kPrefix = Ipv4Address::from_octets(198, 18, 0, 64);
inline constexpr uint8_t kPrefixLength = 26;
inline constexpr Ipv4Address kPeers[] = {kSignedPeer, kUnsignedPeer, kStranger, kPrefixPeer};

inline constexpr uint16_t kListenPort = 179;
inline constexpr uint16_t kSignedPeerPort = 40001;
inline constexpr uint16_t kUnsignedPeerPort = 80;
inline constexpr uint16_t kUnsignedLocalPort = 50000;
inline constexpr uint16_t kConnectLocalPort = 51000;  // and up, one per ConnectSigned
inline constexpr uint16_t kClosedPort = 81;
inline constexpr int kBacklog = 4;
inline constexpr int kMaxConnects = 4;

inline constexpr std::string_view kSignedKey = "tapstack-fuzz-peer-1";
inline constexpr std::string_view kPrefixKey = "tapstack-fuzz-prefix-64/26";

// 02:00:00:00:00:n for 198.18.0.n, as in the simulated network.
MacAddress mac_of(Ipv4Address address);
StackConfig stack_config();
// The key each peer address signs with: the mirror of what the listener holds.
md5opt::KeyTable peer_keys();
}  // namespace world

class World {
 public:
  World();

  // One record: time passes, the application acts, the frame arrives; then what the stack
  // sent is checked and learnt from, and the invariants are checked.
  void step(const Record& record);
  const Violations& violations() const { return violations_; }

  // For the corpus generator: the frames the stack sent in the last step.
  const std::vector<Bytes>& last_sent() const { return last_sent_; }
  const FlowTracker& flows() const { return flows_; }
  Instant now() const { return now_; }
  Stack& stack() { return stack_; }

 private:
  void set_up();
  void expect_established(std::optional<SocketId> id, std::string_view what);
  void advance(Duration d);
  void act(AppAction action);
  void deliver(Bytes frame, uint8_t fixups);
  void drain();
  WorldFacts facts() const;
  void check_state();

  // Application actions
  std::vector<SocketId> held() const;
  void accept_all();
  void read_all();
  void send(std::optional<SocketId> id, size_t size);
  void connect_signed();
  void forget(std::optional<SocketId>& id);
  void set_held_options(void (*change)(SocketOptions&));

  Stack stack_;
  Instant now_ = Instant::from_ns(1'000'000'000);
  FlowTracker flows_;
  md5opt::KeyTable peer_keys_;
  md5opt::Md5Signer signer_;
  Violations violations_;
  SentFrameChecker sent_checker_;
  std::vector<Bytes> last_sent_;
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
  uint64_t steps_ = 0;

  std::optional<SocketId> listener_;
  std::optional<SocketId> signed_;
  std::optional<SocketId> unsigned_;
  std::vector<SocketId> accepted_;
  std::vector<SocketId> connected_;
};

}  // namespace tapstack::fuzz
