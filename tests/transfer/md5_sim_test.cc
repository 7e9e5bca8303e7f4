// RFC 2385 between two simulated stacks: signed transfers, the three ways a key can be
// missing or wrong, prefix keys, and a key changed on a live connection.
#include <doctest/doctest.h>

#include "md5opt/option.h"
#include "stack/ipv4.h"
#include "tests/sim/hosts.h"
#include "tests/transfer/transfer.h"

namespace tapstack::test {
namespace {

ByteView key(std::string_view text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }

// What went over the wire: TCP segments, how many were signed, the largest payload.
struct WireLog {
  uint64_t tcp = 0;
  uint64_t signed_segments = 0;
  size_t largest_payload = 0;
  sim::Network::Observer observer() {
    return [this](const sim::WireEvent& e) {
      if (e.kind != sim::WireEventKind::Transmit || e.frame.size() < 14 + 20 + 20) return;
      const ByteView ip = e.frame.subspan(14);
      if (ip[9] != kProtocolTcp) return;
      const ByteView tcp = ip.subspan((ip[0] & 0x0f) * 4u, load_be16(&ip[2]) - (ip[0] & 0x0f) * 4u);
      ++tcp_count();
      if (md5opt::find_md5_option(tcp)) ++signed_segments;
      largest_payload = std::max<size_t>(largest_payload, tcp.size() - (tcp[12] >> 4) * 4u);
    };
  }
  uint64_t& tcp_count() { return tcp; }
};

struct Pair {
  explicit Pair(uint64_t seed = 1, sim::Impairments link = {}) : net(seed) {
    const auto segment = net.add_segment(link);
    server = &net.add_stack(segment, sim::host_config(1, seed));
    client = &net.add_stack(segment, sim::host_config(2, seed));
    net.add_observer(wire.observer());
    listener = *server->tcp().listen(179, 4);
  }
  // Connects (with the client's keys set first) and runs until connected or `limit`.
  std::optional<SocketId> connect(std::initializer_list<std::pair<const char*, std::string_view>> client_keys,
                                  Duration limit = Duration::seconds(10)) {
    const SocketId id = *client->tcp().open();
    for (const auto& [peer, k] : client_keys) {
      REQUIRE(client->tcp().set_md5_key(id, *Ipv4Address::parse(peer), 32, key(k)));
    }
    REQUIRE(client->tcp().connect(id, sim::host_ip(1), 179, net.now()));
    client_socket = id;
    net.run_until([&] { return server->tcp().events(listener) & socket_event::kAcceptable; }, limit);
    auto accepted = server->tcp().accept(listener);
    if (!accepted) return std::nullopt;
    server_socket = *accepted;
    return id;
  }
  uint64_t server_count(Counter c) const { return server->counters()[c]; }

  sim::Network net;
  WireLog wire;
  Stack* server = nullptr;
  Stack* client = nullptr;
  SocketId listener = 0;
  SocketId client_socket = 0;
  SocketId server_socket = 0;
};

// Moves `bytes` each way between the pair's connected sockets; true when byte-exact.
bool exchange(Pair& p, uint64_t bytes, Duration limit = Duration::seconds(600)) {
  StreamApp server_app(*p.server, bytes, 11);
  StreamApp client_app(*p.client, bytes, 12);
  server_app.attach(p.server_socket);
  client_app.attach(p.client_socket);
  p.net.run_until([&] {
    server_app.pump(p.net.now());
    client_app.pump(p.net.now());
    return server_app.done() && client_app.done();
  }, limit);
  return server_app.received() == bytes && client_app.received() == bytes &&
         client_app.sent_digest() == server_app.received_digest() &&
         server_app.sent_digest() == client_app.received_digest();
}

TEST_CASE("matching keys: every segment is signed, payloads shrink to 1440, data byte-exact") {
  Pair p;
  REQUIRE(p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, key("12345")));
  REQUIRE(p.connect({{"198.18.0.1", "12345"}}));
  CHECK(exchange(p, 1 << 20));
  CHECK(p.wire.tcp > 1000);
  CHECK(p.wire.signed_segments == p.wire.tcp);
  CHECK(p.wire.largest_payload == 1440);  // MSS 1460 less the 20-byte option, as Linux
  for (const Counter c : {Counter::TcpExtTCPMD5NotFound, Counter::TcpExtTCPMD5Unexpected,
                          Counter::TcpExtTCPMD5Failure}) {
    CHECK(p.server->counters()[c] == 0);
    CHECK(p.client->counters()[c] == 0);
  }
}

TEST_CASE("the three drop cases: the connection never forms, nothing answers, one counter moves") {
  struct Case {
    const char* name;
    std::optional<std::string_view> server_key;
    std::optional<std::string_view> client_key;
    Counter counter;
  };
  const Case cases[] = {
      {"server expects a key, client sends none", "12345", std::nullopt, Counter::TcpExtTCPMD5NotFound},
      {"client signs, server has no key", std::nullopt, "12345", Counter::TcpExtTCPMD5Unexpected},
      {"keys differ", "12345", "54321", Counter::TcpExtTCPMD5Failure},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Pair p;
    if (c.server_key) REQUIRE(p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, key(*c.server_key)));
    std::initializer_list<std::pair<const char*, std::string_view>> none = {};
    const auto connected = c.client_key ? p.connect({{"198.18.0.1", *c.client_key}}) : p.connect(none);
    CHECK_FALSE(connected);
    CHECK(p.server_count(c.counter) >= 2);  // the SYN and its retransmissions
    CHECK(p.server_count(Counter::TcpOutSegs) == 0);  // no SYN-ACK, no reset
    CHECK(p.server_count(Counter::TcpPassiveOpens) == 0);
  }
}

