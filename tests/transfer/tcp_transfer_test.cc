// Transfers between two simulated stacks, both directions at once, byte-exact (SHA-256),
// through loss, reordering, duplication and bit corruption, over many seeds.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "tests/sim/hosts.h"
#include "tests/transfer/transfer.h"

namespace tapstack::test {
namespace {

using sim::Impairments;

struct Outcome {
  bool completed = false;
  Duration virtual_time;
  uint64_t retransmits = 0;
  uint64_t checksum_drops = 0;
};

// Server on host 1 listens; client on host 2 connects; each sends `bytes` to the other.
Outcome transfer(uint64_t bytes, const Impairments& link, uint64_t seed) {
  sim::Network net(seed);
  const auto segment = net.add_segment(link);
  Stack& server = net.add_stack(segment, sim::host_config(1, seed));
  Stack& client = net.add_stack(segment, sim::host_config(2, seed));
  const SocketId listener = *server.tcp().listen(5001, 4);
  StreamApp server_app(server, bytes, seed * 2);
  StreamApp client_app(client, bytes, seed * 2 + 1);
  auto connected = client.tcp().connect(sim::host_ip(1), 5001, net.now());
  REQUIRE(connected);
  client_app.attach(*connected);

  const Instant start = net.now();
  const Instant limit = start + Duration::seconds(3600);
  while (!(server_app.done() && client_app.done()) && net.now() < limit) {
    if (!server_app.attached()) {
      if (auto accepted = server.tcp().accept(listener)) server_app.attach(*accepted);
    }
    server_app.pump(net.now());
    client_app.pump(net.now());
    if (!net.step(limit)) break;
  }
  CHECK(server_app.failed() == "");
  CHECK(client_app.failed() == "");
  Outcome outcome;
  outcome.completed = server_app.done() && client_app.done();
  outcome.virtual_time = net.now() - start;
  outcome.retransmits = server.counters()[Counter::TcpRetransSegs] +
                        client.counters()[Counter::TcpRetransSegs];
  outcome.checksum_drops = server.counters()[Counter::TcpInCsumErrors] +
                           client.counters()[Counter::TcpInCsumErrors] +
                           server.counters()[Counter::IpExtInCsumErrors] +
                           client.counters()[Counter::IpExtInCsumErrors];
  CHECK(client_app.received() == bytes);
  CHECK(server_app.received() == bytes);
  CHECK(client_app.sent_digest() == server_app.received_digest());
  CHECK(server_app.sent_digest() == client_app.received_digest());
  return outcome;
}

Impairments lossy(double loss) {
  Impairments link;
  link.loss = loss;
  link.delay = Duration::milliseconds(5);
  link.bandwidth_bps = 100'000'000;
  return link;
}

TEST_CASE("64 MiB each way, byte-exact, at 0 %, 1 %, 5 % and 20 % loss") {
  for (const double loss : {0.0, 0.01, 0.05, 0.20}) {
    CAPTURE(loss);
    // 20 % loss in each direction is brutal (most time is spent in RTO backoff): a smaller
    // transfer keeps the test quick while still crossing many thousand losses.
    const uint64_t bytes = loss < 0.2 ? 64ull << 20 : 4ull << 20;
    const Outcome outcome = transfer(bytes, lossy(loss), 7);
    CHECK(outcome.completed);
    if (loss > 0) CHECK(outcome.retransmits > 0);
    MESSAGE(fmt::format("loss {:.0f} %: {} MiB each way in {:.1f} s of virtual time, {} retransmits",
                        loss * 100, bytes >> 20, outcome.virtual_time.seconds_f(),
                        outcome.retransmits));
  }
}

TEST_CASE("reordering, duplication and bit corruption, many seeds") {
  Impairments link = lossy(0.01);
  link.reorder = 0.05;
  link.duplicate = 0.02;
  link.corrupt = 0.01;
  link.jitter = Duration::milliseconds(1);
  uint64_t checksum_drops = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    const Outcome outcome = transfer(1 << 20, link, seed);
    CHECK(outcome.completed);
    checksum_drops += outcome.checksum_drops;
  }
  CHECK(checksum_drops > 0);  // corruption happened and was caught by checksums
}

TEST_CASE("the same seed gives the same run") {
  const Outcome a = transfer(1 << 20, lossy(0.05), 42);
  const Outcome b = transfer(1 << 20, lossy(0.05), 42);
  CHECK(a.virtual_time == b.virtual_time);
  CHECK(a.retransmits == b.retransmits);
}

}  // namespace
}  // namespace tapstack::test
