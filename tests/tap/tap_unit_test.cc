// The parts of tap/ that need no kernel: interface name rules, pcap output (read back through
// libpcap byte for byte and through libtins), neighbour state names, the flow hash that picks a
// multi-queue TAP's queue.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <tins/arp.h>
#include <tins/ethernetII.h>

#include "tap/netlink.h"
#include "tap/pcap_writer.h"
#include "tap/tap_device.h"
#include "tap/transmit_queue.h"
#include "tests/support/pcap_frames.h"
#include "tests/tap/test_paths.h"

namespace tapstack {
namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("interface names: what Linux's dev_valid_name() accepts") {
  CHECK(check_interface_name("tap0"));
  CHECK(check_interface_name("fifteen-chars-x"));
  CHECK_FALSE(check_interface_name(""));
  CHECK_FALSE(check_interface_name("."));
  CHECK_FALSE(check_interface_name(".."));
  CHECK_FALSE(check_interface_name("a b"));
  CHECK_FALSE(check_interface_name("a:b"));
  CHECK_FALSE(check_interface_name("a/b"));
  const auto too_long = check_interface_name("sixteen-chars-xx");
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().code == ENAMETOOLONG);
  CHECK(contains(too_long.error().message, "at most 15"));
}

// Ethernet II, IPv4 (protocol, fragment field), and the first 4 bytes of the transport header:
// all flow_queue() reads.
std::vector<uint8_t> ipv4_frame(uint8_t protocol, uint16_t source_port, uint16_t fragment = 0) {
  std::vector<uint8_t> frame(14 + 20 + 20);
  store_be16(&frame[12], 0x0800);
  frame[14] = 0x45;
  store_be16(&frame[14 + 6], fragment);
  frame[14 + 9] = protocol;
  store_be32(&frame[14 + 12], 0xc6120002);  // 198.18.0.2
  store_be32(&frame[14 + 16], 0xc6120001);  // 198.18.0.1
  store_be16(&frame[34], source_port);
  store_be16(&frame[36], 6666);
  return frame;
}

TEST_CASE("flow_queue: one queue per flow, every queue used, the rest on queue 0") {
  const auto tcp = ipv4_frame(6, 40000);
  CHECK(flow_queue(tcp, 1) == 0);
  auto later = tcp;  // a later segment of the same connection: another sequence number
  store_be32(&later[38], 123456);
  for (size_t queues = 2; queues <= 16; ++queues) {
    CHECK(flow_queue(later, queues) == flow_queue(tcp, queues));
  }
  std::vector<int> used(16);
  for (uint16_t port = 40000; port < 40256; ++port) {
    const size_t queue = flow_queue(ipv4_frame(6, port), used.size());
    REQUIRE(queue < used.size());
    ++used[queue];
  }
  for (const int count : used) CHECK(count > 0);             // 256 neighbouring ports reach all 16
  CHECK(flow_queue(ipv4_frame(1, 0), 4) == 0);               // ICMP
  CHECK(flow_queue(ipv4_frame(6, 40001, 0x2000), 16) == 0);  // a fragment: no ports to hash
  auto arp = tcp;
  store_be16(&arp[12], 0x0806);
  CHECK(flow_queue(arp, 16) == 0);
  CHECK(flow_queue(ByteView(tcp).first(30), 16) == 0);  // too short to hold the ports
}

TEST_CASE("TapDevice::open refuses a bad name before any system call") {
  auto tap = TapDevice::open("sixteen-chars-xx");
  REQUIRE_FALSE(tap);
  CHECK(tap.error().code == ENAMETOOLONG);
}

std::vector<uint8_t> arp_request_frame() {
  return Tins::ARP::make_arp_request("198.18.0.2", "198.18.0.1", "02:00:c6:12:00:01").serialize();
}

TEST_CASE("TapDevice::open takes 1 to 16 queues") {
  for (const size_t queues : {size_t{0}, kMaxTapQueues + 1}) {
    auto tap = TapDevice::open("tap0", TapOffloads::None, queues);
    REQUIRE_FALSE(tap);
    CHECK(contains(tap.error().message, "1 to 16 queues"));
  }
}

TEST_CASE("PcapWriter: frames come back byte for byte, malformed ones included") {
  const std::string path = testing::temporary_path("writer.pcap");
  const std::vector<std::vector<uint8_t>> frames = {
      arp_request_frame(),
      {0x01, 0x02, 0x03},                // shorter than an Ethernet header
      std::vector<uint8_t>(1514, 0xee),  // full size, nonsense
  };
  {
    auto writer = PcapWriter::open(path);
    REQUIRE_MESSAGE(writer, writer.error().message);
    CHECK(writer->path() == path);
    for (const auto& frame : frames) REQUIRE(writer->write(frame));
    REQUIRE(writer->write(frames[0], std::chrono::microseconds(1'700'000'000'000'000)));
  }
  auto read = testing::read_pcap_frames(path);
  REQUIRE_MESSAGE(read, read.error().message);
  REQUIRE(read->size() == 4);
  CHECK((*read)[0] == frames[0]);
  CHECK((*read)[1] == frames[1]);
  CHECK((*read)[2] == frames[2]);
  CHECK((*read)[3] == frames[0]);

  auto summary = testing::summarize_pcap(path);
  REQUIRE_MESSAGE(summary, summary.error().message);
  CHECK(summary->arp_requests == 2);
}

TEST_CASE("PcapWriter: a file that cannot be made is an error that names it") {
  auto writer = PcapWriter::open("/nonexistent-directory/x.pcap");
  REQUIRE_FALSE(writer);
  CHECK(contains(writer.error().message, "/nonexistent-directory/x.pcap"));
  CHECK(contains(writer.error().message, "No such file or directory"));
  CHECK(contains(writer.error().message, "directory exists"));
}

TEST_CASE("Neighbour: state names as `ip neigh` prints them") {
  CHECK(Neighbour{{}, {}, 0x02}.state_name() == "REACHABLE");
  CHECK(Neighbour{{}, {}, 0x02}.is_valid());
  CHECK(Neighbour{{}, {}, 0x04}.state_name() == "STALE");
  CHECK(Neighbour{{}, {}, 0x20}.state_name() == "FAILED");
  CHECK_FALSE(Neighbour{{}, {}, 0x20}.is_valid());
  CHECK_FALSE(Neighbour{{}, {}, 0x01}.is_valid());  // INCOMPLETE
  CHECK(Neighbour{{}, {}, 0}.state_name() == "NONE");
}

}  // namespace
}  // namespace tapstack
