// Differential decoding: random and mutated frames decoded by our parsers (parse_ipv4,
// parse_tcp, md5opt::find_md5_option) and by libtins, an independent implementation. Where
// both accept a frame, every field must agree, and a failure names the field. Where only one
// accepts, the reason must be one of the known, legitimate differences, each checked:
//   - libtins verifies no checksum; we drop a wrong IPv4 or TCP checksum (RFC 1122 §3.2.1.2,
//     RFC 9293 §3.1), checked here against a checksum computed independently;
//   - libtins ignores the IPv4 version and TTL; we drop version ≠ 4 and TTL 0;
//   - libtins decodes a datagram whose total length runs past the frame (it cuts it) or is
//     shorter than the header, and takes total length 0 as "the whole frame" (segmentation
//     offload); we drop all three;
//   - libtins parses IPv4 options and throws on malformed ones; we skip options;
//   - libtins throws on a malformed TCP option list (a length below 2 or past the header),
//     even after an EOL; we, like Linux's tcp_parse_options(), keep what came before and stop.
// And where both accept, the option semantics differ on purpose, so the libtins view is read
// with Linux's rules before comparing: the list ends at EOL; MSS, window scale and
// SACK-permitted count only in a SYN; an option of the wrong length is ignored; the last
// valid one of a kind wins; flags() of libtins includes ECE, CWR and the reserved bits, ours
// the six of RFC 793. Fragments are compared at the IPv4 layer only (libtins does not decode
// TCP in a fragment, and we only after reassembly).
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <tins/tins.h>

#include "md5opt/option.h"
#include "stack/ipv4.h"
#include "stack/random.h"
#include "stack/tcp/header.h"
#include "tests/fuzz/fixups.h"
#include "tests/fuzz/frames.h"
#include "tests/fuzz/mutator.h"
#include "tests/fuzz/world.h"

namespace tapstack::fuzz {
namespace {

constexpr int kFrames = 20000;

// The fields that differ between the two views of one frame, as "field: ours X, libtins Y".
class Differences {
 public:
  template <typename A, typename B>
  void compare(std::string_view field, const A& ours, const B& theirs) {
    if (ours == theirs) return;
    lines_.push_back(fmt::format("{}: ours {}, libtins {}", field, ours, theirs));
  }
  void add(std::string line) { lines_.push_back(std::move(line)); }
  bool empty() const { return lines_.empty(); }
  std::string text() const { return fmt::format("{}", fmt::join(lines_, "; ")); }

