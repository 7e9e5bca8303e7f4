// IPv6 fragment reassembly (RFC 8200 §4.5, RFC 5722, RFC 7112), with IPv4's bounds.
#include "stack/reassembly6.h"

#include <algorithm>

namespace tapstack {

namespace {

constexpr size_t kPayloadLengthField = 4;
constexpr size_t kIpv6MaxPayload = 65535;

// How much of the upper-layer header RFC 7112 asks the first fragment to hold. RFC 7112 names
// no sizes; these are the headers the layers above read before anything else (TCP's 20-byte
// header with the ports and flags, UDP's 8, ICMPv6's type, code, checksum and the 4 bytes
// every message has), and for any other protocol its first byte. Linux:
// ipv6frag_thdr_truncated() asks the same.
constexpr size_t kUdpHeaderSize = 8;
constexpr size_t kTcpMinHeaderSize = 20;
constexpr size_t kIcmpv6HeaderSize = 8;
size_t upper_layer_minimum(uint8_t protocol) {
  switch (protocol) {
    case kProtocolTcp:
      return kTcpMinHeaderSize;
    case kProtocolUdp:
      return kUdpHeaderSize;
    case kProtocolIcmpv6:
      return kIcmpv6HeaderSize;
    case kIpv6NoNextHeader:
      return 0;
    default:
      return 1;
  }
}

// RFC 7112 §5: the first fragment holds the whole header chain, through the upper-layer header
// (Parameter Problem code 3, pointer 0). The headers after its Fragment header are walked here,
// where their offsets are still those of a packet as received: once reassembled, a hop-by-hop
// header that followed the Fragment header would sit right after the fixed header.
std::optional<Ipv6Problem> check_header_chain(const Ipv6Datagram& first) {
  const Ipv6FragmentInfo& info = *first.fragment;
  Ipv6Datagram rest = first;
  rest.fragment.reset();
  rest.protocol_field = info.header_offset;
  rest.protocol = first.packet[info.header_offset];
  rest.payload_offset = info.header_offset + kIpv6FragmentHeaderSize;
  rest.payload = first.packet.subspan(rest.payload_offset);
  const Ipv6Problem incomplete{DropReason::Ip6FragNoUpperHeader, Ipv6ParameterProblem{3, 0, false}};
  if (auto problem = walk_ipv6_extensions(rest)) {
    if (problem->reason == DropReason::Ip6ExtTruncated) return incomplete;
    return problem;
  }
  if (rest.fragment) return std::nullopt;  // another Fragment header: its own reassembly's
  if (rest.payload.size() < upper_layer_minimum(rest.protocol)) return incomplete;
  return std::nullopt;
}

// A fragment dropped, its datagram with it: the drop path counted why.
Fragment6Verdict dropped() {
  Fragment6Verdict verdict;
  verdict.outcome = Fragment6Verdict::Outcome::Dropped;
  return verdict;
}

}  // namespace

// Linux: ipv6_frag_rcv(), ip6_frag_queue()
Reassembler6::Reassembler6(const ReassemblyConfig& config, LayerContext& context)
    : config_(config), context_(context) {}

Reassembler6::~Reassembler6() = default;

Fragment6Verdict Reassembler6::add(const Ipv6Datagram& fragment, Instant now) {
  constexpr Fragment6Verdict kHeld{};
  const Ipv6FragmentInfo& info = *fragment.fragment;
  context_.counters.add(Counter::Ip6ReasmReqds);
  const size_t headers_size = info.header_offset + kIpv6FragmentHeaderSize;
  const ByteView data = fragment.packet.subspan(headers_size);
  if (auto bad = check_ipv6_fragment(info, data.size())) return drop(*bad);
  if (info.offset == 0) {
    if (auto bad = check_header_chain(fragment)) return drop(*bad);
  }
  const uint32_t begin = info.offset;
  const uint32_t end = begin + static_cast<uint32_t>(data.size());

  size_t index = find_or_create(fragment, now);
  Pending* pending = &pending_[index];
  // The last fragment fixes the length; fragments that disagree with it are corrupt.
  const uint32_t highest = pending->ranges.empty() ? 0 : pending->ranges.back().end;
  const bool inconsistent =
      info.more ? (pending->total_payload && end > *pending->total_payload)
                : (end < highest || (pending->total_payload && *pending->total_payload != end));
  const Fit fit = classify(*pending, begin, end);
  if (fit == Fit::Duplicate && !inconsistent) return drop({DropReason::Ip6FragDuplicate, {}});
  if (fit == Fit::Overlap || inconsistent) {  // RFC 5722: the whole datagram goes
    discard(index, DropReason::Ip6FragOverlap);
    return dropped();
  }
  if (!info.more) pending->total_payload = end;

  // Reserve for the whole datagram once its length is known, so it grows at most twice.
  const size_t target = std::max<size_t>(end, pending->total_payload.value_or(0));
  const size_t growth =
      (target > pending->payload.capacity() ? target - pending->payload.capacity() : 0) +
      (begin == 0 ? headers_size : 0);
  if (growth > 0) {
    make_room(growth);
    const auto found = find(fragment.header.source, fragment.header.destination, info.id);
    if (!found) return dropped();  // evicted to make room for itself
    index = *found;
    pending = &pending_[index];
  }
  const size_t before = pending->charged();
  if (pending->payload.capacity() < target) pending->payload.reserve(target);
  if (end > pending->payload.size()) pending->payload.resize(end);
  std::copy(data.begin(), data.end(), pending->payload.begin() + begin);
  if (begin == 0) {
    pending->first_headers.assign(fragment.packet.begin(), fragment.packet.begin() + headers_size);
    pending->first_data = data.size();
    pending->next_header_field = info.next_header_field;
  }
  insert_range(*pending, begin, end);
  bytes_ += pending->charged() - before;

  const bool whole = pending->total_payload && pending->ranges.size() == 1 &&
                     pending->ranges[0].begin == 0 &&
                     pending->ranges[0].end == *pending->total_payload;
  return whole ? complete(index) : kHeld;
}

std::optional<size_t> Reassembler6::find(const IpAddress& source, const IpAddress& destination,
                                         uint32_t id) const {
  for (size_t i = 0; i < pending_.size(); ++i) {
    const Pending& p = pending_[i];
    if (p.id == id && p.source == source && p.destination == destination) return i;
  }
  return std::nullopt;
}

// Linux: fq_find() (the key: source, destination, identification)
size_t Reassembler6::find_or_create(const Ipv6Datagram& fragment, Instant now) {
  const Ipv6Header& h = fragment.header;
  if (auto found = find(h.source, h.destination, fragment.fragment->id)) return *found;
  if (pending_.size() >= config_.max_datagrams) discard(0, DropReason::Ip6FragMemoryLimit);
  Pending& created = pending_.emplace_back();
  created.source = h.source;
  created.destination = h.destination;
  created.id = fragment.fragment->id;
  created.deadline = now + config_.timeout;
  return pending_.size() - 1;
}

Fragment6Verdict Reassembler6::drop(const Ipv6Problem& problem) {
  context_.drop(problem.reason);
  Fragment6Verdict verdict = dropped();
  verdict.icmp = problem.icmp;
  return verdict;
}

void Reassembler6::discard(size_t index, DropReason reason) {
  bytes_ -= pending_[index].charged();
  pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(index));
  context_.drop(reason);
}

