// The replay's side of the record bits (records.h): it learns each flow's sequence state from
// the segments the stack sends, and repairs a frame as the record asks before delivering it.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>

#include "md5opt/key_table.h"
#include "md5opt/signer.h"
#include "stack/address.h"
#include "stack/bytes.h"
#include "tests/fuzz/records.h"

namespace tapstack::fuzz {

// What the stack's own segments say of each flow: the peer sees this much of its state.
class FlowTracker {
 public:
  struct State {
    uint32_t rcv_nxt = 0;       // the last acknowledgment number the stack sent
    uint32_t snd_max = 0;       // the end of the highest sequence number it sent
    bool acknowledged = false;  // rcv_nxt is known
  };

  // Learns from one frame the stack sent; anything but a TCP segment is ignored.
  void learn(ByteView frame);
  // Zeros for a flow the stack never sent on, so that relative numbers are then absolute.
  State state(Ipv4Address peer, uint16_t peer_port, uint16_t our_port) const;

 private:
  using Key = std::tuple<uint32_t, uint16_t, uint16_t>;
  std::map<Key, State> flows_;
};

// A peer with no key still signs when a record asks it to: with this one, which no socket has.
inline constexpr std::string_view kStrangerKey = "tapstack-fuzz-stranger";

struct FixupContext {
  const FlowTracker& flows;
  const md5opt::KeyTable& peer_keys;  // the key each peer address signs with
  md5opt::Md5Signer& signer;
};

// Applies a record's fix-up bits to its frame, in the order that keeps each one right:
// the IPv4 length, the sequence numbers, the digest (it covers them and the length), then
// the checksums (the TCP checksum covers the digest). A frame that is not IPv4 is left alone.
void apply_fixups(uint8_t fixups, Bytes& frame, const FixupContext& context);

}  // namespace tapstack::fuzz
