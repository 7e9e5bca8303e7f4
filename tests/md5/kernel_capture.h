// Segments signed by the Linux kernel itself: two kernel TCP sockets in a private network
// namespace, each with TCP_MD5SIG set for the other (as the seed's server.c and client.c do),
// exchange a few bytes over lo while an AF_PACKET socket on lo records every packet. Only
// documentation addresses are used: 198.18.0.0/15 and 2001:db8::/32, on lo, in a namespace
// that dies with the process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "md5opt/address.h"
#include "md5opt/error.h"

namespace tapstack::md5test {

struct Exchange {
  md5opt::IpAddress client;
  md5opt::IpAddress server;
  std::uint16_t client_port = 0;
  std::uint16_t server_port = 0;
  std::string key;
  std::string request;  // client → server, then the client half-closes
  std::string reply;    // server → client, then the server closes
};

// 198.18.0.2:40179 → 198.18.0.1:179 with a 22-byte key.
Exchange ipv4_exchange();
// [2001:db8::2]:40179 → [2001:db8::1]:179 with an 80-byte key, the longest Linux allows.
Exchange ipv6_exchange();

// Moves this process (single-threaded) into a new network namespace, brings lo up and puts
// the exchanges' addresses on it. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN).
md5opt::Status enter_capture_namespace();

using Packets = std::vector<std::vector<std::uint8_t>>;

// Runs the exchange between two kernel sockets and returns every IP packet of it that lo
// carried, in order, each once (the Ethernet header lo gives AF_PACKET, all zero, removed).
md5opt::Result<Packets> capture_exchange(const Exchange& exchange);

// Runs `act` while a kernel socket listens at exchange.server:server_port with exchange.key
// for exchange.client (act gets the listening descriptor), and returns the packets lo carried
// between the two addresses to or from that port (from any client port), in order.
md5opt::Result<Packets> capture_around_listener(const Exchange& exchange,
                                                const std::function<void(int listener)>& act);

}  // namespace tapstack::md5test