TEST_CASE("prefix keys: the longest matching prefix decides") {
  Pair p;
  REQUIRE(p.server->tcp().set_md5_key(p.listener, *Ipv4Address::parse("198.18.0.0"), 24, key("subnet")));
  REQUIRE(p.server->tcp().set_md5_key(p.listener, *Ipv4Address::parse("198.18.0.0"), 16, key("wider")));
  REQUIRE(p.connect({{"198.18.0.1", "subnet"}}));
  CHECK(exchange(p, 64 * 1024));
  // A /32 for this client overrides the /24 for new connections.
  REQUIRE(p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, key("host")));
  CHECK_FALSE(p.connect({{"198.18.0.1", "subnet"}}));
  CHECK(p.server_count(Counter::TcpExtTCPMD5Failure) > 0);
  CHECK(p.connect({{"198.18.0.1", "host"}}));
}

TEST_CASE("a key changed on both sides of a live connection: in-flight segments fail, then flow") {
  sim::Impairments link;
  link.delay = Duration::milliseconds(5);
  Pair p(3, link);
  REQUIRE(p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, key("old key")));
  REQUIRE(p.connect({{"198.18.0.1", "old key"}}));
  StreamApp server_app(*p.server, 4 << 20, 21);
  StreamApp client_app(*p.client, 4 << 20, 22);
  server_app.attach(p.server_socket);
  client_app.attach(p.client_socket);
  bool changed = false;
  p.net.run_until([&] {
    server_app.pump(p.net.now());
    client_app.pump(p.net.now());
    if (!changed && client_app.received() > (1 << 20)) {
      // The client changes first; the server 3 ms later, while segments are in flight.
      REQUIRE(p.client->tcp().set_md5_key(p.client_socket, sim::host_ip(1), 32, key("new key")));
      p.net.run_for(Duration::milliseconds(3));
      REQUIRE(p.server->tcp().set_md5_key(p.server_socket, sim::host_ip(2), 32, key("new key")));
      changed = true;
    }
    return server_app.done() && client_app.done();
  }, Duration::seconds(600));
  CHECK(changed);
  CHECK(server_app.received() == 4u << 20);
  CHECK(client_app.received() == 4u << 20);
  CHECK(client_app.sent_digest() == server_app.received_digest());
  CHECK(server_app.sent_digest() == client_app.received_digest());
  CHECK(p.server_count(Counter::TcpExtTCPMD5Failure) + p.client->counters()[Counter::TcpExtTCPMD5Failure] > 0);
  CHECK(p.server_count(Counter::TcpRetransSegs) + p.client->counters()[Counter::TcpRetransSegs] > 0);
}

TEST_CASE("key API: 80 bytes at most, delete with an empty key, ENOENT when there is none") {
  Pair p;
  const std::string eighty(80, 'k');
  CHECK(p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, key(eighty)));
  const auto too_long = p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, key(eighty + "k"));
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().code == EINVAL);
  CHECK(p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, {}));
  const auto missing = p.server->tcp().set_md5_key(p.listener, sim::host_ip(2), 32, {});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ENOENT);
}

}  // namespace
}  // namespace tapstack::test
