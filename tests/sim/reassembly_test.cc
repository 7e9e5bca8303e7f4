// IPv4 fragment reassembly (RFC 791 §3.2, RFC 815) between simulated stacks: fragments in any
// order and duplicated, and incomplete datagrams timing out with their memory returned.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "stack/stack.h"
#include "tests/sim/frames.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack::sim {
namespace {

Duration ms(int64_t n) {
  return Duration::milliseconds(n);
}
Duration seconds(int64_t n) {
  return Duration::seconds(n);
}

// Two hosts on one segment, A (198.18.0.1) and B (198.18.0.2), each knowing the other's MAC.
struct TwoHosts {
  explicit TwoHosts(uint64_t seed, const Impairments& impairments = {.delay = ms(1)})
      : net(seed),
        lan(net.add_segment()),
        a(net.add_stack(lan, host_config(1, seed))),
        b(net.add_stack(lan, host_config(2, seed))) {
    REQUIRE(a.send_echo_request(host_ip(2), 0, 0, {}, net.now()));
    REQUIRE(net.run_until([&] { return a.poll_echo_reply().has_value(); }, seconds(1)));
    net.set_impairments(lan, impairments);
  }
  PortId port_a() const { return net.port_of(a); }
  PortId port_b() const { return net.port_of(b); }

  Network net;
  SegmentId lan;
  Stack& a;
  Stack& b;
};

std::vector<uint8_t> pattern(size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
  return bytes;
}

// The fragments of one echo request from A, captured before B could see them.
std::vector<std::vector<uint8_t>> capture_fragments(TwoHosts& hosts, size_t payload_size) {
  auto fragments = std::make_shared<std::vector<std::vector<uint8_t>>>();
  auto recording = std::make_shared<bool>(true);
  hosts.net.add_observer([=, port = hosts.port_a()](const WireEvent& e) {
    if (*recording && e.kind == WireEventKind::Transmit && e.port == port) {
      fragments->emplace_back(e.frame.begin(), e.frame.end());
    }
  });
  hosts.net.set_port_impairments(hosts.port_b(), {.loss = 1.0});
  REQUIRE(hosts.a.send_echo_request(host_ip(2), 7, 1, pattern(payload_size), hosts.net.now()));
  hosts.net.run_for(ms(5));
  hosts.net.set_port_impairments(hosts.port_b(), {.delay = ms(1)});
  *recording = false;
  return *fragments;
}

TEST_CASE("fragments injected in any order, with duplicates, make one datagram") {
  struct Case {
    const char* name;
    std::vector<int> order;  // indices into the 3 fragments of a 4000-byte ping
    uint64_t duplicates;     // duplicates B must count
    size_t left_over;        // datagrams still pending: a fragment that came after completion
  };
  const Case cases[] = {
      {"in order", {0, 1, 2}, 0, 0},
      {"reversed", {2, 1, 0}, 0, 0},
      {"last first", {2, 0, 1}, 0, 0},
      {"middle first", {1, 2, 0}, 0, 0},
      {"first twice", {0, 0, 1, 2}, 1, 0},
      {"everything twice but the last", {1, 1, 2, 2, 0}, 2, 0},
      {"the middle three times", {1, 2, 1, 1, 0}, 2, 0},
      {"a duplicate after completion", {0, 1, 2, 1}, 0, 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    TwoHosts hosts(1);
    const auto fragments = capture_fragments(hosts, 4000);
    REQUIRE(fragments.size() == 3);
    for (size_t i = 0; i < c.order.size(); ++i) {
      hosts.net.inject(hosts.b, fragments[c.order[i]], hosts.net.now() + ms(1) * int64_t(i));
    }
    std::optional<EchoReply> reply;
    CHECK(hosts.net.run_until([&] { return (reply = hosts.a.poll_echo_reply()).has_value(); },
                              seconds(1)));
    hosts.net.run_for(ms(10));

    const Counters& b = hosts.b.counters();
    CHECK(b[Counter::IpReasmOKs] == 1);
    CHECK(b[Counter::IcmpInEchos] == 2);  // with the one that resolved ARP
    CHECK(b[Counter::IpReasmDuplicates] == c.duplicates);
    CHECK(b[Counter::IpReasmFails] == 0);
    CHECK(hosts.b.reassembly_datagrams() == c.left_over);
    REQUIRE(reply);
    CHECK(reply->payload_size == 4000);
    CHECK(hosts.a.counters()[Counter::IpReasmOKs] == 1);  // the reply came in fragments too

    hosts.net.run_for(seconds(31));  // the default reassembly timeout is 30 s
    CHECK(b[Counter::IpReasmTimeout] == c.left_over);
    CHECK(hosts.b.reassembly_datagrams() == 0);
    CHECK(hosts.b.reassembly_bytes() == 0);
  }
}

TEST_CASE("pings of 4000 and 8000 bytes cross a reordering, duplicating segment") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    TwoHosts hosts(seed,
                   {.duplicate = 0.3, .reorder = 0.5, .reorder_delay = ms(5), .delay = ms(1)});
    constexpr uint16_t kPings = 10;
    for (uint16_t seq = 0; seq < kPings; ++seq) {
      const size_t size = seq % 2 == 0 ? 4000 : 8000;
      REQUIRE(hosts.a.send_echo_request(host_ip(2), 3, seq, pattern(size), hosts.net.now()));
      hosts.net.run_for(ms(2));
    }
    std::map<uint16_t, size_t> answered;  // seq -> payload size
    hosts.net.run_until(
        [&] {
          while (auto reply = hosts.a.poll_echo_reply())
            answered[reply->sequence] = reply->payload_size;
          return answered.size() == kPings;
        },
        seconds(5));
    REQUIRE(answered.size() == kPings);
    for (const auto& [seq, size] : answered) CHECK(size == (seq % 2 == 0 ? 4000u : 8000u));
    CHECK(hosts.net.segment_stats(hosts.lan).reordered > 0);

    hosts.net.run_for(seconds(31));  // duplicates that came after completion time out
    for (const Stack* stack : {&hosts.a, &hosts.b}) {
      const Counters& counters = stack->counters();
      CHECK(counters[Counter::IpReasmOKs] >= kPings);
      CHECK(counters[Counter::IpReasmDuplicates] > 0);
      // The only failures are such late duplicates: no overlap, no bad length, no memory limit.
      CHECK(counters[Counter::IpReasmFails] == counters.drops(DropReason::IpFragTimeout));
      CHECK(counters[Counter::IpExtReasmOverlaps] == 0);
      CHECK(stack->reassembly_datagrams() == 0);
      CHECK(stack->reassembly_bytes() == 0);
    }
  }
}

