// Host-side configuration of network interfaces through rtnetlink (RFC 3549, rtnetlink(7)),
// the messages `ip link`, `ip addr` and `ip neigh` send, without running those programs.
// Everything acts on the network namespace of the calling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"

namespace tapstack {

struct LinkInfo {
  int index = 0;
  std::string name;
  uint32_t mtu = 0;
  MacAddress mac;   // the kernel side's hardware address
  bool up = false;  // administratively up (IFF_UP)
  int master = 0;   // the bridge (or bond, VRF) it is a port of, 0 if none (IFLA_MASTER)
};

// One entry of the kernel's IPv4 neighbour (ARP) table.
struct Neighbour {
  Ipv4Address address;
  std::optional<MacAddress> mac;  // absent while INCOMPLETE or FAILED
  uint16_t state = 0;             // NUD_* bits

  // A usable link-layer address (Linux: NUD_VALID).
  bool is_valid() const;
  // "REACHABLE", "STALE", ... as `ip neigh` prints it.
  std::string state_name() const;
};

// One NETLINK_ROUTE socket. Requests are synchronous: each waits for the kernel's answer
// (bounded by a receive timeout, so a lost answer cannot hang the caller).
class Rtnetlink {
 public:
  static Result<Rtnetlink> open();

  Rtnetlink(Rtnetlink&& other) noexcept;
  Rtnetlink& operator=(Rtnetlink&& other) noexcept;
  Rtnetlink(const Rtnetlink&) = delete;
  Rtnetlink& operator=(const Rtnetlink&) = delete;
  ~Rtnetlink();

  // `ip link show NAME` (Linux: rtnl_getlink())
  Result<LinkInfo> link(std::string_view name);
  // `ip link set NAME up` (Linux: rtnl_setlink() → do_setlink())
  Status set_link_up(std::string_view name);
  // `ip link set NAME mtu MTU`
  Status set_mtu(std::string_view name, uint32_t mtu);
  // `ip addr replace ADDRESS/PREFIX dev NAME`: adding an address already there succeeds.
  // Linux: inet_rtm_newaddr()
  Status add_ipv4_address(std::string_view name, Ipv4Interface address);
  // `ip addr del ADDRESS/PREFIX dev NAME`: exactly that address and prefix length.
  // Linux: inet_rtm_deladdr()
  Status delete_ipv4_address(std::string_view name, Ipv4Interface address);
  // `ip -4 addr show dev NAME`
  Result<std::vector<Ipv4Interface>> ipv4_addresses(std::string_view name);
  // `ip -6 addr replace ADDRESS/PREFIX dev NAME nodad`: usable at once, without duplicate
  // address detection (IFA_F_NODAD); adding an address already there succeeds. IPv6 must be
  // on for the interface (enable_ipv6()). Linux: inet6_rtm_newaddr()
  Status add_ipv6_address(std::string_view name, const Ipv6Interface& address);
  // `ip -6 addr del ADDRESS/PREFIX dev NAME`. Linux: inet6_rtm_deladdr()
  Status delete_ipv6_address(std::string_view name, const Ipv6Interface& address);
  // `ip -6 addr show dev NAME`: every address, the kernel's own fe80:: one included.
  Result<std::vector<Ipv6Interface>> ipv6_addresses(std::string_view name);
  // `ip -4 neigh show dev NAME` (Linux: neigh_dump_info())
  Result<std::vector<Neighbour>> ipv4_neighbours(std::string_view name);

 private:
  explicit Rtnetlink(int fd) : fd_(fd) {}
  // Sends one request and collects the messages of its answer: the data of a dump (until
  // NLMSG_DONE), or nothing but the acknowledgement. The kernel's error becomes an Error.
  Result<std::vector<std::vector<uint8_t>>> transact(std::vector<uint8_t> request,
                                                     std::string_view what);
  Status send_request(std::vector<uint8_t>& request, std::string_view what);
  Result<std::vector<uint8_t>> receive(std::string_view what);

  int fd_ = -1;
  uint32_t sequence_ = 0;
};

// A fresh network namespace has its loopback interface down; this brings it up.
Status bring_loopback_up();

// Turns IPv6 on for interface name in the calling thread's network namespace, as
// `sysctl -w net.ipv6.conf.NAME.disable_ipv6=0` does (written to /proc/sys directly, which
// shows the namespace of the process that opens it). Nothing is written when it is on already.
// Linux: addrconf_sysctl_disable()
Status enable_ipv6(std::string_view name);

}  // namespace tapstack
