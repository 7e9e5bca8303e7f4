// A key changed on a live connection while data flows both ways: the kernel calls
// setsockopt(TCP_MD5SIG) again on its connected socket, the stack calls set_md5_key on its
// connection, one side kLag after the other, halfway through the streams. In between, each side
// drops what the other signs (TCPMD5Failure on both), both retransmit, and once both hold the new
// key the streams go on and arrive byte-exact. kLag is longer than both sides' retransmission
// timeout (200 ms at least), so that both send while the keys differ even when the windows are
// full.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string_view>
#include <vector>

#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kBytes = 4 << 20;
constexpr auto kLag = std::chrono::milliseconds(500);
constexpr const char* kNewKey = "a new key, from the next segment on";

struct Rekey {
  std::string_view name;
  Listener listener;
  bool stack_first;  // the stack changes its key first, the kernel kLag later; or the reverse
};

const std::vector<Rekey> kRekeys = {
    {"kernel client -> stack listener; the stack changes first", Listener::Stack, true},
    {"stack client -> kernel server; the kernel changes first", Listener::Kernel, false},
};

// The first side changes its key at once, the second kLag after the first did. Each side asks
// from its own thread.
class KeyChange {
 public:
  bool due(bool first_side) const {
    const Clock::rep first_at = first_at_.load();
    if (first_side) return first_at == kNotYet;
    return first_at != kNotYet && !second_done_.load() &&
           Clock::now() >= Clock::time_point(Clock::duration(first_at)) + kLag;
  }
  void done(bool first_side) {
    if (first_side) {
      first_at_.store(Clock::now().time_since_epoch().count());
    } else {
      second_done_.store(true);
    }
  }
  bool both_done() const { return first_at_.load() != kNotYet && second_done_.load(); }

 private:
  static constexpr Clock::rep kNotYet = -1;
  std::atomic<Clock::rep> first_at_{kNotYet};
  std::atomic<bool> second_done_{false};
};

void rekey_mid_stream(TapRig& rig) {
  const uint8_t whole = rig.family() == IpFamily::Ipv4 ? 32 : 128;
  uint16_t port = kSeedPort;
  for (const Rekey& row : kRekeys) {
    CAPTURE(row.name);
    rig.clear_log();
    const Md5Counters kernel_before = kernel_md5_counters();
    const Md5Counters stack_before = stack_md5_counters(rig.stack());
    const uint64_t stack_retransmits = rig.stack().counters()[Counter::TcpRetransSegs];
    const uint64_t kernel_retransmits = kernel_counter("snmp", "Tcp", "RetransSegs");
    auto connection =
        open_connection(rig, row.listener, port++, seed_keys(rig.family()), Duration::seconds(5));
    REQUIRE(connection);

    KernelStream kernel(connection->kernel.get(), 1);
    StackStream stack(rig.tcp(), connection->stack, 2);
    // First half: the old key, until everything sent is received, so that the second half
    // starts with both sides sending a full window at once.
    const Goal half{.send = kBytes / 2, .receive = kBytes / 2};
    REQUIRE(run_exchange(rig, kernel, half, stack, half, Duration::seconds(15)));

    KeyChange change;
    const auto kernel_turn = [&] {
      if (!change.due(!row.stack_first)) return;
      ok_or_throw(set_kernel_key(connection->kernel.get(), {rig.stack_address(), whole, kNewKey}),
                  "kernel key");
      change.done(!row.stack_first);
    };
    const auto stack_turn = [&](Instant) {
      if (!change.due(row.stack_first)) return;
      ok_or_throw(rig.tcp().set_md5_key(connection->stack, rig.kernel_address(), whole,
                                        key_bytes(kNewKey)),
                  "stack key");
      change.done(row.stack_first);
    };
    const Goal all{.send = kBytes, .finish = true};
    CHECK(
        run_exchange(rig, kernel, all, stack, all, Duration::seconds(30), kernel_turn, stack_turn));
    CAPTURE(kernel.error());
    CAPTURE(stack.error());
    CHECK(change.both_done());
    CHECK(kernel.received_exactly(2, kBytes));
    CHECK(stack.received_exactly(1, kBytes));

    const Md5Counters kernel_moved = kernel_md5_counters() - kernel_before;
    const Md5Counters stack_moved = stack_md5_counters(rig.stack()) - stack_before;
    CHECK(kernel_moved.failure > 0);
    CHECK(stack_moved.failure > 0);
    CHECK(kernel_moved == Md5Counters::only(Md5Drop::Failure, kernel_moved.failure));
    CHECK(stack_moved == Md5Counters::only(Md5Drop::Failure, stack_moved.failure));
    CHECK(rig.stack().counters()[Counter::TcpRetransSegs] > stack_retransmits);
    CHECK(kernel_counter("snmp", "Tcp", "RetransSegs") > kernel_retransmits);
    CHECK(all_segments(rig.log(), true));
    close_connection(rig, *connection);
  }
}

TEST_CASE("a key changed on both sides mid-stream: in-flight segments fail, data stays exact") {
  TapRig rig;
  rekey_mid_stream(rig);
}

TEST_CASE("the same over IPv6: TCP_MD5SIG set again on the kernel's AF_INET6 socket mid-stream") {
  TapRig rig(TapOffloads::None, 1, IpFamily::Ipv6);
  rekey_mid_stream(rig);
}

}  // namespace
}  // namespace tapstack::md5kernel
