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
  // Where the next-header byte naming what starts at payload_offset is (the patched one), so
  // that the walk can resume there: protocol = datagram[protocol_field].
  size_t protocol_field = 6;
  // Dropped because the fragment was malformed in a way RFC 8200 §4.5 / RFC 7112 answer with
  // an ICMPv6 Parameter Problem (length not a multiple of 8, beyond 65535, a first fragment
  // without the upper-layer header), or because the walk of the headers that follow the first
  // fragment's Fragment header found one (an unknown option, a hop-by-hop header there, ...).
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
  struct Range {
    uint32_t begin;
    uint32_t end;
  };
  struct Pending {
    IpAddress source, destination;
    uint32_t id = 0;
    Instant deadline;
    // The first fragment's fixed header, unfragmentable extension headers and Fragment
    // header, once it arrived, and the bytes of data it carried: the output's headers, and
    // with the data the first fragment as received (for Time Exceeded).
    std::vector<uint8_t> first_headers;
    size_t first_data = 0;
    size_t next_header_field = 6;  // in first_headers: the byte naming the Fragment header
    std::vector<uint8_t> payload;   // grows to the highest end seen
    std::vector<Range> ranges;      // received, merged, sorted
    std::optional<uint32_t> total_payload;  // known once the last fragment arrived
    size_t charged() const { return payload.capacity() + first_headers.capacity(); }
  };

  std::optional<size_t> find(const IpAddress& source, const IpAddress& destination,
                             uint32_t id) const;
  size_t find_or_create(const Ipv6Datagram& fragment, Instant now);
  Fragment6Verdict drop(const Ipv6Problem& problem);
  void discard(size_t index, DropReason reason);
  void make_room(size_t needed);
  // Where [begin, end) falls among what was received: new, duplicate or overlapping.
  enum class Fit { New, Duplicate, Overlap };
  static Fit classify(const Pending& pending, uint32_t begin, uint32_t end);
  static void insert_range(Pending& pending, uint32_t begin, uint32_t end);
  Fragment6Verdict complete(size_t index);

  ReassemblyConfig config_;
  LayerContext& context_;
  std::vector<Pending> pending_;  // oldest first; a few dozen at most
  std::vector<uint8_t> output_;   // the last reassembled datagram
  size_t bytes_ = 0;
};

}  // namespace tapstack
