// Neighbour discovery (RFC 4861) and Duplicate Address Detection (RFC 4862 §5.4). Read with
// it: RFC 4861 §4.3/§4.4 (the two messages), §7.1 (their validation), §7.2 (address
// resolution: §7.2.3 solicitation received, §7.2.4 advertisement sent, §7.2.5 advertisement
// received), §7.3 (neighbour unreachability detection and the states of Appendix C).
#include "stack/ndisc.h"

#include <algorithm>

#include "stack/icmp6.h"

namespace tapstack {
namespace {

constexpr uint8_t kNdiscHopLimit = 255;
constexpr size_t kNdiscMinSize = 24;  // type, code, checksum, flags/reserved, target
constexpr uint8_t kOptionSourceLinkAddress = 1;
constexpr uint8_t kOptionTargetLinkAddress = 2;
constexpr size_t kLinkAddressOptionSize = 8;  // Ethernet: type, length 1, the MAC
constexpr uint8_t kFlagRouter = 0x80;
constexpr uint8_t kFlagSolicited = 0x40;
constexpr uint8_t kFlagOverride = 0x20;
const MacAddress kAllNodesMac{{0x33, 0x33, 0, 0, 0, 1}};

IpAddress address_at(const uint8_t* p) {
  return IpAddress::ipv6(std::span<const uint8_t, 16>(p, 16));
}

// ff02::1:ff00:0/104 (RFC 4291 §2.7.1). Linux: ipv6_addr_is_solict_mult()
bool is_solicited_node_multicast(const IpAddress& a) {
  const ByteView b = a.bytes();
  static constexpr uint8_t kPrefix[13] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  return !a.is_ipv4() && std::equal(kPrefix, kPrefix + 13, b.begin());
}

// The options after the fixed part (RFC 4861 §4.6): none of length 0 or running past the
// message, a link-layer address option exactly one Ethernet address long; the first of
// `wanted` kept. false when the message is to be dropped. Linux: ndisc_parse_options()
bool parse_options(ByteView options, uint8_t wanted, std::optional<MacAddress>& link_address) {
  while (!options.empty()) {
    if (options.size() < 2 || options[1] == 0) return false;
    const size_t length = size_t{options[1]} * 8;
    if (length > options.size()) return false;
    const uint8_t type = options[0];
    if (type == kOptionSourceLinkAddress || type == kOptionTargetLinkAddress) {
      if (length != kLinkAddressOptionSize) return false;
      if (type == wanted && !link_address) {
        MacAddress mac;
        std::copy_n(options.data() + 2, 6, mac.bytes.begin());
        link_address = mac;
      }
    }
    options = options.subspan(length);
  }
  return true;
}

}  // namespace

std::string_view neighbour_state_name(NeighbourState state) {
  switch (state) {
    case NeighbourState::Incomplete:
      return "INCOMPLETE";
    case NeighbourState::Reachable:
      return "REACHABLE";
    case NeighbourState::Stale:
      return "STALE";
    case NeighbourState::Delay:
      return "DELAY";
    case NeighbourState::Probe:
      return "PROBE";
  }
  return "?";
}

Ndisc::Ndisc(const NdiscConfig& config, const MacAddress& mac, LayerContext& context,
             EthernetOutput& link, Ipv6Output& ip)
    : config_(config), mac_(mac), context_(context), link_(link), ip_(ip) {}

// A trace step of the line being built, or a line of its own (on a timer).
template <typename... Args>
void Ndisc::note(fmt::format_string<Args...> format, Args&&... args) {
  if (!context_.trace.enabled()) return;
  const std::string text = fmt::format(format, std::forward<Args>(args)...);
  if (context_.trace.in_line()) {
    context_.trace.step("{}", text);
  } else {
    context_.trace.line("{}", text);
  }
}

Ndisc::Key Ndisc::key_of(const IpAddress& address) {
  Key key{};
  const ByteView bytes = address.bytes();
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

Ndisc::OurAddress* Ndisc::find_address(const IpAddress& address) {
  const auto it = std::find_if(addresses_.begin(), addresses_.end(),
                               [&](const OurAddress& a) { return a.address == address; });
  return it == addresses_.end() ? nullptr : &*it;
}

const Ndisc::OurAddress* Ndisc::find_address(const IpAddress& address) const {
  return const_cast<Ndisc*>(this)->find_address(address);
}

// RFC 4862 §5.4: the address is tentative while dad_transmits probes go unanswered.
// Linux: addrconf_dad_start(), addrconf_dad_kick()
void Ndisc::add_address(const IpAddress& address, Instant now) {
  if (find_address(address)) return;
  if (config_.dad_transmits <= 0) {
    addresses_.push_back({address, false, 0, Instant::never()});
    return;
  }
  addresses_.push_back({address, true, 1, now + config_.retransmit_interval});
  note("ndisc: {} tentative, duplicate address detection", address);
  send_solicitation({ipv6_unspecified(), solicited_node_multicast(address), address}, now);
}

bool Ndisc::owns(const IpAddress& address) const {
  const OurAddress* ours = find_address(address);
  return ours && !ours->tentative;
}

bool Ndisc::tentative(const IpAddress& address) const {
  const OurAddress* ours = find_address(address);
  return ours && ours->tentative;
}

bool Ndisc::joined(const MacAddress& group) const {
  if (group == kAllNodesMac) return true;
  return std::any_of(addresses_.begin(), addresses_.end(), [&](const OurAddress& a) {
    return ipv6_multicast_mac(solicited_node_multicast(a.address)) == group;
  });
}

// RFC 4861 §7.1.1 and §7.1.2, then by type. Linux: ndisc_rcv()
void Ndisc::input(const Ipv6Datagram& datagram, ByteView message, Instant now) {
  const uint8_t type = message.empty() ? 0 : message[0];
  if (type != kIcmp6NeighborSolicitation && type != kIcmp6NeighborAdvertisement) {
    // Router discovery and redirects: a static gateway is configured instead.
    context_.trace.step("ndisc: type {} ignored", type);
    return;
  }
  if (datagram.header.hop_limit != kNdiscHopLimit || message[1] != 0 ||
      message.size() < kNdiscMinSize) {
    return context_.drop(DropReason::NdiscBadMessage);
  }
  const IpAddress target = address_at(message.data() + 8);
  if (is_ipv6_multicast(target)) return context_.drop(DropReason::NdiscBadMessage);
  std::optional<MacAddress> link_address;
  const uint8_t wanted =
      type == kIcmp6NeighborSolicitation ? kOptionSourceLinkAddress : kOptionTargetLinkAddress;
  if (!parse_options(message.subspan(kNdiscMinSize), wanted, link_address)) {
    return context_.drop(DropReason::NdiscBadMessage);
  }
  if (type == kIcmp6NeighborSolicitation) {
    // §7.1.1: a DAD probe (from ::) goes to a solicited-node group and names no source MAC.
    if (is_ipv6_unspecified(datagram.header.source) &&
        (!is_solicited_node_multicast(datagram.header.destination) || link_address)) {
      return context_.drop(DropReason::NdiscBadMessage);
    }
    return input_solicitation(datagram, target, link_address, now);
  }
  // §7.1.2: an advertisement to a group is never solicited.
  const uint8_t flags = message[4];
  if (is_ipv6_multicast(datagram.header.destination) && (flags & kFlagSolicited)) {
    return context_.drop(DropReason::NdiscBadMessage);
  }
  input_advertisement(datagram, target, flags, link_address, now);
}

// RFC 4861 §7.2.3, RFC 4862 §5.4.3. Linux: ndisc_recv_ns()
void Ndisc::input_solicitation(const Ipv6Datagram& datagram, const IpAddress& target,
                               const std::optional<MacAddress>& source_mac, Instant now) {
  const IpAddress& source = datagram.header.source;
  const bool dad = is_ipv6_unspecified(source);
  context_.trace.step("ndisc: solicitation from {} for {}", source, target);
  const OurAddress* ours = find_address(target);
  if (!ours) return context_.drop(DropReason::NdiscNotForUs);
  if (ours->tentative) {
    // Another node probes for the address we probe for: neither may have it. A node
    // resolving a tentative address is ignored. Linux: addrconf_dad_failure()
    if (dad) {
      dad_failed(target, "another node probing for it at the same time");
    } else {
      context_.trace.step("ndisc: target tentative, ignored");
    }
    return;
  }
  if (!dad && source_mac) learn_from_solicitation(source, *source_mac, now);
  // §7.2.4: solicited and to the asker; a DAD probe's answer goes to all nodes, unsolicited.
  send_advertisement(target, dad ? ipv6_all_nodes() : source, target, !dad, now);
}

// §7.2.3: the asker's address, STALE until used. Linux: neigh_update(..., NUD_STALE,
// NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE)
void Ndisc::learn_from_solicitation(const IpAddress& neighbour, const MacAddress& mac,
                                    Instant now) {
  const Key key = key_of(neighbour);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    if (!make_room()) {
      context_.trace.step("ndisc: cache full, {} not learned", neighbour);
      return;
    }
    it = cache_.emplace(key, Entry{}).first;
    it->second.created = now;
    it->second.used = now;
  } else if (it->second.state != NeighbourState::Incomplete && it->second.mac == mac) {
    return;
  }
  Entry& entry = it->second;
  entry.mac = mac;
  set_state(key, entry, NeighbourState::Stale, now);
  if (entry.queue.empty()) return;
  // What waited goes out now, through a STALE entry: DELAY (§7.3.3). Linux: neigh_update()
  // sends the arp_queue through neigh_resolve_output().
  entry.used = now;
  set_state(key, entry, NeighbourState::Delay, now);
  flush_queue(entry);
}

// RFC 4861 §7.2.5, and RFC 4862 §5.4.4 for a tentative target. Linux: ndisc_recv_na()
void Ndisc::input_advertisement(const Ipv6Datagram& datagram, const IpAddress& target,
                                uint8_t flags, const std::optional<MacAddress>& target_mac,
                                Instant now) {
  const bool solicited = flags & kFlagSolicited;
  const bool override = flags & kFlagOverride;
  context_.trace.step("ndisc: advertisement for {}, flags{}{}{}", target,
                      (flags & kFlagRouter) ? " router" : "", solicited ? " solicited" : "",
                      override ? " override" : "");
  if (target_mac) context_.trace.step("ndisc: {} is at {}", target, *target_mac);
  if (const OurAddress* ours = find_address(target)) {
    if (ours->tentative) {
      dad_failed(target,
                 target_mac ? target_mac->to_string() : fmt::format("{}", datagram.header.source));
    } else {
      context_.trace.step("ndisc: someone advertises our address, ignored");
    }
    return;
  }
  const Key key = key_of(target);
  const auto it = cache_.find(key);
  if (it == cache_.end()) {
    context_.trace.step("ndisc: no entry for {}, ignored", target);
    return;
  }
  Entry& entry = it->second;
  if (entry.state == NeighbourState::Incomplete) {
    if (!target_mac) return context_.trace.step("ndisc: no target address, ignored");
    entry.mac = *target_mac;
    set_state(key, entry, solicited ? NeighbourState::Reachable : NeighbourState::Stale, now);
    flush_queue(entry);
    return;
  }
  const bool changed = target_mac && *target_mac != entry.mac;
  if (!override && changed) {
    // Keep the address we have, but no longer trust it.
    if (entry.state == NeighbourState::Reachable) {
      set_state(key, entry, NeighbourState::Stale, now);
    }
    return;
  }
  if (target_mac) entry.mac = *target_mac;
  if (solicited) {
    set_state(key, entry, NeighbourState::Reachable, now);
  } else if (changed) {
    set_state(key, entry, NeighbourState::Stale, now);
  }
}

// RFC 4862 §5.4.5: the address is not ours to use. Linux: addrconf_dad_failure()
void Ndisc::dad_failed(const IpAddress& address, const std::string& holder) {
  const std::string failure = fmt::format("{} is in use by {}", address, holder);
  note("ndisc: duplicate address detection failed: {}", failure);
  dad_failures_.push_back(failure);
  context_.counters.add(Counter::NdiscDadFailures);
  std::erase_if(addresses_, [&](const OurAddress& a) { return a.address == address; });
}

// Every state change passes here: it sets the entry's one deadline. Linux: neigh_update(),
// the state changes of neigh_timer_handler()
void Ndisc::set_state(const Key& key, Entry& entry, NeighbourState state, Instant now) {
  if (entry.state != state) {
    note("ndisc: {} {} → {}", IpAddress::ipv6(key), neighbour_state_name(entry.state),
         neighbour_state_name(state));
  }
  entry.state = state;
  switch (state) {
    case NeighbourState::Incomplete:
    case NeighbourState::Probe:
      entry.deadline = now + config_.retransmit_interval;
      break;
    case NeighbourState::Reachable:
      entry.probes = 0;
      entry.deadline = now + config_.reachable_time;
      break;
    case NeighbourState::Stale:
      entry.probes = 0;
      entry.deadline = entry.used + config_.stale_lifetime;
      break;
    case NeighbourState::Delay:
      entry.deadline = now + config_.delay_first_probe;
      break;
  }
}

// Sends what waited for the entry's address. Linux: the arp_queue loop of neigh_update()
void Ndisc::flush_queue(Entry& entry) {
  std::deque<Entry::Waiting> waiting;
  waiting.swap(entry.queue);
  for (const auto& [packet, offload] : waiting) {
    link_.emit_frame(entry.mac, kEtherTypeIpv6, packet, offload);
  }
}

// Like Linux's unres_qlen: the oldest waiting packet makes room for the newest.
void Ndisc::enqueue(Entry& entry, ByteView packet, const FrameOffload& offload) {
  if (config_.max_queued_per_entry == 0) return context_.drop(DropReason::NdiscQueueFull);
  if (entry.queue.size() >= config_.max_queued_per_entry) {
    context_.drop(DropReason::NdiscQueueFull);
    entry.queue.pop_front();
  }
  entry.queue.push_back({{packet.begin(), packet.end()}, offload});
}

// Keeps the cache within max_entries by evicting the oldest entry not being resolved; false
// when every entry is (a new one cannot be made, as Linux's neigh_alloc() fails above
// gc_thresh3). Linux: neigh_forced_gc()
bool Ndisc::make_room() {
  while (!cache_.empty() && cache_.size() >= config_.max_entries) {
    auto victim = cache_.end();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->second.state == NeighbourState::Incomplete) continue;
      if (victim == cache_.end() || it->second.created < victim->second.created) victim = it;
    }
    if (victim == cache_.end()) return false;
    note("ndisc: {} evicted", IpAddress::ipv6(victim->first));
    cache_.erase(victim);
    context_.counters.add(Counter::NdiscCacheEvictions);
  }
  return config_.max_entries > 0;
}

