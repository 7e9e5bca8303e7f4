// The TAP as the tapstack tool opens it, with virtio-net headers and TCP offloads, against the
// kernel: unsigned connections move in frames of many segments both ways (our TSO, checksums
// completed by the kernel; the kernel's TSO to us, checksums not filled in), signed ones one
// signed segment per frame as Linux does for a socket with a key; bytes exact either way.
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

size_t largest_payload(const std::vector<SegmentRecord>& log, FrameDirection direction) {
  size_t largest = 0;
  for (const SegmentRecord& s : log) {
    if (s.direction == direction) largest = std::max<size_t>(largest, s.payload_size);
  }
  return largest;
}

struct Row {
  std::string_view name;
  Listener listener;
};
constexpr Row kRows[] = {{"kernel client -> stack listener", Listener::Stack},
                         {"stack client -> kernel server", Listener::Kernel}};

// A connection after its exchange, and our send MSS, read while it was surely open: once both
// sides have finished, our end may be closed and gone.
struct Exchanged {
  Connection connection;
  size_t mss = 0;
};

// Opens a connection (`row.listener` listening, `keys` as given), moves `bytes` each way at
// once and checks they arrived exactly. Returns the connection for the caller's checks;
// nullopt (with the failure recorded) when it did not form.
std::optional<Exchanged> exchange(TapRig& rig, const Row& row, const KeyPlan& keys,
                                  uint64_t bytes, uint16_t port) {
  rig.clear_log();
  auto connection = open_connection(rig, row.listener, port, keys, Duration::seconds(5));
  CHECK(connection);
  if (!connection) return std::nullopt;
  const auto info = rig.tcp().info(connection->stack);
  REQUIRE(info);
  const size_t mss = info->snd_mss;
  KernelStream kernel(connection->kernel.get(), 1);
  StackStream stack(rig.tcp(), connection->stack, 2);
  const Goal all{.send = bytes, .finish = true};
  CHECK(run_exchange(rig, kernel, all, stack, all, Duration::seconds(60)));
  CAPTURE(kernel.error());
  CAPTURE(stack.error());
  CHECK(kernel.received_exactly(2, bytes));
  CHECK(stack.received_exactly(1, bytes));
  return Exchanged{std::move(*connection), mss};
}

void unsigned_offloaded(IpFamily family) {
  TapRig rig(TapOffloads::TcpOffloads, 1, family);
  uint16_t port = 7000;
  for (const Row& row : kRows) {
    CAPTURE(row.name);
    const uint64_t out_segments = rig.stack().counters()[Counter::TcpOutSegs];
    auto exchanged = exchange(rig, row, KeyPlan{}, 32 << 20, port++);
    if (!exchanged) continue;
    const size_t mss = exchanged->mss;
    // Ours: segments of many MSS, which the kernel took (the bytes arrived) with the
    // checksums it completed itself.
    CHECK(largest_payload(rig.log(), FrameDirection::Sent) >= 10 * mss);
    // The kernel's: it sent us TSO frames, checksums left to us to trust.
    CHECK(largest_payload(rig.log(), FrameDirection::Received) > 2 * mss);
    // TcpOutSegs counts segments on the wire, as Linux does, not frames.
    const size_t frames_sent = std::count_if(rig.log().begin(), rig.log().end(), [](const auto& s) {
      return s.direction == FrameDirection::Sent;
    });
    CHECK(rig.stack().counters()[Counter::TcpOutSegs] - out_segments > frames_sent);
    CHECK(rig.stack().counters().drops(DropReason::TcpBadChecksum) == 0);
    close_connection(rig, exchanged->connection);
  }
}

TEST_CASE("unsigned: 32 MiB each way byte-exact, in frames of many segments both ways") {
  unsigned_offloaded(IpFamily::Ipv4);
}

// TUN_F_TSO6: our frames carry VIRTIO_NET_HDR_GSO_TCPV6, the kernel's GSO over IPv6 reaches us.
TEST_CASE("unsigned over IPv6: the same, in TSO6 frames both ways") {
  unsigned_offloaded(IpFamily::Ipv6);
}

void signed_one_segment_a_frame(IpFamily family) {
  TapRig rig(TapOffloads::TcpOffloads, 1, family);
  uint16_t port = 7100;
  for (const Row& row : kRows) {
    CAPTURE(row.name);
    const Md5Counters kernel_before = kernel_md5_counters();
    auto exchanged = exchange(rig, row, seed_keys(family), 4 << 20, port++);
    if (!exchanged) continue;
    const size_t mss = exchanged->mss;
    CHECK(largest_payload(rig.log(), FrameDirection::Sent) == mss);
    CHECK(largest_payload(rig.log(), FrameDirection::Received) <= mss);
    CHECK(std::all_of(rig.log().begin(), rig.log().end(),
                      [](const SegmentRecord& s) { return s.md5(); }));
    CHECK(kernel_md5_counters() - kernel_before == Md5Counters{});
    CHECK(stack_md5_counters(rig.stack()) == Md5Counters{});
    close_connection(rig, exchanged->connection);
  }
}

TEST_CASE("signed: every frame one signed segment both ways, as Linux sends with a key") {
  signed_one_segment_a_frame(IpFamily::Ipv4);
}

TEST_CASE("signed over IPv6: the same") {
  signed_one_segment_a_frame(IpFamily::Ipv6);
}

}  // namespace
}  // namespace tapstack::md5kernel
