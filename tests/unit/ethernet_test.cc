// Ethernet II input: short frames, frames for other hosts, multicast for groups we did not
// join, unknown ethertypes.
#include <doctest/doctest.h>

#include "tests/support/harness.h"

namespace tapstack::test {
namespace {

TEST_CASE("frames shorter than the Ethernet header are dropped") {
  Harness h;
  for (size_t size : {0, 1, 13}) {
    CHECK(h.inject(Bytes(size, 0xff)).empty());
  }
  CHECK(h.drops(DropReason::EthTooShort) == 3);
  CHECK(h.count(Counter::EthInErrors) == 3);
}

TEST_CASE("unicast frames for another MAC are dropped, broadcast is taken") {
  Harness h;
  h.learn_peer();
  CHECK(h.inject(echo_request_frame(1, 1, 8)).size() == 1);
  Tins::IP datagram = ip_from_peer() / Tins::ICMP(Tins::ICMP::ECHO_REQUEST);
  CHECK(h.inject(frame_from_peer(datagram, "02:00:00:00:00:99")).empty());
  CHECK(h.drops(DropReason::EthNotForUs) == 1);
  CHECK(h.count(Counter::EthInOtherHost) == 1);
  CHECK(h.count(Counter::EthInMulticastNotJoined) == 0);
}

// IPv6 neighbour discovery, mDNS and IGMP queries reach a TAP as multicast; we join no group.
TEST_CASE("multicast frames are dropped as a group we did not join, not as another host's") {
  Harness h;
  std::vector<std::string> lines;
  h.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  Bytes frame = echo_request_frame(1, 1, 8);
  // IPv4 multicast (01:00:5e), IPv6 all-nodes and a solicited-node group (33:33), and any
  // other address with the group bit set.
  for (const MacAddress group :
       {MacAddress{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}}, MacAddress{{0x33, 0x33, 0, 0, 0, 1}},
        MacAddress{{0x33, 0x33, 0xff, 0x00, 0x00, 0x02}}, MacAddress{{0x03, 0, 0, 0, 0, 0}}}) {
    std::copy(group.bytes.begin(), group.bytes.end(), frame.begin());
    CHECK(h.inject(frame).empty());
  }
  CHECK(h.drops(DropReason::EthMulticastNotJoined) == 4);
  CHECK(h.count(Counter::EthInMulticastNotJoined) == 4);
  CHECK(h.count(Counter::EthInOtherHost) == 0);
  REQUIRE(lines.size() == 4);
  CHECK(lines[1].find("dropped: ethernet: multicast to a group we did not join") !=
        std::string::npos);
  // Broadcast sets the group bit too, and is taken.
  h.learn_peer();
  std::fill_n(frame.begin(), 6, 0xff);
  CHECK(h.inject(frame).size() == 1);
  CHECK(h.drops(DropReason::EthMulticastNotJoined) == 4);
}

TEST_CASE("unknown ethertypes are dropped and counted") {
  Harness h;
  Bytes frame = echo_request_frame(1, 1, 8);
  for (uint16_t type : {0x86dd, 0x8100, 0x0000, 0xffff}) {
    store_be16(&frame[12], type);
    CHECK(h.inject(frame).empty());
  }
  CHECK(h.drops(DropReason::EthUnknownType) == 4);
  CHECK(h.count(Counter::EthInUnknownTypes) == 4);
}

TEST_CASE("the trace names each step and the drop reason") {
  Harness h;
  std::vector<std::string> lines;
  h.stack.trace().set_sink([&](std::string_view line) { lines.emplace_back(line); });
  Bytes frame = echo_request_frame(1, 1, 8);
  frame[kEthernetHeaderSize + 10] ^= 1;
  h.inject(frame);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("dropped: ipv4: header checksum wrong") != std::string::npos);
}

}  // namespace
}  // namespace tapstack::test
