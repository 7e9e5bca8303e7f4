// SACK against the Linux kernel through loss: the same bidirectional transfer between the stack
// (in-process, on a TAP) and a kernel socket (in a namespace of its own, across a bridge where
// nftables drops a share of the TCP packets each way), once with SACK and once without (the
// stack then does not offer it, so neither side uses it). Prints the times and their ratio;
// asserts nothing about speed, only that both runs were byte-exact.
//
//   bazel run //tests/bench:sack_loss_bench -- [MiB each way; 256] [loss %; 2]
#include <charconv>
#include <cstdio>
#include <string_view>

#include <fmt/format.h>

#include "tests/support/netns.h"
#include "tests/tap/bridged_exchange.h"

namespace tapstack::testing {
namespace {

int parse(const char* text, int fallback, int low, int high) {
  int value = 0;
  const std::string_view s(text);
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  return error == std::errc{} && end == s.data() + s.size() && value >= low && value <= high
             ? value
             : fallback;
}

BridgedExchange run(uint64_t size, int loss, bool sack, uint16_t port) {
  enter_private_netns_or_skip();  // a fresh namespace for each run: tap0 and the bridge anew
  TcpConfig tcp;
  tcp.sack = sack;
  return bridged_exchange(size, loss, tcp, port);
}

int main_bench(int argc, char** argv) {
  const uint64_t mib = static_cast<uint64_t>(argc > 1 ? parse(argv[1], 256, 1, 4096) : 256);
  const int loss = argc > 2 ? parse(argv[2], 2, 0, 50) : 2;
  fmt::print("{} MiB each way at once, {} % of TCP packets lost each way\n", mib, loss);
  const BridgedExchange with = run(mib << 20, loss, true, 6200);
  fmt::print("  with SACK:    {:7.2f} s, {} retransmissions, intact: {}\n", with.seconds,
             with.info.retransmits, with.received_intact && with.kernel_intact);
  std::fflush(stdout);
  const BridgedExchange without = run(mib << 20, loss, false, 6201);
  fmt::print("  without SACK: {:7.2f} s, {} retransmissions, intact: {}\n", without.seconds,
             without.info.retransmits, without.received_intact && without.kernel_intact);
  fmt::print("  with SACK / without: {:.3f} of the time ({:.2f}x as fast)\n",
             with.seconds / without.seconds, without.seconds / with.seconds);
  const bool intact =
      with.received_intact && with.kernel_intact && without.received_intact && without.kernel_intact;
  return intact ? 0 : 1;
}

}  // namespace
}  // namespace tapstack::testing

int main(int argc, char** argv) { return tapstack::testing::main_bench(argc, argv); }
