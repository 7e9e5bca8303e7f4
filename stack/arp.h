// ARP for IPv4 over Ethernet (RFC 826), with a cache whose entries expire, request
// retransmission with a limit, and a bounded queue of packets waiting for resolution.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/frame.h"
#include "stack/layer_context.h"
#include "stack/time.h"

namespace tapstack {

constexpr size_t kArpPacketSize = 28;

struct ArpConfig {
  Duration retransmit_interval = Duration::seconds(1);  // Linux: retrans_time_ms
  int max_requests = 3;                                 // Linux: mcast_solicit
  Duration entry_lifetime = Duration::seconds(60);      // a reply is trusted this long
  size_t max_entries = 256;
  size_t max_queued_per_entry = 64;  // packets held while resolving (Linux: unres_qlen)
};

class ArpTable {
 public:
  // mac and address: ours. Frames go out through link.
  ArpTable(const ArpConfig& config, const MacAddress& mac, Ipv4Address address,
           LayerContext& context, EthernetOutput& link)
      : config_(config), mac_(mac), address_(address), context_(context), link_(link) {}

  // One ARP packet (the Ethernet payload). Linux: arp_process()
  void input(ByteView packet, Instant now);
  // Sends the IPv4 datagram to next_hop's MAC, resolving it first when needed (the datagram
  // then waits in the entry's queue). Linux: neigh_resolve_output(), __neigh_event_send()
  void send(Ipv4Address next_hop, ByteView datagram, Instant now, const FrameOffload& offload = {});
  // Announces our own address: a request whose sender and target are both us.
  void announce();
  // Retransmits requests, gives up on silent neighbours, expires old entries. Each neighbour
  // given up on is reported to unreachable, after its waiting packets were dropped.
  // Linux: neigh_timer_handler(), neigh_invalidate()
  void on_timer(Instant now, const std::function<void(Ipv4Address)>& unreachable);
  Instant next_deadline() const;
  std::optional<MacAddress> lookup(Ipv4Address address) const;

 private:
  struct Entry {
    std::optional<MacAddress> mac;       // nullopt while resolving
    Instant deadline;                    // next retransmission, or expiry when resolved
    int requests_sent = 0;
    struct Waiting {
      std::vector<uint8_t> datagram;
      FrameOffload offload;
    };
    std::deque<Waiting> queue;  // datagrams waiting for resolution
  };

  void send_packet(uint16_t operation, const MacAddress& dst, const MacAddress& target_mac,
                   Ipv4Address target_ip);
  // Records that `ip` is at `mac` and flushes what waited for it.
  void learn(Ipv4Address ip, const MacAddress& mac, Instant now);
  void make_room();

  ArpConfig config_;
  MacAddress mac_;
  Ipv4Address address_;
  LayerContext& context_;
  EthernetOutput& link_;
  std::unordered_map<uint32_t, Entry> entries_;
};

}  // namespace tapstack
