// IPv6 fragment reassembly (RFC 8200 §4.5) with the bounds IPv4's has (time, memory, number of
// datagrams). Overlapping fragments drop the whole datagram (RFC 5722); a fragment wholly
// inside what was received is a duplicate, ignored. Fragments are told apart by source,
// destination and identification (the next header is not part of the key in IPv6).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "stack/ipv6.h"
#include "stack/layer_context.h"
#include "stack/reassembly.h"
#include "stack/time.h"

namespace tapstack {

// What became of one fragment given to Reassembler6::add().
struct Fragment6Verdict {
  enum class Outcome {
    Held,      // kept until the rest arrives
    Complete,  // it completed its datagram: `datagram`
    Dropped,   // dropped through the drop path, which counted and traced why
  };
  Outcome outcome = Outcome::Held;
  // Complete: the reassembled packet, the unfragmentable part of the first fragment followed
  // by the fragments' data, the next-header byte that named the Fragment header now naming
  // the fragments' next header, payload length set; valid until the next add(). Parse it again
  // (parse_ipv6, then walk from payload_offset).
  ByteView datagram;
  size_t payload_offset = 0;  // where the fragments' data starts in datagram
  // Dropped because the fragment was malformed in a way RFC 8200 §4.5 / RFC 7112 answer with
  // an ICMPv6 Parameter Problem (length not a multiple of 8, beyond 65535, a first fragment
  // without the upper-layer header).
  std::optional<Ipv6ParameterProblem> icmp;
};

class Reassembler6 {
 public:
  // ReassemblyConfig: the same knobs as IPv4 (Linux: ip6frag_time, ip6frag_high_thresh).
  Reassembler6(const ReassemblyConfig& config, LayerContext& context);
  ~Reassembler6();

  // Adds one fragment (fragment.fragment set by walk_ipv6_extensions) and says what became of
  // it. Linux: ipv6_frag_rcv(), ip6_frag_queue(), ip6_frag_reasm()
  Fragment6Verdict add(const Ipv6Datagram& fragment, Instant now);

  // Drops datagrams whose time ran out; calls expired() with the first fragment's packet (as
  // received, for ICMPv6 Time Exceeded code 1, RFC 8200 §4.5) of each that had it.
  // Linux: ip6_frag_expire()
  void on_timer(Instant now, const std::function<void(ByteView first_fragment)>& expired);
  Instant next_deadline() const;

  size_t datagrams() const;
  size_t bytes() const;

 private:
  struct Pending;
  ReassemblyConfig config_;
  LayerContext& context_;
  std::vector<Pending> pending_;  // oldest first; a few dozen at most (defined in the .cc)
  std::vector<uint8_t> output_;   // the last reassembled datagram
  size_t bytes_ = 0;
};

}  // namespace tapstack
