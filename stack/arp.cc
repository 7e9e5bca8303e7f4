#include "stack/arp.h"

#include <algorithm>

#include "stack/ipv4.h"

namespace tapstack {
namespace {

constexpr uint16_t kHardwareEthernet = 1;
constexpr uint16_t kOperationRequest = 1;
constexpr uint16_t kOperationReply = 2;

MacAddress read_mac(const uint8_t* p) {
  MacAddress mac;
  std::copy(p, p + 6, mac.bytes.begin());
  return mac;
}

}  // namespace

void ArpTable::input(ByteView packet, Instant now) {
  const uint8_t* p = packet.data();
  if (packet.size() < kArpPacketSize || load_be16(p) != kHardwareEthernet ||
      load_be16(p + 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4) {
    context_.drop(DropReason::ArpMalformed);
    return;
  }
  const uint16_t operation = load_be16(p + 6);
  if (operation != kOperationRequest && operation != kOperationReply) {
    context_.drop(DropReason::ArpMalformed);
    return;
  }
  context_.counters.add(operation == kOperationRequest ? Counter::ArpInRequests : Counter::ArpInReplies);
  const MacAddress sender_mac = read_mac(p + 8);
  const Ipv4Address sender_ip{load_be32(p + 14)};
  const Ipv4Address target_ip{load_be32(p + 24)};
  const Ipv4Address ours = address_;
  context_.trace.step("arp {} {} is-at {} asks {}", operation == kOperationRequest ? "request" : "reply",
                     sender_ip, sender_mac, target_ip);
  if (sender_mac.is_multicast() || sender_mac.is_zero() || sender_ip == ours ||
      sender_ip.is_multicast() || sender_ip.is_limited_broadcast()) {
    context_.drop(DropReason::ArpBadSender);
    return;
  }
  // RFC 826 "merge": refresh an entry we already have, whoever the packet is for.
  const bool known = entries_.contains(sender_ip.value);
  if (known && !sender_ip.is_zero()) learn(sender_ip, sender_mac, now);
  if (target_ip != ours) {
    context_.drop(DropReason::ArpNotForUs);
    return;
  }
  // A probe (sender 0.0.0.0, RFC 5227) is answered but teaches nothing.
  if (!known && !sender_ip.is_zero()) learn(sender_ip, sender_mac, now);
  if (operation == kOperationRequest) {
    context_.trace.step("arp reply: {} is-at {}", ours, mac_);
    send_packet(kOperationReply, sender_mac, sender_mac, sender_ip);
    context_.counters.add(Counter::ArpOutReplies);
  }
}

void ArpTable::send(Ipv4Address next_hop, ByteView datagram, Instant now,
                    const FrameOffload& offload) {
  auto it = entries_.find(next_hop.value);
  if (it != entries_.end() && it->second.mac) {
    link_.emit_frame(*it->second.mac, kEtherTypeIpv4, datagram, offload);
    return;
  }
  if (it == entries_.end()) {
    make_room();
    it = entries_.emplace(next_hop.value, Entry{}).first;
    it->second.deadline = now + config_.retransmit_interval;
    it->second.requests_sent = 1;
    send_packet(kOperationRequest, MacAddress::broadcast(), MacAddress{}, next_hop);
    context_.trace.step("arp: resolving {}, packet queued", next_hop);
  }
  Entry& entry = it->second;
  if (entry.queue.size() >= config_.max_queued_per_entry) {
    // Like Linux's unres_qlen: the oldest waiting packet makes room for the newest.
    context_.drop(DropReason::ArpQueueFull);
    entry.queue.pop_front();
  }
  entry.queue.push_back({{datagram.begin(), datagram.end()}, offload});
}

void ArpTable::announce() {
  const Ipv4Address ours = address_;
  send_packet(kOperationRequest, MacAddress::broadcast(), MacAddress{}, ours);
}

void ArpTable::on_timer(Instant now, const std::function<void(Ipv4Address)>& unreachable) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    if (entry.deadline > now) {
      ++it;
      continue;
    }
    if (!entry.mac && entry.requests_sent < config_.max_requests) {
      ++entry.requests_sent;
      entry.deadline = now + config_.retransmit_interval;
      send_packet(kOperationRequest, MacAddress::broadcast(), MacAddress{}, Ipv4Address{it->first});
      ++it;
      continue;
    }
    const bool failed = !entry.mac;
    const Ipv4Address address{it->first};
    if (failed) {
      context_.trace.begin("timer: arp {} unanswered after {} requests", address,
                           entry.requests_sent);
      context_.counters.add(Counter::ArpResolveFailures);
      for (size_t i = 0; i < entry.queue.size(); ++i) {
        context_.drop(DropReason::ArpResolveFailed);
      }
    }
    it = entries_.erase(it);
    // Linux: neigh_invalidate() → ipv4_link_failure() sends the host an ICMP host
    // unreachable, which fails a connection still in SYN-SENT (tcp_v4_err()).
    if (failed) {
      unreachable(address);
      context_.trace.flush();
    }
  }
}

Instant ArpTable::next_deadline() const {
  Instant earliest = Instant::never();
  for (const auto& [ip, entry] : entries_) earliest = std::min(earliest, entry.deadline);
  return earliest;
}

std::optional<MacAddress> ArpTable::lookup(Ipv4Address address) const {
  const auto it = entries_.find(address.value);
  if (it == entries_.end()) return std::nullopt;
  return it->second.mac;
}

void ArpTable::send_packet(uint16_t operation, const MacAddress& dst, const MacAddress& target_mac,
                           Ipv4Address target_ip) {
  uint8_t packet[kArpPacketSize];
  store_be16(packet, kHardwareEthernet);
  store_be16(packet + 2, kEtherTypeIpv4);
  packet[4] = 6;
  packet[5] = 4;
  store_be16(packet + 6, operation);
  std::copy(mac_.bytes.begin(), mac_.bytes.end(), packet + 8);
  store_be32(packet + 14, address_.value);
  std::copy(target_mac.bytes.begin(), target_mac.bytes.end(), packet + 18);
  store_be32(packet + 24, target_ip.value);
  if (operation == kOperationRequest) context_.counters.add(Counter::ArpOutRequests);
  link_.emit_frame(dst, kEtherTypeArp, packet, {});
}

void ArpTable::learn(Ipv4Address ip, const MacAddress& mac, Instant now) {
  if (!entries_.contains(ip.value)) make_room();
  Entry& entry = entries_[ip.value];
  entry.mac = mac;
  entry.deadline = now + config_.entry_lifetime;
  entry.requests_sent = 0;
  // Move the queue out first: emitting can re-enter the table.
  std::deque<Entry::Waiting> waiting;
  waiting.swap(entry.queue);
  for (const auto& [datagram, offload] : waiting) {
    link_.emit_frame(mac, kEtherTypeIpv4, datagram, offload);
  }
}

// Keeps the table within max_entries, evicting the entry closest to expiry.
void ArpTable::make_room() {
  while (!entries_.empty() && entries_.size() >= config_.max_entries) {
    auto victim = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.second.deadline < b.second.deadline;
    });
    for (size_t i = 0; i < victim->second.queue.size(); ++i) {
      context_.drop(DropReason::ArpQueueFull);
    }
    entries_.erase(victim);
    context_.counters.add(Counter::ArpCacheEvictions);
  }
}

}  // namespace tapstack