// Evicts the oldest datagrams until `needed` more bytes fit under the memory limit.
// Linux: inet_frag_kill() via the ip6frag_high_thresh check
void Reassembler6::make_room(size_t needed) {
  while (!pending_.empty() && bytes_ + needed > config_.memory_limit) {
    discard(0, DropReason::Ip6FragMemoryLimit);
  }
}

Reassembler6::Fit Reassembler6::classify(const Pending& pending, uint32_t begin, uint32_t end) {
  for (const Range& r : pending.ranges) {
    if (end <= r.begin || begin >= r.end) continue;
    return (begin >= r.begin && end <= r.end) ? Fit::Duplicate : Fit::Overlap;
  }
  return Fit::New;
}

void Reassembler6::insert_range(Pending& pending, uint32_t begin, uint32_t end) {
  auto& ranges = pending.ranges;
  auto it = std::lower_bound(ranges.begin(), ranges.end(), begin,
                             [](const Range& r, uint32_t b) { return r.begin < b; });
  it = ranges.insert(it, Range{begin, end});
  // Merge with neighbours that touch it, so a complete datagram is one range.
  if (it + 1 != ranges.end() && (it + 1)->begin == it->end) {
    it->end = (it + 1)->end;
    ranges.erase(it + 1);
  }
  if (it != ranges.begin() && (it - 1)->end == it->begin) {
    (it - 1)->end = it->end;
    ranges.erase(it);
  }
}

// The first fragment's unfragmentable part, then the data; the byte that named the Fragment
// header names the fragments' next header. Linux: ip6_frag_reasm()
Fragment6Verdict Reassembler6::complete(size_t index) {
  Pending& p = pending_[index];
  const size_t unfragmentable = p.first_headers.size() - kIpv6FragmentHeaderSize;
  const size_t total = unfragmentable + p.payload.size();
  // Each fragment was checked against its own unfragmentable part; the output has the first's.
  if (total - kIpv6HeaderSize > kIpv6MaxPayload) {
    discard(index, DropReason::Ip6FragTooBig);
    return dropped();
  }
  output_.resize(total);
  std::copy_n(p.first_headers.begin(), unfragmentable, output_.begin());
  std::copy(p.payload.begin(), p.payload.end(), output_.begin() + unfragmentable);
  output_[p.next_header_field] = p.first_headers[unfragmentable];  // the Fragment header's
  store_be16(output_.data() + kPayloadLengthField, static_cast<uint16_t>(total - kIpv6HeaderSize));
  const size_t protocol_field = p.next_header_field;
  bytes_ -= p.charged();
  pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(index));
  context_.counters.add(Counter::Ip6ReasmOKs);
  return {Fragment6Verdict::Outcome::Complete,
          {output_.data(), total},
          unfragmentable,
          protocol_field,
          std::nullopt};
}

// Linux: ip6_frag_expire()
void Reassembler6::on_timer(Instant now,
                            const std::function<void(ByteView first_fragment)>& expired) {
  for (size_t i = 0; i < pending_.size();) {
    if (pending_[i].deadline > now) {
      ++i;
      continue;
    }
    Pending& p = pending_[i];
    context_.trace.begin("timer: reassembly of {} > {} id {} timed out", p.source, p.destination,
                         p.id);
    // RFC 8200 §4.5: Time Exceeded only when the first fragment arrived.
    std::vector<uint8_t> first;
    if (!p.first_headers.empty()) {
      first = p.first_headers;
      first.insert(first.end(), p.payload.begin(),
                   p.payload.begin() + static_cast<std::ptrdiff_t>(p.first_data));
    }
    discard(i, DropReason::Ip6FragTimeout);
    if (!first.empty()) expired(first);
    context_.trace.flush();
  }
}

Instant Reassembler6::next_deadline() const {
  Instant earliest = Instant::never();
  for (const Pending& p : pending_) earliest = std::min(earliest, p.deadline);
  return earliest;
}

size_t Reassembler6::datagrams() const {
  return pending_.size();
}
size_t Reassembler6::bytes() const {
  return bytes_;
}

}  // namespace tapstack
