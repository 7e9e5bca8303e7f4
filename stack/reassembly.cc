#include "stack/reassembly.h"

#include <algorithm>
#include <cstring>

#include "stack/checksum.h"

namespace tapstack {

FragmentVerdict Reassembler::add(const Ipv4Datagram& fragment, Instant now) {
  constexpr FragmentVerdict kHeld{FragmentVerdict::Outcome::Held, {}};
  constexpr FragmentVerdict kDropped{FragmentVerdict::Outcome::Dropped, {}};
  const Ipv4Header& h = fragment.header;
  context_.counters.add(Counter::IpReasmReqds);
  const uint32_t begin = h.fragment_offset;
  const uint32_t end = begin + static_cast<uint32_t>(fragment.payload.size());
  // RFC 791: every fragment but the last carries a multiple of 8 bytes.
  if (h.more_fragments && (fragment.payload.empty() || fragment.payload.size() % 8 != 0)) {
    context_.drop(DropReason::IpFragBadLength);
    return kDropped;
  }
  Pending* pending = find_or_create(h, now);
  size_t index = static_cast<size_t>(pending - pending_.data());
  if (h.header_length + end > kIpv4MaxDatagramSize) {
    discard(index, DropReason::IpFragTooBig);
    return kDropped;
  }
  // The last fragment fixes the length; fragments that disagree with it are corrupt.
  const uint32_t highest = pending->ranges.empty() ? 0 : pending->ranges.back().end;
  const bool inconsistent = h.more_fragments ? (pending->total_payload && end > *pending->total_payload)
                                             : (end < highest || (pending->total_payload &&
                                                                  *pending->total_payload != end));
  const Fit fit = classify(*pending, begin, end);
  if (fit == Fit::Duplicate && !inconsistent) {
    context_.drop(DropReason::IpFragDuplicate);
    return kDropped;
  }
  if (fit == Fit::Overlap || inconsistent) {
    discard(index, DropReason::IpFragOverlap);
    return kDropped;
  }
  if (!h.more_fragments) pending->total_payload = end;

  const size_t before = pending->charged();
  if (end > pending->payload.size()) {
    // Reserve for the whole datagram once its length is known, so it grows at most twice.
    const size_t target = pending->total_payload ? *pending->total_payload : end;
    if (pending->payload.capacity() < target) {
      make_room(target - pending->payload.capacity());
      index = static_cast<size_t>(std::find_if(pending_.begin(), pending_.end(),
                                               [&](const Pending& p) {
                                                 return p.id == h.id && p.source == h.source &&
                                                        p.destination == h.destination &&
                                                        p.protocol == h.protocol;
                                               }) -
                                  pending_.begin());
      if (index == pending_.size()) return kDropped;  // evicted to make room for itself
      pending = &pending_[index];
      pending->payload.reserve(target);
    }
    pending->payload.resize(end);
  }
  std::copy_n(fragment.payload.data(), fragment.payload.size(), pending->payload.data() + begin);
  if (begin == 0) {
    const ByteView header = fragment.packet.first(h.header_length);
    pending->header.assign(header.begin(), header.end());
  }
  insert_range(*pending, begin, end);
  bytes_ += pending->charged() - before;

  const bool whole = pending->total_payload && pending->ranges.size() == 1 &&
                     pending->ranges[0].begin == 0 && pending->ranges[0].end == *pending->total_payload;
  if (!whole) return kHeld;
  return {FragmentVerdict::Outcome::Complete, complete(index)};
}

Reassembler::Pending* Reassembler::find_or_create(const Ipv4Header& h, Instant now) {
  for (Pending& p : pending_) {
    if (p.id == h.id && p.source == h.source && p.destination == h.destination &&
        p.protocol == h.protocol) {
      return &p;
    }
  }
  if (pending_.size() >= config_.max_datagrams) discard(0, DropReason::IpFragMemoryLimit);
  pending_.push_back(Pending{h.source, h.destination, h.id, h.protocol, now + config_.timeout,
                             {}, {}, {}, std::nullopt});
  return &pending_.back();
}

void Reassembler::discard(size_t index, DropReason reason) {
  bytes_ -= pending_[index].charged();
  pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(index));
  context_.drop(reason);
}

// Evicts the oldest datagrams until `needed` more bytes fit under the memory limit.
// Linux: inet_frag_kill() via the ipfrag_high_thresh check
void Reassembler::make_room(size_t needed) {
  while (!pending_.empty() && bytes_ + needed > config_.memory_limit) {
    discard(0, DropReason::IpFragMemoryLimit);
  }
}

Reassembler::Fit Reassembler::classify(const Pending& pending, uint32_t begin, uint32_t end) {
  for (const Range& r : pending.ranges) {
    if (end <= r.begin || begin >= r.end) continue;
    return (begin >= r.begin && end <= r.end) ? Fit::Duplicate : Fit::Overlap;
  }
  return Fit::New;
}

void Reassembler::insert_range(Pending& pending, uint32_t begin, uint32_t end) {
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

ByteView Reassembler::complete(size_t index) {
  Pending& p = pending_[index];
  const size_t total = p.header.size() + p.payload.size();
  output_.resize(total);
  std::copy_n(p.header.data(), p.header.size(), output_.data());
  std::copy_n(p.payload.data(), p.payload.size(), output_.data() + p.header.size());
  // The first fragment's header, now describing the whole datagram.
  uint8_t* header = output_.data();
  store_be16(header + 2, static_cast<uint16_t>(total));
  store_be16(header + 6, static_cast<uint16_t>(load_be16(header + 6) & 0x4000));
  store_be16(header + 10, 0);
  store_be16(header + 10, internet_checksum({header, p.header.size()}));
  bytes_ -= p.charged();
  pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(index));
  context_.counters.add(Counter::IpReasmOKs);
  return {output_.data(), total};
}

void Reassembler::on_timer(Instant now,
                           const std::function<void(ByteView first_fragment)>& expired) {
  for (size_t i = 0; i < pending_.size();) {
    if (pending_[i].deadline > now) {
      ++i;
      continue;
    }
    Pending& p = pending_[i];
    context_.trace.begin("timer: reassembly of {} > {} id {} timed out", p.source,
                         p.destination, p.id);
    std::vector<uint8_t> quote;
    if (!p.header.empty() && p.payload.size() >= 8) {
      quote = p.header;
      quote.insert(quote.end(), p.payload.begin(), p.payload.begin() + 8);
    }
    discard(i, DropReason::IpFragTimeout);
    if (!quote.empty()) expired(quote);
    context_.trace.flush();
  }
}

Instant Reassembler::next_deadline() const {
  Instant earliest = Instant::never();
  for (const Pending& p : pending_) earliest = std::min(earliest, p.deadline);
  return earliest;
}

}  // namespace tapstack
