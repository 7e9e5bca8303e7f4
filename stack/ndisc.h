// Neighbour discovery for IPv6 over Ethernet (RFC 4861) and Duplicate Address Detection
// (RFC 4862 §5.4): our addresses (tentative until DAD passes), the solicited-node groups we
// join, Neighbor Solicitations answered with Advertisements, and a neighbour cache with
// Linux's states (INCOMPLETE, REACHABLE, STALE, DELAY, PROBE), a bounded size and a bounded
// queue of packets waiting for resolution; a neighbour that never answers is reported, as
// ARP's are, so that its connections fail with EHOSTUNREACH. Router Advertisements are counted
// and ignored (a static gateway is configured instead).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/frame.h"
#include "stack/ipv6.h"
#include "stack/layer_context.h"
#include "stack/time.h"

namespace tapstack {

struct NdiscConfig {
  Duration retransmit_interval = Duration::seconds(1);  // RetransTimer (Linux: retrans_time_ms)
  int max_multicast_solicit = 3;                        // MAX_MULTICAST_SOLICIT
  int max_unicast_solicit = 3;                          // MAX_UNICAST_SOLICIT
  Duration reachable_time = Duration::seconds(30);      // REACHABLE_TIME (Linux: base_reachable_time)
  Duration delay_first_probe = Duration::seconds(5);    // DELAY_FIRST_PROBE_TIME
  Duration stale_lifetime = Duration::seconds(60);      // a STALE entry unused this long goes (gc)
  size_t max_entries = 256;                             // Linux: gc_thresh3 (per table)
  size_t max_queued_per_entry = 64;                     // Linux: unres_qlen
  int dad_transmits = 1;                                // DupAddrDetectTransmits; 0: no DAD
};

enum class NeighbourState { Incomplete, Reachable, Stale, Delay, Probe };
std::string_view neighbour_state_name(NeighbourState state);  // "REACHABLE", as `ip -6 neigh`

class Ndisc {
 public:
  // mac: ours. Neighbour discovery messages go out through ip (hop limit 255), data packets
  // to resolved neighbours through link.
  Ndisc(const NdiscConfig& config, const MacAddress& mac, LayerContext& context,
        EthernetOutput& link, Ipv6Output& ip);

  // Adds one of our unicast addresses: tentative (DAD runs: a probe from :: now and every
  // retransmit interval) until dad_transmits probes went unanswered; joins its solicited-node
  // group at once. Linux: addrconf_dad_start()
  void add_address(const IpAddress& address, Instant now);
  // An address of ours, DAD passed (Linux: ipv6_chk_addr() without IFA_F_TENTATIVE).
  bool owns(const IpAddress& address) const;
  bool tentative(const IpAddress& address) const;
  // Whether frames to this Ethernet group are for us: all-nodes and the solicited-node groups
  // of our addresses.
  bool joined(const MacAddress& group) const;
  // The addresses whose DAD failed, with who answered for it: "2001:db8::2 is in use by
  // 02:00:00:00:00:07". Empty while all is well.
  const std::vector<std::string>& dad_failures() const { return dad_failures_; }

  // A Neighbor Solicitation or Advertisement (or an RS, RA or Redirect, counted and ignored);
  // message: the ICMPv6 message, checksum already verified and counted by type (Icmp6In*) by
  // Icmp6. Linux: ndisc_rcv()
  void input(const Ipv6Datagram& datagram, ByteView message, Instant now);
  // Sends the IPv6 packet (whole, header included) to next_hop's MAC, resolving it first when
  // needed: the packet waits in the entry's queue. Linux: neigh_resolve_output()
  void send(const IpAddress& next_hop, ByteView packet, Instant now,
            const FrameOffload& offload = {});
  // The upper layer saw the neighbour answer (TCP: an ACK that moved snd_una): REACHABLE
  // again without a probe. Linux: neigh_confirm()
  void confirm(const IpAddress& neighbour, Instant now);
  // Retransmits solicitations, runs DAD, moves entries through their states, gives up on
  // silent neighbours (each reported to unreachable after its waiting packets were dropped).
  // Linux: neigh_timer_handler(), addrconf_dad_timer()
  void on_timer(Instant now, const std::function<void(const IpAddress&)>& unreachable);
  Instant next_deadline() const;

  std::optional<MacAddress> lookup(const IpAddress& neighbour) const;
  std::optional<NeighbourState> state(const IpAddress& neighbour) const;
  size_t entries() const;

 private:
  // One of our addresses, tentative while DAD runs. Linux: struct inet6_ifaddr
  struct OurAddress {
    IpAddress address;
    bool tentative = false;
    int probes_sent = 0;
    Instant deadline = Instant::never();  // the next DAD probe, or the end of DAD
  };
  // A neighbour. Linux: struct neighbour
  struct Entry {
    NeighbourState state = NeighbourState::Incomplete;
    MacAddress mac;  // none while INCOMPLETE
    Instant deadline = Instant::never();  // the entry's next timer event, exact
    Instant created;
    Instant used;    // the last packet sent through it (Linux: neighbour::used)
    int probes = 0;  // solicitations sent while INCOMPLETE or PROBE
    struct Waiting {
      std::vector<uint8_t> packet;
      FrameOffload offload;
    };
    std::deque<Waiting> queue;  // packets waiting for resolution (INCOMPLETE only)
  };
  using Key = std::array<uint8_t, 16>;
  // A Neighbor Solicitation decided on while walking the cache, sent once the walk is over
  // (sending can re-enter send()).
  struct Solicitation {
    std::optional<IpAddress> source;
    IpAddress destination;
    IpAddress target;
  };

  static Key key_of(const IpAddress& address);
  OurAddress* find_address(const IpAddress& address);
  const OurAddress* find_address(const IpAddress& address) const;
  void input_solicitation(const Ipv6Datagram& datagram, const IpAddress& target,
                          const std::optional<MacAddress>& source_mac, Instant now);
  void input_advertisement(const Ipv6Datagram& datagram, const IpAddress& target, uint8_t flags,
                           const std::optional<MacAddress>& target_mac, Instant now);
  void learn_from_solicitation(const IpAddress& neighbour, const MacAddress& mac, Instant now);
  void dad_failed(const IpAddress& address, const std::string& holder);
  void set_state(const Key& key, Entry& entry, NeighbourState state, Instant now);
  void flush_queue(Entry& entry);
  void enqueue(Entry& entry, ByteView packet, const FrameOffload& offload);
  bool make_room();
  std::optional<IpAddress> solicitation_source(const Entry& entry, const IpAddress& target) const;
  void send_solicitation(const Solicitation& solicitation, Instant now);
  void send_advertisement(const IpAddress& source, const IpAddress& destination,
                          const IpAddress& target, bool solicited, Instant now);
  template <typename... Args>
  void note(fmt::format_string<Args...> format, Args&&... args);

  NdiscConfig config_;
  MacAddress mac_;
  LayerContext& context_;
  EthernetOutput& link_;
  Ipv6Output& ip_;
  std::vector<std::string> dad_failures_;
  std::vector<OurAddress> addresses_;
  std::map<Key, Entry> cache_;
};

}  // namespace tapstack
