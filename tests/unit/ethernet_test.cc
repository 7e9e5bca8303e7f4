// Ethernet II input: short frames, frames for other hosts, unknown ethertypes.
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

TEST_CASE("frames for another MAC are dropped, broadcast is taken") {
  Harness h;
  h.learn_peer();
  CHECK(h.inject(echo_request_frame(1, 1, 8)).size() == 1);
  const Bytes other = [] {
    Tins::IP datagram = ip_from_peer() / Tins::ICMP(Tins::ICMP::ECHO_REQUEST);
    return frame_from_peer(datagram, "02:00:00:00:00:99");
  }();
  CHECK(h.inject(other).empty());
  CHECK(h.drops(DropReason::EthNotForUs) == 1);
  // Multicast MACs are not ours either.
  Tins::IP datagram = ip_from_peer() / Tins::ICMP(Tins::ICMP::ECHO_REQUEST);
  CHECK(h.inject(frame_from_peer(datagram, "01:00:5e:00:00:01")).empty());
  CHECK(h.drops(DropReason::EthNotForUs) == 2);
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
