// RFC 2385 over IPv6 with the Linux kernel as the peer: kernel sockets that set TCP_MD5SIG on
// AF_INET6 (the seed's server.c and client.c with IPv6 addresses), the stack on the other side
// of the TAP at 2001:db8::2. Matching keys move MiB each way, every segment signed; the three
// mismatch cases are dropped, counted and unanswered on either side with Linux's counters;
// prefix keys (TCP_MD5SIG_EXT with an IPv6 prefix) decide by the longest match; and one
// listener of ours takes the kernel's IPv4 and IPv6 connections, each with its own key.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "stack/tcp/header.h"
#include "tap/clock.h"
#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

constexpr uint64_t kBytes = 3 << 20;
constexpr const char* kWrongKey = "54321";
const IpAddress kLink6 = *IpAddress::parse("2001:db8::");

bool digests_at_byte_24(const std::vector<SegmentRecord>& log) {
  return std::all_of(log.begin(), log.end(),
                     [](const SegmentRecord& s) { return s.digest_offset == 24; });
}

bool all_ipv6(const std::vector<SegmentRecord>& log) {
  return std::all_of(log.begin(), log.end(), [](const SegmentRecord& s) {
    return !s.source.is_ipv4() && !s.destination.is_ipv4();
  });
}

struct SignedTransfer {
  std::string_view name;
  Listener listener;
  KeyPlan keys;
};

// Each side a /48 of its own (a /48 choice on either side breaks the handshake) and a common
// /64, the longest match for the peer on both sides.
KeyPlan longest_prefix_keys() {
  return {{{kLink6, 48, "kernel's /48"}, {kLink6, 64, kSeedKey}},
          {{kLink6, 48, "stack's /48"}, {kLink6, 64, kSeedKey}}};
}

TEST_CASE("IPv6, matching keys: MiB each way byte-exact, every segment signed, no MD5 drop") {
  TapRig rig(TapOffloads::None, 1, IpFamily::Ipv6);
  const std::vector<SignedTransfer> transfers = {
      {"seed over IPv6: kernel client -> stack listener", Listener::Stack,
       seed_keys(IpFamily::Ipv6)},
      {"seed over IPv6: stack client -> kernel server", Listener::Kernel,
       seed_keys(IpFamily::Ipv6)},
      {"/64 prefix keys: kernel client -> stack listener", Listener::Stack,
       {{{kLink6, 64, kSeedKey}}, {{kLink6, 64, kSeedKey}}}},
      {"/64 prefix keys: stack client -> kernel server", Listener::Kernel,
       {{{kLink6, 64, kSeedKey}}, {{kLink6, 64, kSeedKey}}}},
      {"longest prefix wins: kernel client -> stack listener", Listener::Stack,
       longest_prefix_keys()},
      {"longest prefix wins: stack client -> kernel server", Listener::Kernel,
       longest_prefix_keys()},
  };
  uint16_t port = kSeedPort;
  for (const SignedTransfer& row : transfers) {
    CAPTURE(row.name);
    rig.clear_log();
    const Md5Counters kernel_before = kernel_md5_counters();
    auto connection = open_connection(rig, row.listener, port++, row.keys, Duration::seconds(5));
    REQUIRE(connection);
    const auto info = rig.tcp().info(connection->stack);
    REQUIRE(info);
    CHECK(info->md5);
    CHECK(info->remote_address == kKernel6);
    CHECK(info->local_address == kStack6);

    KernelStream kernel(connection->kernel.get(), 1);
    StackStream stack(rig.tcp(), connection->stack, 2);
    const Goal all{.send = kBytes, .finish = true};
    CHECK(run_exchange(rig, kernel, all, stack, all, Duration::seconds(30)));
    CAPTURE(kernel.error());
    CAPTURE(stack.error());
    CHECK(kernel.received_exactly(2, kBytes));
    CHECK(stack.received_exactly(1, kBytes));

    // MSS 1420 each way: 1500 less 40 bytes of IPv6, 20 of TCP and 20 of the MD5 option.
    CHECK(rig.log().size() > 2 * kBytes / 1420);
    CHECK(all_ipv6(rig.log()));
    CHECK(all_segments(rig.log(), true));
    CHECK(digests_at_byte_24(rig.log()));
    CHECK(kernel_md5_counters() - kernel_before == Md5Counters{});
    CHECK(stack_md5_counters(rig.stack()) == Md5Counters{});
    close_connection(rig, *connection);
  }
}

struct Mismatch {
  std::string_view name;
  Listener listener;
  KeyPlan keys;  // {the kernel's, the stack's}
  Md5Drop drop;
};

