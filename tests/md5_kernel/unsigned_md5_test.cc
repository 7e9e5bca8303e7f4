// The TCP-MD5 cases of Linux's tools/testing/selftests/net/tcp_ao/unsigned-md5.c (the cases
// without TCP-AO, which this kernel lacks), with the kernel as our peer. Each row is a server
// and a client configuration and what must happen: the connection forms (signed or not), or
// the server drops the SYNs and counts them under one counter. Every row runs twice: the kernel
// serving our client, where the kernel's counters are the oracle that the row is right, and the
// stack serving a kernel client, where our counters must do what the kernel's did.
//
// The selftest's second and third client addresses (client2, client3) become a key for another
// host, 198.18.0.3: a server key that does not cover the client.
#include <doctest/doctest.h>

#include <optional>
#include <string_view>
#include <vector>

#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

constexpr Duration kForms = Duration::seconds(5);
// The selftest's md5_password.
constexpr const char* kPassword =
    "Some evil genius, enemy to mankind, must have been the first contriver.";

// Whom a key is for, as the selftest writes it.
enum class KeyFor {
  Nobody,     // no key at all
  Any,        // INADDR_ANY with prefix 0: every peer
  Client,     // the client's own address (this_ip_dest)
  OtherHost,  // another client's address (client3)
};

struct Case {
  std::string_view name;
  KeyFor server;
  KeyFor client;
  std::optional<Md5Drop> drop;   // what the server counts per SYN; nullopt: it connects
  bool signed_segments = false;  // when it connects: whether the segments carry the option
};

const std::vector<Case> kCases = {
    {"MD5 server (INADDR_ANY): MD5 client", KeyFor::Any, KeyFor::Any, std::nullopt, true},
    {"MD5 server (INADDR_ANY): no sign client", KeyFor::Any, KeyFor::Nobody, Md5Drop::NotFound},
    {"no sign server: MD5 client", KeyFor::Nobody, KeyFor::Any, Md5Drop::Unexpected},
    {"no sign server: no sign client", KeyFor::Nobody, KeyFor::Nobody, std::nullopt, false},
    {"MD5 server (other host): no sign client (unmatched)", KeyFor::OtherHost, KeyFor::Nobody,
     std::nullopt, false},
    {"MD5 server (this client): no sign client (matching MD5)", KeyFor::Client, KeyFor::Nobody,
     Md5Drop::NotFound},
    {"MD5 server (other host): MD5 client (non-matching)", KeyFor::OtherHost, KeyFor::Any,
     Md5Drop::Unexpected},
};

// Any is the family's unspecified address with prefix 0 (INADDR_ANY or in6addr_any).
std::vector<PeerKey> keys_for(KeyFor key_for, const IpAddress& client) {
  const bool ipv4 = client.is_ipv4();
  const uint8_t whole = ipv4 ? 32 : 128;
  switch (key_for) {
    case KeyFor::Nobody:
      return {};
    case KeyFor::Any:
      return {{ipv4 ? IpAddress(Ipv4Address{}) : *IpAddress::parse("::"), 0, kPassword}};
    case KeyFor::Client:
      return {{client, whole, kPassword}};
    case KeyFor::OtherHost:
      return {{ipv4 ? IpAddress(Ipv4Address::from_octets(198, 18, 0, 3))
                    : *IpAddress::parse("2001:db8::3"),
               whole, kPassword}};
  }
  return {};
}

// The client's keys (Nobody or Any) name no address of the client's own.
KeyPlan key_plan(const Case& row, Listener server, const TapRig& rig) {
  const auto client_keys = keys_for(row.client, rig.kernel_address());
  if (server == Listener::Kernel) return {keys_for(row.server, rig.stack_address()), client_keys};
  return {client_keys, keys_for(row.server, rig.kernel_address())};
}

void check_case(const Case& row, Listener server, const Outcome& outcome) {
  const FrameDirection to_server =
      server == Listener::Stack ? FrameDirection::Received : FrameDirection::Sent;
  const Md5Counters& server_counters = server == Listener::Stack ? outcome.stack : outcome.kernel;
  const Md5Counters& client_counters = server == Listener::Stack ? outcome.kernel : outcome.stack;
  CHECK(client_counters == Md5Counters{});
  if (!row.drop) {
    CHECK(outcome.connected);
    CHECK(server_counters == Md5Counters{});
    CHECK(all_segments(outcome.segments, row.signed_segments));
    return;
  }
  CHECK_FALSE(outcome.connected);
  const size_t syns = outcome.count(to_server);
  CHECK(syns >= 2);
  CHECK(outcome.segments.size() == syns);  // the server answered nothing
  CHECK(server_counters == Md5Counters::only(*row.drop, syns));
}

void run_matrix(TapRig& rig) {
  uint16_t port = 7010;
  for (const Listener server : {Listener::Kernel, Listener::Stack}) {
    for (const Case& row : kCases) {
      CAPTURE(to_string(server));
      CAPTURE(row.name);
      const Outcome outcome = attempt_connection(rig, server, port++, key_plan(row, server, rig),
                                                 row.drop ? kNeverForms : kForms);
      check_case(row, server, outcome);
    }
  }
}

TEST_CASE("unsigned-md5.c, TCP-MD5 cases: kernel server and stack client, then the reverse") {
  TapRig rig;
  run_matrix(rig);
}

// The selftest runs every case over IPv6 too (its -6 variant): the same rows, keys for
// in6addr_any/0, the client's /128 and another host's.
TEST_CASE("unsigned-md5.c over IPv6: the same rows, both ways") {
  TapRig rig(TapOffloads::None, 1, IpFamily::Ipv6);
  run_matrix(rig);
}

}  // namespace
}  // namespace tapstack::md5kernel
