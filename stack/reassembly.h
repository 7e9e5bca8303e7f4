// IPv4 fragment reassembly (RFC 791 §3.2, RFC 815) with a time limit and a memory bound.
// Overlapping fragments drop the whole datagram, as RFC 5722 requires for IPv6 and Linux does
// for IPv4 too; a fragment wholly inside what was already received is a duplicate and is
// ignored, the datagram kept.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "stack/ipv4.h"
#include "stack/layer_context.h"
#include "stack/time.h"

namespace tapstack {

struct ReassemblyConfig {
  Duration timeout = Duration::seconds(30);  // Linux: ipfrag_time
  size_t memory_limit = 4 << 20;             // Linux: ipfrag_high_thresh
  size_t max_datagrams = 64;
};

// What became of one fragment given to Reassembler::add().
struct FragmentVerdict {
  enum class Outcome {
    Held,      // kept until the rest arrives
    Complete,  // it completed its datagram: `datagram`
    Dropped,   // dropped (through the drop path, which counted and traced why)
  };
  Outcome outcome = Outcome::Held;
  ByteView datagram;  // header and payload, checksum valid; until the next add()
};

class Reassembler {
 public:
  Reassembler(const ReassemblyConfig& config, LayerContext& context)
      : config_(config), context_(context) {}

  // Adds one fragment and says what became of it. Linux: ip_defrag(), ip_frag_queue(),
  // ip_frag_reasm()
  FragmentVerdict add(const Ipv4Datagram& fragment, Instant now);

  // Drops datagrams whose time ran out; calls expired() with the header and first 8 payload
  // bytes of each that had its first fragment (for ICMP Time Exceeded, RFC 1122 §3.3.2).
  // Linux: ip_expire()
  void on_timer(Instant now, const std::function<void(ByteView first_fragment)>& expired);
  Instant next_deadline() const;

  size_t datagrams() const { return pending_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Range {
    uint32_t begin;
    uint32_t end;
  };
  struct Pending {
    Ipv4Address source, destination;
    uint16_t id;
    uint8_t protocol;
    Instant deadline;
    std::vector<uint8_t> header;   // the first fragment's header, once it arrived
    std::vector<uint8_t> payload;  // grows to the highest end seen
    std::vector<Range> ranges;     // received, merged, sorted
    std::optional<uint32_t> total_payload;  // known once the last fragment arrived
    size_t charged() const { return payload.capacity() + header.capacity(); }
  };

  Pending* find_or_create(const Ipv4Header& header, Instant now);
  void discard(size_t index, DropReason reason);
  void make_room(size_t needed);
  // Where [begin, end) falls among what was received: new, duplicate or overlapping.
  enum class Fit { New, Duplicate, Overlap };
  static Fit classify(const Pending& pending, uint32_t begin, uint32_t end);
  static void insert_range(Pending& pending, uint32_t begin, uint32_t end);
  ByteView complete(size_t index);

  ReassemblyConfig config_;
  LayerContext& context_;
  std::vector<Pending> pending_;  // oldest first; a few dozen at most
  std::vector<uint8_t> output_;   // the last reassembled datagram
  size_t bytes_ = 0;
};

}  // namespace tapstack