// Linux: neigh_resolve_output(), __neigh_event_send()
void Ndisc::send(const IpAddress& next_hop, ByteView packet, Instant now,
                 const FrameOffload& offload) {
  if (is_ipv6_multicast(next_hop)) {
    return link_.emit_frame(ipv6_multicast_mac(next_hop), kEtherTypeIpv6, packet, offload);
  }
  const Key key = key_of(next_hop);
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    Entry& entry = it->second;
    entry.used = now;
    if (entry.state == NeighbourState::Incomplete) return enqueue(entry, packet, offload);
    // §7.3.3: the first packet through a STALE entry starts the wait for a confirmation.
    if (entry.state == NeighbourState::Stale) set_state(key, entry, NeighbourState::Delay, now);
    return link_.emit_frame(entry.mac, kEtherTypeIpv6, packet, offload);
  }
  if (!make_room()) return context_.drop(DropReason::NdiscCacheFull);
  Entry& entry = cache_.emplace(key, Entry{}).first->second;
  entry.created = now;
  entry.used = now;
  entry.probes = 1;
  set_state(key, entry, NeighbourState::Incomplete, now);
  enqueue(entry, packet, offload);
  note("ndisc: resolving {}, packet queued", next_hop);
  // Last: sending may come back here.
  send_solicitation(
      {solicitation_source(entry, next_hop), solicited_node_multicast(next_hop), next_hop}, now);
}

