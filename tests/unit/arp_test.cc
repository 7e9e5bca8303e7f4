// ARP (RFC 826): replies for our address, learning, resolution with retries and a timeout,
// the queue of packets waiting for resolution, cache expiry.
#include <doctest/doctest.h>

#include <cerrno>

#include <fmt/format.h>

#include "tests/support/harness.h"

namespace tapstack::test {
namespace {

Bytes arp_request_for(const char* target, const char* sender_ip = kPeerIp,
                      const char* sender_mac = kPeerMac) {
  Tins::EthernetII eth = Tins::ARP::make_arp_request(ip4(target), ip4(sender_ip), hw(sender_mac));
  eth.src_addr(hw(sender_mac));
  return eth.serialize();
}

TEST_CASE("start announces our address with a gratuitous ARP") {
  Stack stack(default_config());
  stack.start(Instant::from_ns(0));
  const auto frame = stack.poll_transmit();
  REQUIRE(frame);
  const auto eth = parse(Bytes(frame->begin(), frame->end()));
  const auto& arp = eth.rfind_pdu<Tins::ARP>();
  CHECK(eth.dst_addr() == Tins::EthernetII::BROADCAST);
  CHECK(arp.opcode() == Tins::ARP::REQUEST);
  CHECK(arp.sender_ip_addr() == ip4(kOurIp));
  CHECK(arp.target_ip_addr() == ip4(kOurIp));
}

TEST_CASE("a request for our address is answered and teaches us the sender") {
  Harness h;
  const auto sent = h.inject(arp_request_for(kOurIp));
  REQUIRE(sent.size() == 1);
  const auto eth = parse(sent[0]);
  const auto& arp = eth.rfind_pdu<Tins::ARP>();
  CHECK(arp.opcode() == Tins::ARP::REPLY);
  CHECK(arp.sender_hw_addr() == hw(kOurMac));
  CHECK(arp.sender_ip_addr() == ip4(kOurIp));
  CHECK(arp.target_hw_addr() == hw(kPeerMac));
  CHECK(eth.dst_addr() == hw(kPeerMac));
  CHECK(h.stack.arp_lookup(ip(kPeerIp)) == MacAddress::parse(kPeerMac));
  CHECK(h.count(Counter::ArpInRequests) == 1);
  CHECK(h.count(Counter::ArpOutReplies) == 1);
}

TEST_CASE("a request for another address is not answered and teaches nothing") {
  Harness h;
  CHECK(h.inject(arp_request_for("198.18.0.77")).empty());
  CHECK_FALSE(h.stack.arp_lookup(ip(kPeerIp)));
  CHECK(h.drops(DropReason::ArpNotForUs) == 1);
}

TEST_CASE("ARP's drops show in the trace") {
  Harness h;
  std::vector<std::string> lines;
  h.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  CHECK(h.inject(arp_request_for("198.18.0.77")).empty());
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].ends_with(fmt::format("| dropped: {} [counted: {}]",
                                       drop_reason_text(DropReason::ArpNotForUs),
                                       drop_reason_counters(DropReason::ArpNotForUs))));
}

TEST_CASE("malformed ARP packets are dropped") {
  Harness h;
  const Bytes good = arp_request_for(kOurIp);
  const std::pair<size_t, uint8_t> corruptions[] = {
      {14 + 1, 6},   // hardware type 6
      {14 + 2, 0x86},  // protocol type 0x8600
      {14 + 4, 8},   // hardware length 8
      {14 + 5, 16},  // protocol length 16
      {14 + 7, 9},   // opcode 9
  };
  for (const auto& [offset, value] : corruptions) {
    Bytes frame = good;
    frame[offset] = value;
    CHECK(h.inject(frame).empty());
  }
  Bytes truncated(good.begin(), good.begin() + 14 + 27);
  CHECK(h.inject(truncated).empty());
  CHECK(h.drops(DropReason::ArpMalformed) == 6);
  // A sender claiming a broadcast MAC or our own address is refused.
  CHECK(h.inject(arp_request_for(kOurIp, kPeerIp, "ff:ff:ff:ff:ff:ff")).empty());
  CHECK(h.inject(arp_request_for(kOurIp, kOurIp, kPeerMac)).empty());
  CHECK(h.drops(DropReason::ArpBadSender) == 2);
  CHECK_FALSE(h.stack.arp_lookup(ip(kPeerIp)));
}

TEST_CASE("an ARP probe from 0.0.0.0 is answered without learning") {
  Harness h;
  const auto sent = h.inject(arp_request_for(kOurIp, "0.0.0.0"));
  REQUIRE(sent.size() == 1);
  CHECK(parse(sent[0]).rfind_pdu<Tins::ARP>().target_ip_addr() == ip4("0.0.0.0"));
  CHECK_FALSE(h.stack.arp_lookup(ip("0.0.0.0")));
}

