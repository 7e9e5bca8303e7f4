// RFC 7323 and RFC 2018 with the Linux kernel, checked on the wire: window scaling, timestamps
// and SACK are negotiated and then used in both directions — windows above 64 KiB, timestamps
// on every segment, SACK blocks from each side — while data moves both ways at once through
// real loss (2 % of TCP packets each way, dropped by nftables in a bridge between the stack's
// TAP and the kernel's namespace, see BridgedPeer), byte-exact. The stack runs in-process, and
// every frame it sends and receives is decoded with libtins (an independent decoder).
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "tests/support/netns.h"
#include "tests/tap/bridged_exchange.h"

namespace tapstack::testing {
namespace {

constexpr uint64_t kSize = 8 << 20;

TEST_CASE("window scaling, timestamps and SACK with the kernel, used both ways through 2 % loss") {
  enter_private_netns_or_skip();
  const BridgedExchange run = bridged_exchange(kSize, 2, TcpConfig{}, 6100);
  const Seen& ours = run.ours;
  const Seen& theirs = run.theirs;
  MESSAGE(fmt::format("{} MiB each way at 2 % loss each way in {:.2f} s; we sent {} segments "
                      "({} with SACK blocks, largest window {} B), the kernel {} ({} with SACK "
                      "blocks, largest window {} B); our retransmissions {}; resets: ours {}, "
                      "the kernel's {}",
                      kSize >> 20, run.seconds, ours.segments, ours.with_sack_blocks,
                      ours.largest_window, theirs.segments, theirs.with_sack_blocks,
                      theirs.largest_window, run.info.retransmits, ours.resets, theirs.resets));
  // Byte-exact both ways.
  CHECK(run.finished);
  CHECK(run.received_intact);
  CHECK(run.kernel.ok());
  CHECK(run.kernel_intact);
  // Negotiated on both SYNs...
  CHECK(ours.syn_window_scale.has_value());
  CHECK(theirs.syn_window_scale.has_value());
  CHECK(ours.syn_sack_permitted);
  CHECK(theirs.syn_sack_permitted);
  CHECK(ours.syn_timestamps);
  CHECK(theirs.syn_timestamps);
  CHECK(run.info.window_scaling);
  CHECK(run.info.timestamps);
  CHECK(run.info.sack);
  // ...and used: timestamps on every segment but resets (RFC 7323 §3.2), windows beyond 16
  // bits, SACK blocks each way.
  CHECK(ours.without_timestamps == 0);
  CHECK(theirs.without_timestamps == 0);
  CHECK(ours.largest_window > 65535u);
  CHECK(theirs.largest_window > 65535u);
  CHECK(ours.with_sack_blocks > 0);
  CHECK(theirs.with_sack_blocks > 0);
}

}  // namespace
}  // namespace tapstack::testing
