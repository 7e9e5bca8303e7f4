// TransmitQueue against a real TAP in a private namespace: every frame pushed reaches the
// kernel side, whole and in order, through many wraps of a small ring and while the producer
// waits for room; flush() waits for the writes; destruction writes what is still queued.
// TransmitQueues over a multi-queue TAP: frames of many flows through two queues and two
// threads at once, every frame whole, every flow in order.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <optional>
#include <vector>

#include "stack/bytes.h"
#include "tap/tap_device.h"
#include "tap/transmit_queue.h"
#include "tests/support/netns.h"

namespace tapstack {
namespace {

constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE 802 local experimental: nobody's protocol

struct Rig {
  explicit Rig(size_t queues = 1, uint16_t ether_type = kTestEtherType) {
    tap.emplace(testing::open_tap_in_private_netns("tap0", std::nullopt, queues));
    // What the TAP's writes deliver, as the kernel's receive path sees it.
    packets = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ether_type));
    REQUIRE(packets >= 0);
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ether_type);
    address.sll_ifindex = static_cast<int>(if_nametoindex("tap0"));
    REQUIRE(bind(packets, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  }
  ~Rig() {
    if (packets >= 0) close(packets);
  }

  // Frame number i: broadcast, our test type, i in the first 4 payload bytes, then a pattern.
  static std::vector<uint8_t> frame(uint32_t i) {
    std::vector<uint8_t> bytes(60 + (i * 7919) % 1455);
    std::memset(bytes.data(), 0xff, 6);
    const uint8_t source[6] = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x02};
    std::memcpy(bytes.data() + 6, source, 6);
    store_be16(bytes.data() + 12, kTestEtherType);
    store_be32(bytes.data() + 14, i);
    for (size_t k = 18; k < bytes.size(); ++k) bytes[k] = static_cast<uint8_t>(i + k);
    return bytes;
  }

  struct Arrivals {
    uint32_t in_order = 0;  // whole, each with a higher number than the one before
    uint32_t dropped = 0;   // by the packet socket, whose buffer holds a few hundred frames
    bool all_good = true;   // no frame cut, changed or out of order
  };
  // Reads until `count` frames are accounted for (arrived or dropped by the socket), waiting at
  // most 200 ms for each.
  Arrivals arrivals(uint32_t count) {
    std::vector<uint8_t> buffer(2048);
    Arrivals result;
    int64_t last = -1;
    while (result.in_order + result.dropped < count) {
      pollfd entry{packets, POLLIN, 0};
      if (poll(&entry, 1, 200) <= 0) break;
      const ssize_t n = recv(packets, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 18) break;
      const uint32_t i = load_be32(buffer.data() + 14);
      const auto expected = frame(i);
      if (static_cast<int64_t>(i) <= last || static_cast<size_t>(n) != expected.size() ||
          std::memcmp(buffer.data(), expected.data(), expected.size()) != 0) {
        result.all_good = false;
        break;
      }
      last = i;
      ++result.in_order;
      tpacket_stats stats{};
      socklen_t size = sizeof stats;
      REQUIRE(getsockopt(packets, SOL_PACKET, PACKET_STATISTICS, &stats, &size) == 0);
      result.dropped += stats.tp_drops;  // reading the statistics resets them
    }
    return result;
  }

  std::optional<TapDevice> tap;
  int packets = -1;
};

TEST_CASE("frames arrive whole and in order through many wraps of a small ring") {
  Rig rig;
  constexpr uint32_t kFrames = 3000;  // about 2 MiB through a 64 KiB ring: ~35 wraps
  // The socket's buffer holds a few hundred frames: read them as they come.
  auto rig_arrivals = std::async(std::launch::async, [&] { return rig.arrivals(kFrames); });
  TransmitQueue queue(*rig.tap, 64 * 1024);
  for (uint32_t i = 0; i < kFrames; ++i) {
    const auto bytes = Rig::frame(i);
    // Split in two as the event loop does with a virtio-net header in front.
    REQUIRE(queue.push(ByteView(bytes).first(10), ByteView(bytes).subspan(10)));
  }
  queue.flush();
  const TransmitQueueStats stats = queue.stats();
  CHECK(stats.frames_sent == kFrames);
  CHECK(stats.send_drops == 0);
  CHECK(stats.send_errors == 0);
  const Rig::Arrivals arrived = rig_arrivals.get();
  CHECK(arrived.all_good);
  CHECK(arrived.in_order + arrived.dropped == kFrames);
  CHECK(arrived.in_order > 0);
}

TEST_CASE("destroying the queue writes what it still holds") {
  Rig rig;
  {
    TransmitQueue queue(*rig.tap, 1 << 20);
    for (uint32_t i = 0; i < 100; ++i) REQUIRE(queue.push({}, Rig::frame(i)));
  }
  const Rig::Arrivals arrived = rig.arrivals(100);
  CHECK(arrived.all_good);
  CHECK(arrived.in_order == 100);
}

TEST_CASE("a frame larger than half the ring is refused; failed writes are counted") {
  Rig rig;
  TransmitQueue queue(*rig.tap, 64 * 1024);
  const std::vector<uint8_t> huge(40 * 1024, 0);
  CHECK_FALSE(queue.push({}, huge));
  // A frame shorter than an Ethernet header: the TAP refuses it (EINVAL).
  const uint8_t runt[4] = {};
  CHECK(queue.push({}, runt));
  queue.flush();
  CHECK(queue.stats().frames_sent == 0);
  CHECK(queue.stats().send_errors == 1);
  CHECK_FALSE(queue.last_error().empty());
}