TEST_CASE("resolution: request, retries at the interval, then the queue is dropped") {
  Harness h;
  REQUIRE(h.stack.send_echo_request(ip("198.18.0.9"), 1, 1, {}, h.now));
  REQUIRE(h.stack.send_echo_request(ip("198.18.0.9"), 1, 2, {}, h.now));
  const auto first = h.drain();
  REQUIRE(first.size() == 1);  // one request, both pings held
  CHECK(parse(first[0]).rfind_pdu<Tins::ARP>().target_ip_addr() == ip4("198.18.0.9"));
  CHECK(h.stack.next_deadline() == h.now + Duration::seconds(1));
  CHECK(h.advance(Duration::milliseconds(999)).empty());
  CHECK(h.advance(Duration::milliseconds(1)).size() == 1);  // retry 2
  CHECK(h.advance(Duration::seconds(1)).size() == 1);       // retry 3
  CHECK(h.drops(DropReason::ArpResolveFailed) == 0);
  std::vector<std::string> lines;
  h.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  CHECK(h.advance(Duration::seconds(1)).empty());           // gives up
  CHECK(h.drops(DropReason::ArpResolveFailed) == 2);
  const std::string dropped = fmt::format(" | dropped: {} [counted: {}]",
                                          drop_reason_text(DropReason::ArpResolveFailed),
                                          drop_reason_counters(DropReason::ArpResolveFailed));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "timer: arp 198.18.0.9 unanswered after 3 requests" + dropped + dropped);
  CHECK(h.count(Counter::ArpResolveFailures) == 1);
  CHECK(h.count(Counter::ArpOutRequests) == 4);  // the gratuitous one and three
  CHECK(h.stack.next_deadline().is_never());
}

TEST_CASE("packets queued during resolution leave in order once the reply arrives") {
  Harness h;
  for (uint16_t seq = 1; seq <= 3; ++seq) {
    REQUIRE(h.stack.send_echo_request(ip(kPeerIp), 5, seq, {}, h.now));
  }
  CHECK(h.drain().size() == 1);
  Tins::EthernetII reply = Tins::ARP::make_arp_reply(ip4(kOurIp), ip4(kPeerIp), hw(kOurMac), hw(kPeerMac));
  reply.src_addr(hw(kPeerMac));
  const auto sent = h.inject(reply.serialize());
  REQUIRE(sent.size() == 3);
  for (uint16_t i = 0; i < 3; ++i) {
    const auto eth = parse(sent[i]);
    CHECK(eth.dst_addr() == hw(kPeerMac));
    CHECK(eth.rfind_pdu<Tins::ICMP>().sequence() == i + 1);
  }
  CHECK(h.stack.next_deadline() == h.now + default_config().arp.entry_lifetime);
}

TEST_CASE("the queue for one neighbour is bounded") {
  StackConfig config = default_config();
  config.arp.max_queued_per_entry = 4;
  Harness h(config);
  for (uint16_t seq = 0; seq < 10; ++seq) {
    REQUIRE(h.stack.send_echo_request(ip(kPeerIp), 1, seq, {}, h.now));
  }
  CHECK(h.drops(DropReason::ArpQueueFull) == 6);
}

TEST_CASE("cache entries expire and the next packet resolves again") {
  Harness h;
  h.learn_peer();
  REQUIRE(h.stack.arp_lookup(ip(kPeerIp)));
  h.advance(default_config().arp.entry_lifetime);
  CHECK_FALSE(h.stack.arp_lookup(ip(kPeerIp)));
  REQUIRE(h.stack.send_echo_request(ip(kPeerIp), 1, 1, {}, h.now));
  const auto sent = h.drain();
  REQUIRE(sent.size() == 1);
  CHECK(parse(sent[0]).find_pdu<Tins::ARP>() != nullptr);
}

TEST_CASE("the cache holds at most max_entries") {
  StackConfig config = default_config();
  config.arp.max_entries = 4;
  Harness h(config);
  for (int i = 10; i < 20; ++i) {
    const std::string sender = fmt::format("198.18.0.{}", i);
    const std::string mac = fmt::format("02:00:00:00:00:{}", i);
    h.inject(arp_request_for(kOurIp, sender.c_str(), mac.c_str()));
    h.advance(Duration::milliseconds(10));
  }
  CHECK(h.count(Counter::ArpCacheEvictions) == 6);
  CHECK(h.stack.arp_lookup(ip("198.18.0.19")));
  CHECK_FALSE(h.stack.arp_lookup(ip("198.18.0.10")));
}

TEST_CASE("no route: off-link destination without a gateway") {
  Harness h;
  const Status status = h.stack.send_echo_request(ip("198.19.0.1"), 1, 1, {}, h.now);
  CHECK_FALSE(status);
  CHECK(status.error().code == ENETUNREACH);
  CHECK(h.count(Counter::IpOutNoRoutes) == 1);
}

}  // namespace
}  // namespace tapstack::test
