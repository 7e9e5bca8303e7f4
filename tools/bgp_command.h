// `tapstack bgp`: a BGP-4 speaker (bgp/) for one peer, over a TCP connection of the stack,
// signed with TCP-MD5 (RFC 2385) when --md5 gives a key that covers the peer.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "bgp/message.h"
#include "stack/time.h"
#include "tools/cli.h"

namespace tapstack::cli {

struct BgpAnnouncement {
  bgp::Prefix prefix;
  std::optional<Ipv4Address> next_hop;  // default: the stack's --addr
};

struct BgpOptions {
  CommonOptions common;
  IpAddress peer;                                  // --peer IP (required): IPv4 or IPv6
  uint32_t local_as = 0;                           // --local-as N (required)
  uint32_t peer_as = 0;                            // --peer-as N (required)
  std::optional<Ipv4Address> router_id;            // --router-id IP; default: IPv4 --addr
  std::vector<Md5KeyOption> md5_keys;              // --md5 PEER[/PREFIX]=KEY..., --md5-key
  std::vector<BgpAnnouncement> announce;           // --announce PREFIX[,next-hop=IP]...
  bool passive = false;                            // --passive: listen on 179, never connect
  uint16_t hold_time = 90;                         // --hold SECONDS: 0 or 3 to 65535
  Duration connect_retry = Duration::seconds(10);  // --connect-retry SECONDS
  bool json = false;                               // --json: routes as JSON lines
};

Parsed<BgpOptions> parse_bgp(std::span<const std::string_view> args);
void print_bgp_help();
// Runs until SIGINT, SIGTERM or SIGHUP; the exit code, having said why on stderr.
int run_bgp(const BgpOptions& options);
// parse_bgp, help, usage error or run_bgp: the entry of tools/tapstack_main.cc's table.
int run_bgp_command(std::span<const std::string_view> args);

}  // namespace tapstack::cli