TEST_CASE("with loss, incomplete datagrams time out and their memory returns") {
  TwoHosts hosts(5);
  hosts.net.set_port_impairments(hosts.port_b(), {.loss = 0.2, .delay = ms(1)});
  // Per datagram (IP id): the fragment offsets A sent and those B received.
  std::map<uint16_t, std::set<uint32_t>> sent, received;
  hosts.net.add_observer([&, from = hosts.port_a(), to = hosts.port_b()](const WireEvent& e) {
    const auto ip = parse_ipv4(e.frame);
    if (!ip || !ip->is_fragment()) return;
    if (e.kind == WireEventKind::Transmit && e.port == from)
      sent[ip->id].insert(ip->fragment_offset);
    if (e.kind == WireEventKind::Deliver && e.port == to)
      received[ip->id].insert(ip->fragment_offset);
  });

  for (uint16_t seq = 0; seq < 20; ++seq) {
    REQUIRE(hosts.a.send_echo_request(host_ip(2), 4, seq, pattern(8000), hosts.net.now()));
    hosts.net.run_for(ms(10));
  }
  hosts.net.run_for(ms(100));
  uint64_t complete = 0, partial = 0, partial_with_first = 0;
  for (const auto& [id, offsets] : received) {
    REQUIRE(sent[id].size() == 6);
    if (offsets == sent[id]) {
      ++complete;
    } else {
      ++partial;
      partial_with_first += offsets.contains(0);
    }
  }
  REQUIRE(complete > 0);
  REQUIRE(partial > 0);
  const Counters& b = hosts.b.counters();
  CHECK(b[Counter::IpReasmOKs] == complete);
  CHECK(hosts.b.reassembly_datagrams() == partial);
  CHECK(hosts.b.reassembly_bytes() > 0);

  hosts.net.run_for(seconds(30));
  CHECK(b[Counter::IpReasmTimeout] == partial);
  CHECK(b[Counter::IpReasmFails] == partial);
  CHECK(hosts.b.reassembly_datagrams() == 0);
  CHECK(hosts.b.reassembly_bytes() == 0);
  // RFC 1122 §3.3.2: Time Exceeded only when the first fragment had arrived.
  CHECK(b[Counter::IcmpOutTimeExcds] == partial_with_first);
  CHECK(hosts.a.counters()[Counter::IcmpInEchoReps] == 1 + complete);
}

}  // namespace
}  // namespace tapstack::sim
