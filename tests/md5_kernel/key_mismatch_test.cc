// RFC 2385 §2.0 with the Linux kernel as the peer, keys not matching: a segment whose signature
// is missing, unexpected or wrong is dropped and answered with nothing. Whoever listens drops
// every SYN, counts each one under the counter Linux names, and sends nothing back (no SYN-ACK,
// no RST); the connection never forms. When the stack listens, its counters are checked; when
// the kernel listens, the kernel's (/proc/net/netstat), segment for segment.
#include <doctest/doctest.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "stack/tcp/header.h"
#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

constexpr const char* kWrongKey = "54321";

struct Mismatch {
  std::string_view name;
  Listener listener;
  KeyPlan keys;
  Md5Drop drop;  // what the listener counts for each SYN
};

// keys: {the kernel's, the stack's}
const std::vector<Mismatch> kMismatches = {
    {"kernel client without a key -> stack listener with one",
     Listener::Stack,
     {{}, {{kKernel, 32, kSeedKey}}},
     Md5Drop::NotFound},
    {"kernel client with a wrong key -> stack listener",
     Listener::Stack,
     {{{kStack, 32, kWrongKey}}, {{kKernel, 32, kSeedKey}}},
     Md5Drop::Failure},
    {"kernel client with a key -> stack listener without one",
     Listener::Stack,
     {{{kStack, 32, kSeedKey}}, {}},
     Md5Drop::Unexpected},
    {"stack client without a key -> kernel server with one",
     Listener::Kernel,
     {{{kStack, 32, kSeedKey}}, {}},
     Md5Drop::NotFound},
    {"stack client with a wrong key -> kernel server",
     Listener::Kernel,
     {{{kStack, 32, kSeedKey}}, {{kKernel, 32, kWrongKey}}},
     Md5Drop::Failure},
    {"stack client with a key -> kernel server without one",
     Listener::Kernel,
     {{}, {{kKernel, 32, kSeedKey}}},
     Md5Drop::Unexpected},
};

bool only_syns(const Outcome& outcome) {
  return std::all_of(outcome.segments.begin(), outcome.segments.end(),
                     [](const SegmentRecord& s) { return s.flags == tcp_flags::kSyn; });
}

TEST_CASE("keys that do not match: every SYN dropped, counted, unanswered; no connection") {
  TapRig rig;
  uint16_t port = kSeedPort;
  for (const Mismatch& row : kMismatches) {
    CAPTURE(row.name);
    const Outcome outcome = attempt_connection(rig, row.listener, port++, row.keys, kNeverForms);
    CHECK_FALSE(outcome.connected);
    CHECK(only_syns(outcome));
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

}  // namespace
}  // namespace tapstack::md5kernel