void Ndisc::confirm(const IpAddress& neighbour, Instant now) {
  const Key key = key_of(neighbour);
  const auto it = cache_.find(key);
  if (it == cache_.end() || it->second.state == NeighbourState::Incomplete) return;
  set_state(key, it->second, NeighbourState::Reachable, now);
}

// DAD's probes and verdicts, then each due entry: INCOMPLETE and PROBE solicit again or fail,
// REACHABLE turns STALE, STALE unused goes, DELAY starts probing. What is to be sent or
// reported is collected first and done after the walk. Linux: addrconf_dad_work(),
// neigh_timer_handler(), neigh_periodic_work()
void Ndisc::on_timer(Instant now, const std::function<void(const IpAddress&)>& unreachable) {
  std::vector<Solicitation> solicitations;
  std::vector<IpAddress> failed;
  for (OurAddress& ours : addresses_) {
    if (ours.deadline > now) continue;
    if (ours.probes_sent < config_.dad_transmits) {
      ++ours.probes_sent;
      ours.deadline = now + config_.retransmit_interval;
      solicitations.push_back(
          {ipv6_unspecified(), solicited_node_multicast(ours.address), ours.address});
    } else {
      ours.tentative = false;
      ours.deadline = Instant::never();
      note("ndisc: {} passed duplicate address detection", ours.address);
    }
  }
  for (auto it = cache_.begin(); it != cache_.end();) {
    const Key& key = it->first;
    Entry& entry = it->second;
    const IpAddress neighbour = IpAddress::ipv6(key);
    if (entry.deadline > now) {
      ++it;
      continue;
    }
    bool remove = false;
    switch (entry.state) {
      case NeighbourState::Incomplete:
      case NeighbourState::Probe: {
        const bool incomplete = entry.state == NeighbourState::Incomplete;
        const int limit = incomplete ? config_.max_multicast_solicit : config_.max_unicast_solicit;
        if (entry.probes < limit) {
          ++entry.probes;
          set_state(key, entry, entry.state, now);
          solicitations.push_back({solicitation_source(entry, neighbour),
                                   incomplete ? solicited_node_multicast(neighbour) : neighbour,
                                   neighbour});
          break;
        }
        // Linux: neigh_invalidate(): the waiting packets go, the failure is reported.
        context_.trace.begin("timer: ndisc {} unanswered after {} solicitations", neighbour,
                             entry.probes);
        context_.counters.add(Counter::NdiscResolveFailures);
        for (size_t i = 0; i < entry.queue.size(); ++i) {
          context_.drop(DropReason::NdiscResolveFailed);
        }
        context_.trace.flush();
        failed.push_back(neighbour);
        remove = true;
        break;
      }
      case NeighbourState::Reachable:
        set_state(key, entry, NeighbourState::Stale, now);
        remove = entry.deadline <= now;
        break;
      case NeighbourState::Stale:
        remove = true;
        break;
      case NeighbourState::Delay:
        entry.probes = 1;
        set_state(key, entry, NeighbourState::Probe, now);
        solicitations.push_back({solicitation_source(entry, neighbour), neighbour, neighbour});
        break;
    }
    if (remove) {
      if (entry.state == NeighbourState::Stale) note("ndisc: {} unused, removed", neighbour);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
  for (const Solicitation& solicitation : solicitations) send_solicitation(solicitation, now);
  for (const IpAddress& neighbour : failed) unreachable(neighbour);
}

Instant Ndisc::next_deadline() const {
  Instant earliest = Instant::never();
  for (const OurAddress& ours : addresses_) earliest = std::min(earliest, ours.deadline);
  for (const auto& [key, entry] : cache_) earliest = std::min(earliest, entry.deadline);
  return earliest;
}

std::optional<MacAddress> Ndisc::lookup(const IpAddress& neighbour) const {
  const auto it = cache_.find(key_of(neighbour));
  if (it == cache_.end() || it->second.state == NeighbourState::Incomplete) return std::nullopt;
  return it->second.mac;
}

std::optional<NeighbourState> Ndisc::state(const IpAddress& neighbour) const {
  const auto it = cache_.find(key_of(neighbour));
  if (it == cache_.end()) return std::nullopt;
  return it->second.state;
}

size_t Ndisc::entries() const {
  return cache_.size();
}

// RFC 7.2.2: from the source of the packet that prompted the solicitation when it is ours,
// else from the address the IP layer picks. Linux: ndisc_solicit()
std::optional<IpAddress> Ndisc::solicitation_source(const Entry& entry,
                                                    const IpAddress& target) const {
  if (!entry.queue.empty() && entry.queue.front().packet.size() >= kIpv6HeaderSize) {
    const IpAddress source = address_at(entry.queue.front().packet.data() + 8);
    if (owns(source)) return source;
  }
  return ip_.ip6_source_for(target);
}

// RFC 4861 §4.3: our MAC in a source link-layer address option, but not in a DAD probe (from
// ::, RFC 4862 §5.4.2). Linux: ndisc_send_ns()
void Ndisc::send_solicitation(const Solicitation& solicitation, Instant now) {
  if (!solicitation.source) {
    note("ndisc: no address to solicit {} from", solicitation.target);
    return;
  }
  const IpAddress& source = *solicitation.source;
  const bool with_option = !is_ipv6_unspecified(source);
  uint8_t message[kNdiscMinSize + kLinkAddressOptionSize] = {};
  message[0] = kIcmp6NeighborSolicitation;
  const ByteView target = solicitation.target.bytes();
  std::copy(target.begin(), target.end(), message + 8);
  size_t size = kNdiscMinSize;
  if (with_option) {
    message[size] = kOptionSourceLinkAddress;
    message[size + 1] = 1;
    std::copy(mac_.bytes.begin(), mac_.bytes.end(), message + size + 2);
    size += kLinkAddressOptionSize;
  }
  store_be16(message + 2, icmp6_checksum(source, solicitation.destination, {message, size}));
  const Status sent = ip_.send_ip6_payload(source, solicitation.destination, kProtocolIcmpv6,
                                           {message, size}, now, kNdiscHopLimit);
  if (!sent) return;
  context_.counters.add(Counter::Icmp6OutMsgs);
  context_.counters.add(Counter::Icmp6OutNeighborSolicits);
}

// RFC 4861 §4.4, §7.2.4: a host's advertisement (no router flag) that overrides (the address
// is ours, not anycast nor proxied), with our MAC as the target link-layer address option.
// Linux: ndisc_send_na()
void Ndisc::send_advertisement(const IpAddress& source, const IpAddress& destination,
                               const IpAddress& target, bool solicited, Instant now) {
  uint8_t message[kNdiscMinSize + kLinkAddressOptionSize] = {};
  message[0] = kIcmp6NeighborAdvertisement;
  message[4] = static_cast<uint8_t>(kFlagOverride | (solicited ? kFlagSolicited : 0));
  const ByteView target_bytes = target.bytes();
  std::copy(target_bytes.begin(), target_bytes.end(), message + 8);
  message[kNdiscMinSize] = kOptionTargetLinkAddress;
  message[kNdiscMinSize + 1] = 1;
  std::copy(mac_.bytes.begin(), mac_.bytes.end(), message + kNdiscMinSize + 2);
  store_be16(message + 2, icmp6_checksum(source, destination, message));
  context_.trace.step("ndisc: advertise {} is at {} → {}", target, mac_, destination);
  const Status sent =
      ip_.send_ip6_payload(source, destination, kProtocolIcmpv6, message, now, kNdiscHopLimit);
  if (!sent) return;
  context_.counters.add(Counter::Icmp6OutMsgs);
  context_.counters.add(Counter::Icmp6OutNeighborAdvertisements);
}

}  // namespace tapstack
