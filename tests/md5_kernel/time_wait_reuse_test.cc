// RFC 1122 §4.2.2.13 under RFC 2385, with the Linux kernel holding TIME-WAIT: a SYN with a
// higher sequence number on the old 4-tuple reopens the connection, and the kernel checks it
// with its listener's key as the key is now (tcp_v4_rcv(): TCP_TW_SYN, then the listener's
// tcp_inbound_hash()), not with the key the old connection had. The kernel closes first, so
// TIME-WAIT is its own; its listener's key then changes, and the stack connects again from the
// same port. Signed with the old key, the SYN is dropped unanswered and counted TCPMD5Failure;
// signed with the new one, the connection forms. tests/unit/tcp_md5_test.cc asks the same of
// the stack holding TIME-WAIT.
#include <doctest/doctest.h>

#include <string>

#include "tap/clock.h"
#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

constexpr uint16_t kStackPort = 40123;
const std::string kNewKey = "a key set after the old connection";

uint8_t whole(const TapRig& rig) {
  return rig.family() == IpFamily::Ipv4 ? 32 : 128;
}

// A stack socket connecting from kStackPort to the kernel's listener, signed with key.
SocketId stack_connect(TapRig& rig, const std::string& key) {
  Tcp& tcp = rig.tcp();
  const SocketId id = value_or_throw(tcp.open(), "stack open");
  set_stack_keys(tcp, id, {{rig.kernel_address(), whole(rig), key}});
  ok_or_throw(tcp.connect(id, rig.kernel_address(), kSeedPort, monotonic_now(), kStackPort),
              "stack connect");
  return id;
}

// Whether the stack's socket connected and the kernel's listener accepted it within limit.
bool handshake_done(TapRig& rig, SocketId id, const Fd& listener, Fd& accepted, Duration limit) {
  return rig.pump_until(
      [&] {
        if (accepted.get() < 0) accepted = try_accept(listener.get());
        return accepted.get() >= 0 && (rig.tcp().events(id) & socket_event::kConnected) != 0;
      },
      limit);
}

void reopen_time_wait(TapRig& rig) {
  const Fd listener =
      value_or_throw(kernel_listen(rig.kernel_address(), kSeedPort,
                                   std::vector<PeerKey>{{rig.stack_address(), whole(rig), kSeedKey}}),
                     "kernel listener");
  const SocketId old = stack_connect(rig, kSeedKey);
  Fd accepted;
  REQUIRE(handshake_done(rig, old, listener, accepted, Duration::seconds(5)));
  accepted.reset();  // the kernel's FIN first: TIME-WAIT will be the kernel's
  REQUIRE(rig.pump_until([&] { return (rig.tcp().events(old) & socket_event::kPeerClosed) != 0; },
                         Duration::seconds(5)));
  REQUIRE(rig.tcp().close(old, monotonic_now()));
  REQUIRE(rig.pump_until([&] { return rig.tcp().connection_count() == 0; }, Duration::seconds(5)));
  ok_or_throw(set_kernel_key(listener.get(), {rig.stack_address(), whole(rig), kNewKey}),
              "the listener's new key");

  rig.clear_log();
  const Md5Counters before = kernel_md5_counters();
  const SocketId stale = stack_connect(rig, kSeedKey);
  Fd none;
  CHECK_FALSE(handshake_done(rig, stale, listener, none, kNeverForms));
  rig.pump_for(Duration::milliseconds(20));
  const Outcome outcome{false, kernel_md5_counters() - before, {}, rig.log()};
  CHECK(outcome.count(FrameDirection::Received) == 0);
  CHECK(outcome.count(FrameDirection::Sent) >= 1);
  CHECK(outcome.kernel == Md5Counters::only(Md5Drop::Failure, outcome.count(FrameDirection::Sent)));
  REQUIRE(rig.tcp().close(stale, monotonic_now()));

  const SocketId fresh = stack_connect(rig, kNewKey);
  Fd reopened;
  CHECK(handshake_done(rig, fresh, listener, reopened, Duration::seconds(5)));
}

TEST_CASE("the kernel in TIME-WAIT checks a SYN that reopens it with its listener's key of now") {
  TapRig rig;
  reopen_time_wait(rig);
}

// tcp_v6_rcv(): TCP_TW_SYN the same way, then the IPv6 listener's key.
TEST_CASE("the same over IPv6: the kernel's IPv6 TIME-WAIT, its AF_INET6 listener's key of now") {
  TapRig rig(TapOffloads::None, 1, IpFamily::Ipv6);
  reopen_time_wait(rig);
}

}  // namespace
}  // namespace tapstack::md5kernel