 private:
  std::vector<std::string> lines_;
};

// RFC 1071 once more, written apart from stack/checksum.h so that the two can disagree.
uint16_t reference_sum(ByteView bytes, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) sum += uint32_t{bytes[i]} << 8 | bytes[i + 1];
  if (bytes.size() % 2) sum += uint32_t{bytes.back()} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

bool tcp_checksum_wrong(const Ipv4Datagram& d) {
  const uint32_t s = d.header.source.value, t = d.header.destination.value;
  const uint32_t pseudo = (s >> 16) + (s & 0xffff) + (t >> 16) + (t & 0xffff) + 6 +
                          static_cast<uint32_t>(d.payload.size());
  return reference_sum(d.payload, pseudo) != 0;
}

// libtins's rule for a TCP option list (src/tcp.cpp): it reads to the end of the header, EOL
// included, and throws on a length below 2 or past the header.
bool libtins_rejects_options(ByteView options) {
  for (size_t at = 0; at < options.size();) {
    if (options[at] <= tcp_option::kNop) {
      ++at;
      continue;
    }
    if (at + 1 >= options.size() || options[at + 1] < 2 || at + options[at + 1] > options.size()) {
      return true;
    }
    at += options[at + 1];
  }
  return false;
}

// What Linux's rules make of the option list libtins decoded.
struct ExpectedOptions {
  TcpOptions options;
  bool md5_seen = false;
  std::optional<size_t> first_md5_digest;  // find_md5_option(): the first kind 19 decides
};

void apply_linux_rule(uint8_t kind, ByteView value, size_t at, bool syn, ExpectedOptions& e) {
  const size_t size = value.size() + 2;
  TcpOptions& o = e.options;
  if (kind == tcp_option::kMss && size == 4 && syn) o.mss = load_be16(value.data());
  if (kind == tcp_option::kWindowScale && size == 3 && syn) o.window_scale = value[0];
  if (kind == tcp_option::kSackPermitted && size == 2 && syn) o.sack_permitted = true;
  if (kind == tcp_option::kTimestamps && size == 10) {
    o.ts_value = load_be32(value.data());
    o.ts_echo = load_be32(value.data() + 4);
  }
  if (kind == tcp_option::kSack && size >= 10 && (size - 2) % 8 == 0) {
    o.sack_count = static_cast<uint8_t>(std::min<size_t>((size - 2) / 8, o.sack.size()));
    for (size_t b = 0; b < o.sack_count; ++b) {
      o.sack[b] = {Seq(load_be32(&value[b * 8])), Seq(load_be32(&value[b * 8 + 4]))};
    }
  }
  if (kind != tcp_option::kMd5) return;
  if (!e.md5_seen && size == 18) e.first_md5_digest = at + 2;
  e.md5_seen = true;
  if (size == 18) o.md5_offset = static_cast<uint8_t>(at);  // the last one wins
}

ExpectedOptions expected_options(const Tins::TCP& tcp, bool syn) {
  ExpectedOptions e;
  size_t at = kTcpMinHeaderSize;
  for (const auto& option : tcp.options()) {
    const uint8_t kind = option.option();
    if (kind == tcp_option::kEnd) break;
    if (kind == tcp_option::kNop) {
      ++at;
      continue;
    }
    const ByteView value(option.data_ptr(), option.data_size());
    apply_linux_rule(kind, value, at, syn, e);
    at += value.size() + 2;
  }
  return e;
}

void compare_options(const TcpSegment& ours, const Tins::TCP& theirs, Differences& d) {
  const ExpectedOptions e = expected_options(theirs, ours.has(tcp_flags::kSyn));
  const TcpOptions& o = ours.options;
  d.compare("option mss", o.mss.value_or(0), e.options.mss.value_or(0));
  d.compare("option window scale", unsigned{o.window_scale.value_or(255)},
            unsigned{e.options.window_scale.value_or(255)});
  d.compare("option sack-permitted", o.sack_permitted, e.options.sack_permitted);
  d.compare("option timestamps", o.ts_value.has_value(), e.options.ts_value.has_value());
  d.compare("option timestamp value", o.ts_value.value_or(0), e.options.ts_value.value_or(0));
  d.compare("option timestamp echo", o.ts_echo, e.options.ts_echo);
  d.compare("option sack blocks", unsigned{o.sack_count}, unsigned{e.options.sack_count});
  for (size_t b = 0; b < std::min(o.sack_count, e.options.sack_count); ++b) {
    d.compare(fmt::format("option sack block {} left", b), o.sack[b].left.value(),
              e.options.sack[b].left.value());
    d.compare(fmt::format("option sack block {} right", b), o.sack[b].right.value(),
              e.options.sack[b].right.value());
  }
  d.compare("option md5 offset", unsigned{o.md5_offset.value_or(0)},
            unsigned{e.options.md5_offset.value_or(0)});
  d.compare("find_md5_option", md5opt::find_md5_option(ours.header).value_or(0),
            e.first_md5_digest.value_or(0));
}

void compare_tcp(const TcpSegment& ours, const Tins::TCP& theirs, Differences& d) {
  d.compare("source port", ours.source_port, theirs.sport());
  d.compare("destination port", ours.destination_port, theirs.dport());
  d.compare("seq", ours.seq.value(), theirs.seq());
  d.compare("ack", ours.ack.value(), theirs.ack_seq());
  d.compare("flags", unsigned{ours.flags}, theirs.flags() & 0x3fu);
  d.compare("window", ours.window, theirs.window());
  d.compare("header length", unsigned{ours.header_length}, theirs.data_offset() * 4u);
  const auto* raw = theirs.find_pdu<Tins::RawPDU>();
  d.compare("payload size", ours.payload.size(), raw ? raw->payload_size() : 0u);
  compare_options(ours, theirs, d);
}

void compare_ipv4(const Ipv4Header& ours, const Tins::IP& theirs, Differences& d) {
  d.compare("source", ours.source.to_string(), theirs.src_addr().to_string());
  d.compare("destination", ours.destination.to_string(), theirs.dst_addr().to_string());
  d.compare("protocol", unsigned{ours.protocol}, unsigned{theirs.protocol()});
  d.compare("ttl", unsigned{ours.ttl}, unsigned{theirs.ttl()});
  d.compare("id", ours.id, theirs.id());
  d.compare("header length", unsigned{ours.header_length}, theirs.head_len() * 4u);
  d.compare("total length", ours.total_length, theirs.tot_len());
  d.compare("fragment offset", unsigned{ours.fragment_offset}, theirs.fragment_offset() * 8u);
  d.compare("more fragments", ours.more_fragments,
            (theirs.flags() & Tins::IP::MORE_FRAGMENTS) != 0);
  d.compare("don't fragment", ours.dont_fragment, (theirs.flags() & Tins::IP::DONT_FRAGMENT) != 0);
}

// Why we may drop an IPv4 packet that libtins decodes: each reason checked on the bytes.
std::optional<std::string> explain_ipv4_drop(DropReason reason, ByteView packet) {
  const size_t header_size = (packet[0] & 0x0f) * 4u;
  const uint16_t total = load_be16(&packet[2]);
  switch (reason) {
    case DropReason::IpBadChecksum:
      if (reference_sum(packet.first(header_size)) != 0) return "libtins checks no IPv4 checksum";
      break;
    case DropReason::IpBadVersion:
      if ((packet[0] >> 4) != 4) return "libtins ignores the IPv4 version";
      break;
    case DropReason::IpTtlZero:
      if (packet[8] == 0) return "libtins accepts TTL 0";
      break;
    case DropReason::IpTotalLengthBeyondFrame:
      if (total > packet.size()) return "libtins cuts a datagram at the frame's end";
      break;
    case DropReason::IpBadHeaderLength:
      if (total == 0) return "libtins takes total length 0 as the whole frame";
      if (total < header_size) return "libtins accepts a total length shorter than the header";
      break;
    default:
      break;
  }
  return std::nullopt;
}

struct Tally {
  int both_accept_tcp = 0;
  int both_accept_ipv4 = 0;
  std::map<std::string, int> known;
  int failures = 0;
};

void fail(Tally& tally, ByteView frame, const std::string& what) {
  if (++tally.failures > 10) return;  // enough to see the pattern
  FAIL_CHECK(what << "\n  frame: " << fmt::format("{:02x}", fmt::join(frame, "")));
}

// libtins's TCP layer: from the whole frame (Tins::EthernetII) when it decodes, else from the
// segment alone, to tell which layer it rejects.
std::optional<Tins::TCP> libtins_tcp(ByteView frame, ByteView segment) {
  try {
    const Tins::EthernetII whole(frame.data(), static_cast<uint32_t>(frame.size()));
    if (const auto* tcp = whole.find_pdu<Tins::TCP>()) return *tcp;
  } catch (const Tins::malformed_packet&) {
  }
  try {
    return Tins::TCP(segment.data(), static_cast<uint32_t>(segment.size()));
  } catch (const Tins::malformed_packet&) {
    return std::nullopt;
  }
}

// libtins's IPv4 layer alone: given the header only, it decodes nothing above it.
std::optional<Tins::IP> libtins_ipv4(ByteView packet) {
  const size_t header_size = packet.empty() ? 0 : (packet[0] & 0x0f) * 4u;
  try {
    return Tins::IP(packet.data(), static_cast<uint32_t>(std::min(packet.size(), header_size)));
  } catch (const Tins::malformed_packet&) {
    return std::nullopt;
  }
}

void compare_tcp_layer(ByteView frame, const Ipv4Datagram& datagram, Tally& tally) {
  TcpSegment ours;
  const auto reason =
      parse_tcp(datagram.payload, datagram.header.source, datagram.header.destination, ours);
  const std::optional<Tins::TCP> theirs = libtins_tcp(frame, datagram.payload);
  if (!reason && theirs) {
    Differences d;
    compare_tcp(ours, *theirs, d);
    if (!d.empty()) return fail(tally, frame, "TCP fields differ: " + d.text());
    ++tally.both_accept_tcp;
  } else if (!reason) {
    if (!libtins_rejects_options(ours.header.subspan(kTcpMinHeaderSize))) {
      return fail(tally, frame, "libtins rejects a TCP header we accept, options well formed");
    }
    ++tally.known["libtins rejects a malformed TCP option list; we keep what came before"];
  } else if (theirs) {
    if (*reason != DropReason::TcpBadChecksum || !tcp_checksum_wrong(datagram)) {
      return fail(
          tally, frame,
          fmt::format("we drop a TCP segment libtins decodes: {}", drop_reason_name(*reason)));
    }
    ++tally.known["libtins checks no TCP checksum"];
  }
}

void compare_frame(ByteView frame, Tally& tally) {
  if (frame.size() < kEthernetSize || load_be16(&frame[12]) != kEtherTypeIpv4) return;
  const ByteView packet = frame.subspan(kEthernetSize);
  Ipv4Datagram ours;
  const auto reason = parse_ipv4(packet, ours);
  const std::optional<Tins::IP> theirs = libtins_ipv4(packet);
  if (!reason && theirs) {
    Differences d;
    compare_ipv4(ours.header, *theirs, d);
    if (!d.empty()) return fail(tally, frame, "IPv4 fields differ: " + d.text());
    ++tally.both_accept_ipv4;
    if (ours.header.protocol == kProtocolTcp && !ours.header.is_fragment()) {
      compare_tcp_layer(frame, ours, tally);
    }
  } else if (!reason) {
    if (ours.header.header_length <= kIpv4MinHeaderSize) {
      return fail(tally, frame, "libtins rejects an IPv4 header we accept, and it has no options");
    }
    ++tally.known["libtins rejects malformed IPv4 options; we skip options"];
  } else if (theirs) {
    const auto why = explain_ipv4_drop(*reason, packet);
    if (!why) {
      return fail(
          tally, frame,
          fmt::format("we drop an IPv4 packet libtins decodes: {}", drop_reason_name(*reason)));
    }
    ++tally.known[*why];
  }
}

// Frames from the receive-path mutator's templates, mutated, usually repaired as a record
// would ask, now and then with bytes flipped after the repair.
class FrameSource {
 public:
  explicit FrameSource(uint64_t seed)
      : random_(seed), mutator_(seed, [this](uint8_t* data, size_t size, size_t max_size) {
          return flip_bytes(data, size, max_size);
        }) {}