TEST_CASE("IPv6, keys that do not match: every SYN dropped, counted, unanswered") {
  TapRig rig(TapOffloads::None, 1, IpFamily::Ipv6);
  const std::vector<Mismatch> mismatches = {
      {"kernel client without a key -> stack listener with one", Listener::Stack,
       {{}, {{kKernel6, 128, kSeedKey}}}, Md5Drop::NotFound},
      {"kernel client with a wrong key -> stack listener", Listener::Stack,
       {{{kStack6, 128, kWrongKey}}, {{kKernel6, 128, kSeedKey}}}, Md5Drop::Failure},
      {"kernel client with a key -> stack listener without one", Listener::Stack,
       {{{kStack6, 128, kSeedKey}}, {}}, Md5Drop::Unexpected},
      {"stack client without a key -> kernel server with one", Listener::Kernel,
       {{{kStack6, 128, kSeedKey}}, {}}, Md5Drop::NotFound},
      {"stack client with a wrong key -> kernel server", Listener::Kernel,
       {{{kStack6, 128, kSeedKey}}, {{kKernel6, 128, kWrongKey}}}, Md5Drop::Failure},
      {"stack client with a key -> kernel server without one", Listener::Kernel,
       {{}, {{kKernel6, 128, kSeedKey}}}, Md5Drop::Unexpected},
      // An IPv4 key does not cover an IPv6 peer (nor the other way round).
      {"kernel client keyed for us -> stack listener keyed for the kernel's IPv4 address",
       Listener::Stack, {{{kStack6, 128, kSeedKey}}, {{kKernel, 32, kSeedKey}}},
       Md5Drop::Unexpected},
  };
  uint16_t port = kSeedPort;
  for (const Mismatch& row : mismatches) {
    CAPTURE(row.name);
    const Outcome outcome = attempt_connection(rig, row.listener, port++, row.keys, kNeverForms);
    CHECK_FALSE(outcome.connected);
    CHECK(all_ipv6(outcome.segments));
    CHECK(std::all_of(outcome.segments.begin(), outcome.segments.end(),
                      [](const SegmentRecord& s) { return s.flags == tcp_flags::kSyn; }));
    if (row.listener == Listener::Stack) {
      const size_t syns = outcome.count(FrameDirection::Received);
      CHECK(syns >= 2);  // the kernel's SYN and at least one retransmission
      CHECK(outcome.count(FrameDirection::Sent) == 0);
      CHECK(outcome.stack == Md5Counters::only(row.drop, syns));
      CHECK(outcome.kernel.zero());
    } else {
      const size_t syns = outcome.count(FrameDirection::Sent);
      CHECK(syns >= 2);
      CHECK(outcome.count(FrameDirection::Received) == 0);
      CHECK(outcome.kernel == Md5Counters::only(row.drop, syns));
      CHECK(outcome.stack.zero());
    }
  }
}

// One stack listener with a key for each of the kernel's addresses: an AF_INET client with
// the IPv4 key and an AF_INET6 client with the IPv6 key both connect signed; an AF_INET6
// client that signs with the IPv4 key is dropped as a wrong digest.
TEST_CASE("a dual-stack listener: the kernel connects over IPv4 and IPv6, each with its own key") {
  TapRig rig(TapOffloads::None, 1, IpFamily::Ipv6);
  Tcp& tcp = rig.tcp();
  const SocketId listener = value_or_throw(tcp.listen(kSeedPort, 8), "listen");
  set_stack_keys(tcp, listener, {{kKernel, 32, "key for IPv4"}, {kKernel6, 128, "key for IPv6"}});

  const std::vector<PeerKey> key4 = {{kStack, 32, "key for IPv4"}};
  const std::vector<PeerKey> key6 = {{kStack6, 128, "key for IPv6"}};
  const std::vector<PeerKey> wrong6 = {{kStack6, 128, "key for IPv4"}};
  Fd over4 = value_or_throw(kernel_start_connect(kKernel, kStack, kSeedPort, key4), "IPv4");
  Fd over6 = value_or_throw(kernel_start_connect(kKernel6, kStack6, kSeedPort, key6), "IPv6");
  std::vector<SocketId> accepted;
  CHECK(rig.pump_until(
      [&] {
        while (auto id = tcp.accept(listener)) accepted.push_back(*id);
        return accepted.size() == 2 && connect_result(over4.get()) == 0 &&
               connect_result(over6.get()) == 0;
      },
      Duration::seconds(5)));
  REQUIRE(accepted.size() == 2);
  std::vector<IpAddress> remotes;
  for (const SocketId id : accepted) {
    const auto info = tcp.info(id);
    REQUIRE(info);
    CHECK(info->md5);
    remotes.push_back(info->remote_address);
  }
  CHECK(std::count(remotes.begin(), remotes.end(), IpAddress(kKernel)) == 1);
  CHECK(std::count(remotes.begin(), remotes.end(), kKernel6) == 1);
  CHECK(all_segments(rig.log(), true));
  CHECK(stack_md5_counters(rig.stack()) == Md5Counters{});

  rig.clear_log();
  const Md5Counters before = stack_md5_counters(rig.stack());
  Fd wrong = value_or_throw(kernel_start_connect(kKernel6, kStack6, kSeedPort, wrong6), "wrong");
  rig.pump_for(kNeverForms);
  CHECK(connect_result(wrong.get()) != 0);
  const size_t syns = static_cast<size_t>(
      std::count_if(rig.log().begin(), rig.log().end(),
                    [](const SegmentRecord& s) { return s.direction == FrameDirection::Received; }));
  CHECK(syns >= 2);
  CHECK(stack_md5_counters(rig.stack()) - before == Md5Counters::only(Md5Drop::Failure, syns));
  tcp.close(listener, monotonic_now());
}

}  // namespace
}  // namespace tapstack::md5kernel