// Segment i of flow `flow`: IPv4 and TCP from 198.18.0.2:(40000 + flow) to 198.18.0.1:6666,
// sequence number i, the payload a pattern of both. The destination MAC is not the kernel's:
// Linux's ip_rcv() drops it as another host's (PACKET_OTHERHOST), after the packet socket
// has seen it, so no TCP answers.
std::vector<uint8_t> tcp_frame(uint16_t flow, uint32_t i) {
  std::vector<uint8_t> bytes(14 + 40 + 1 + (i * 7919 + flow * 104729) % 1400);
  const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x99, 0x02, 0x00, 0xc6, 0x12, 0x00, 0x02};
  std::memcpy(bytes.data(), macs, sizeof macs);
  store_be16(&bytes[12], ETH_P_IP);
  uint8_t* ip = &bytes[14];
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<uint16_t>(bytes.size() - 14));
  ip[8] = 64;
  ip[9] = IPPROTO_TCP;
  store_be32(ip + 12, 0xc6120002);
  store_be32(ip + 16, 0xc6120001);
  uint8_t* tcp = ip + 20;
  store_be16(tcp, static_cast<uint16_t>(40000 + flow));
  store_be16(tcp + 2, 6666);
  store_be32(tcp + 4, i);
  tcp[12] = 5 << 4;
  for (size_t k = 54; k < bytes.size(); ++k) bytes[k] = static_cast<uint8_t>(i * 3 + flow + k);
  return bytes;
}

// Checks each frame the packet socket holds against tcp_frame(), and that each flow's numbers
// follow one another; counts the whole ones. Reads until `count` arrived or 200 ms pass idle.
struct FlowArrivals {
  explicit FlowArrivals(size_t flows) : last(flows, -1) {}

  void read(int packets, uint32_t count) {
    std::vector<uint8_t> buffer(2048);
    for (uint32_t got = 0; got < count && all_good;) {
      pollfd entry{packets, POLLIN, 0};
      if (poll(&entry, 1, 200) <= 0) return;
      sockaddr_ll from{};
      socklen_t from_size = sizeof from;
      const ssize_t n = recvfrom(packets, buffer.data(), buffer.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &from_size);
      if (n < 54 || from.sll_pkttype == PACKET_OUTGOING) continue;  // the kernel's own
      const size_t flow = load_be16(&buffer[34]) - size_t{40000};
      const uint32_t i = load_be32(&buffer[38]);
      if (flow >= last.size()) continue;
      const auto expected = tcp_frame(static_cast<uint16_t>(flow), i);
      const bool same = static_cast<size_t>(n) == expected.size() &&
                        std::memcmp(buffer.data(), expected.data(), expected.size()) == 0;
      if (!same || static_cast<int64_t>(i) != last[flow] + 1) {
        CAPTURE(flow);
        CAPTURE(i);
        CAPTURE(last[flow]);
        CHECK(same);
        CHECK(static_cast<int64_t>(i) == last[flow] + 1);
        all_good = false;
      }
      last[flow] = i;
      ++whole;
      ++got;
    }
  }

  std::vector<int64_t> last;  // the number of each flow's last frame
  uint32_t whole = 0;
  bool all_good = true;
};

TEST_CASE("two queues: frames of many flows arrive whole, each flow in order") {
  constexpr uint16_t kFlows = 8;
  constexpr uint32_t kRounds = 100;
  constexpr uint32_t kFramesPerRound = 5;  // per flow: 40 frames, well within the socket's room
  Rig rig(2, ETH_P_IP);
  TransmitQueues queues(*rig.tap, 256 * 1024);
  REQUIRE(queues.size() == 2);
  std::vector<size_t> flows_on(2);
  for (uint16_t flow = 0; flow < kFlows; ++flow) ++flows_on[queues.queue_of(tcp_frame(flow, 0))];
  CHECK(flows_on[0] > 0);
  CHECK(flows_on[1] > 0);
  // Each round, both threads write at once, round robin over the flows as a stack with many
  // connections sends; the socket is read between rounds, so that it never overflows.
  FlowArrivals arrivals(kFlows);
  for (uint32_t round = 0; round < kRounds && arrivals.all_good; ++round) {
    for (uint32_t i = round * kFramesPerRound; i < (round + 1) * kFramesPerRound; ++i) {
      for (uint16_t flow = 0; flow < kFlows; ++flow) REQUIRE(queues.push({}, tcp_frame(flow, i)));
    }
    queues.flush();
    arrivals.read(rig.packets, kFlows * kFramesPerRound);
  }
  const TransmitQueueStats stats = queues.stats();
  CHECK(stats.frames_sent == kFlows * kFramesPerRound * kRounds);
  CHECK(stats.send_errors == 0);
  CHECK(queues[0].stats().frames_sent > 0);
  CHECK(queues[1].stats().frames_sent > 0);
  tpacket_stats socket_stats{};
  socklen_t size = sizeof socket_stats;
  REQUIRE(getsockopt(rig.packets, SOL_PACKET, PACKET_STATISTICS, &socket_stats, &size) == 0);
  CHECK(socket_stats.tp_drops == 0);
  CHECK(arrivals.all_good);
  CHECK(arrivals.whole == kFlows * kFramesPerRound * kRounds);
}

}  // namespace
}  // namespace tapstack