  std::vector<Bytes> next() {
    std::vector<Bytes> frames;
    for (Record& r : mutator_.random_records()) {
      for (size_t i = random_.below(4); i > 0; --i) mutator_.mutate_frame(r.frame);
      const uint8_t fixups = random_.chance(0.8) ? fixup::kIpv4 | fixup::kChecksum | fixup::kSign
                                                 : static_cast<uint8_t>(random_.below(16));
      apply_fixups(fixups & ~fixup::kRelative, r.frame, {flows_, keys_, signer_});
      if (random_.chance(0.1) && !r.frame.empty()) {
        flip_bytes(r.frame.data(), r.frame.size(), r.frame.size());
      }
      frames.push_back(std::move(r.frame));
    }
    return frames;
  }

 private:
  size_t flip_bytes(uint8_t* data, size_t size, size_t) {
    for (size_t i = 1 + random_.below(3); i > 0 && size > 0; --i) {
      data[random_.below(size)] ^= static_cast<uint8_t>(1u << random_.below(8));
    }
    return size;
  }

  Random random_;
  Mutator mutator_;
  FlowTracker flows_;
  md5opt::KeyTable keys_ = world::peer_keys();
  md5opt::Md5Signer signer_;
};

TEST_CASE("our IPv4 and TCP parsers and libtins agree on random and mutated frames") {
  FrameSource source(2385);
  Tally tally;
  int frames = 0;
  while (frames < kFrames) {
    for (const Bytes& frame : source.next()) {
      compare_frame(frame, tally);
      ++frames;
    }
  }
  for (const auto& [why, count] : tally.known) MESSAGE(count << " frames: " << why);
  MESSAGE(tally.both_accept_ipv4 << " IPv4 and " << tally.both_accept_tcp
                                 << " TCP headers decoded alike by both");
  CHECK(tally.failures == 0);
  // The comparison means something only if most frames get through both parsers.
  CHECK(tally.both_accept_tcp > kFrames / 3);
}

}  // namespace
}  // namespace tapstack::fuzz
