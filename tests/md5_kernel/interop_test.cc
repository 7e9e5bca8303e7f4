// RFC 2385 with the Linux kernel as the peer, keys matching: the seed's setup (port 6666, key
// "12345", each side keyed for the other's address) in both directions, and the same with
// prefix keys (TCP_MD5SIG_EXT + TCP_MD5SIG_FLAG_PREFIX on the kernel, set_md5_key with a prefix
// on the stack), where the longest matching prefix must decide on both sides. Each row moves a
// few MiB each way at once; the bytes must arrive exactly, every segment on the link must be
// signed, and neither side may count a single MD5 drop.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

constexpr uint64_t kBytes = 3 << 20;
constexpr Ipv4Address kLink = Ipv4Address::from_octets(198, 18, 0, 0);

struct SignedTransfer {
  std::string_view name;
  Listener listener;
  KeyPlan keys;
};

// Keys for the link's /24 on both sides.
KeyPlan prefix_keys() {
  return {{{kLink, 24, kSeedKey}}, {{kLink, 24, kSeedKey}}};
}

// Each side holds a /24 key of its own (so a /24 choice on either side breaks the handshake)
// and a common /25 key, the longest match for the peer on both sides.
KeyPlan longest_prefix_keys() {
  return {{{kLink, 24, "kernel's /24"}, {kLink, 25, kSeedKey}},
          {{kLink, 24, "stack's /24"}, {kLink, 25, kSeedKey}}};
}

// Both Linux (tcp_options_write()) and the stack write NOP NOP 19 18 before any other option,
// so every signed segment, SYNs included, has its digest at byte 24 of the header.
bool digests_at_byte_24(const std::vector<SegmentRecord>& log) {
  return std::all_of(log.begin(), log.end(),
                     [](const SegmentRecord& s) { return s.digest_offset == 24; });
}

const std::vector<SignedTransfer> kTransfers = {
    {"seed: kernel client (client.c) -> stack listener", Listener::Stack, seed_keys()},
    {"seed: stack client -> kernel server (server.c)", Listener::Kernel, seed_keys()},
    {"/24 prefix keys: kernel client -> stack listener", Listener::Stack, prefix_keys()},
    {"/24 prefix keys: stack client -> kernel server", Listener::Kernel, prefix_keys()},
    {"longest prefix wins: kernel client -> stack listener", Listener::Stack,
     longest_prefix_keys()},
    {"longest prefix wins: stack client -> kernel server", Listener::Kernel, longest_prefix_keys()},
};

TEST_CASE("matching keys: MiB each way byte-exact, every segment signed, no MD5 drop either side") {
  TapRig rig;
  uint16_t port = kSeedPort;
  for (const SignedTransfer& row : kTransfers) {
    CAPTURE(row.name);
    rig.clear_log();
    const Md5Counters kernel_before = kernel_md5_counters();
    auto connection = open_connection(rig, row.listener, port++, row.keys, Duration::seconds(5));
    REQUIRE(connection);
    CHECK(rig.tcp().info(connection->stack)->md5);

    KernelStream kernel(connection->kernel.get(), 1);
    StackStream stack(rig.tcp(), connection->stack, 2);
    const Goal all{.send = kBytes, .finish = true};
    CHECK(run_exchange(rig, kernel, all, stack, all, Duration::seconds(30)));
    CAPTURE(kernel.error());
    CAPTURE(stack.error());
    CHECK(kernel.received_exactly(2, kBytes));
    CHECK(stack.received_exactly(1, kBytes));

    CHECK(rig.log().size() > 2 * kBytes / 1460);
    CHECK(digests_at_byte_24(rig.log()));
    CHECK(kernel_md5_counters() - kernel_before == Md5Counters{});
    CHECK(stack_md5_counters(rig.stack()) == Md5Counters{});
    close_connection(rig, *connection);
  }
}

}  // namespace
}  // namespace tapstack::md5kernel
