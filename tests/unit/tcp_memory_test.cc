// What a connection holds in memory (Tcp::memory(), like `ss -m`): an idle connection only its
// control block; the out-of-order queue, the SACK scoreboard, CUBIC's state, the MD5 keys and a
// listener's queues exist while they are needed; emptied socket buffers are given back after
// Tcp::kBufferTrimDelay and the bytes reported once (Tcp::take_freed_buffer_bytes()), for
// tap/memory_release.h to return to the system.
#include <doctest/doctest.h>

#include "tap/memory_release.h"
#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint32_t P = TcpScript::kPeerIss + 1;

SocketMemory memory(TcpScript& t, SocketId id) {
  auto m = t.tcp().memory(id);
  REQUIRE(m);
  return *m;
}

TEST_CASE("an idle connection holds its control block and nothing else; a listener its queues") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  const SocketMemory idle = memory(t, id);
  CHECK(idle.control_block > 0);
  CHECK(idle.total() == idle.control_block);
  const SocketMemory listener = memory(t, t.listener);
  CHECK(listener.listener > 0);
  CHECK(listener.total() == listener.control_block + listener.listener);
  CHECK(t.tcp().buffer_memory() == 0);
}

TEST_CASE("the out-of-order queue is made by data beyond a gap and freed when the gap fills") {
  TcpScript t;
  const SocketId id = t.establish_passive_with_sack();
  const auto first = t.send(ACK, P + 10, t.iss + 1, text("bbbbb"));
  REQUIRE(first.size() == 1);
  CHECK(first[0].sack == std::vector<std::pair<uint32_t, uint32_t>>{{P + 10, P + 15}});
  const auto second = t.send(ACK, P + 20, t.iss + 1, text("ccccc"));
  REQUIRE(second.size() == 1);
  CHECK(second[0].sack ==
        std::vector<std::pair<uint32_t, uint32_t>>{{P + 20, P + 25}, {P + 10, P + 15}});
  CHECK(memory(t, id).out_of_order > 10);
  CHECK(t.tcp().buffer_memory() == 10);
  // One gap filled: the queue stays for the other.
  t.send(ACK, P + 15, t.iss + 1, text("ddddd"));
  CHECK(memory(t, id).out_of_order > 0);
  const auto filled = t.send(ACK, P, t.iss + 1, text("aaaaaaaaaa"));
  REQUIRE(filled.size() == 1);
  CHECK(filled[0].ack == P + 25);
  CHECK(filled[0].sack.empty());
  CHECK(memory(t, id).out_of_order == 0);
  CHECK(t.read_all(id) == "aaaaaaaaaabbbbbdddddccccc");
  CHECK(t.tcp().check_invariants().empty());
  // A later hole makes the queue again, and its block is the latest.
  const auto again = t.send(ACK, P + 30, t.iss + 1, text("eeeee"));
  REQUIRE(again.size() == 1);
  CHECK(again[0].sack == std::vector<std::pair<uint32_t, uint32_t>>{{P + 30, P + 35}});
  CHECK(memory(t, id).out_of_order > 0);
}

TEST_CASE("the out-of-order queue goes with the peer's FIN") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  t.send(ACK, P + 4, t.iss + 1, text("junk"));
  CHECK(memory(t, id).out_of_order > 0);
  t.send(FIN | ACK, P, t.iss + 1, text("abcd"));
  CHECK(memory(t, id).out_of_order == 0);
  CHECK(t.read_all(id) == "abcd");
}

TEST_CASE("the SACK scoreboard is made by the first SACK block and freed by the cumulative ACK") {
  TcpScript t;
  const SocketId id = t.establish_passive_with_sack(1000);
  REQUIRE(t.tcp().send(id, Bytes(4 * 1000, 's'), t.now));
  REQUIRE(t.sent().size() == 4);
  CHECK(memory(t, id).sack_scoreboard == 0);
  const uint32_t base = t.iss + 1;
  t.send_with(ACK, P, base, [&](Tins::TCP& tcp) { tcp.sack({base + 1000, base + 2000}); });
  CHECK(memory(t, id).sack_scoreboard > 0);
  CHECK(t.tcp().info(id)->sacked == 1000);
  // An ACK up to the block's start keeps it; one past it frees the board.
  t.send(ACK, P, base + 1000);
  CHECK(memory(t, id).sack_scoreboard > 0);
  t.send(ACK, P, base + 2000);
  CHECK(memory(t, id).sack_scoreboard == 0);
  CHECK(t.tcp().info(id)->sacked == 0);
  CHECK(t.tcp().check_invariants().empty());
}

TEST_CASE("CUBIC's state is made at the first loss; NewReno never has one") {
  for (const bool cubic : {true, false}) {
    CAPTURE(cubic);
    TcpScript t;
    const SocketId id = t.establish_passive();
    SocketOptions options = *t.tcp().options(id);
    options.cubic = cubic;
    REQUIRE(t.tcp().set_options(id, options));
    REQUIRE(t.tcp().send(id, text("lost"), t.now));
    REQUIRE(t.sent().size() == 1);
    CHECK(memory(t, id).congestion == 0);
    const auto resent = t.wait(Duration::seconds(1));  // retransmission timeouts
    REQUIRE_FALSE(resent.empty());
    CHECK(resent[0].payload == text("lost"));
    CHECK((memory(t, id).congestion > 0) == cubic);
  }
}

TEST_CASE("the MD5 key table exists while the socket has a key") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  const Bytes key = text("12345");
  REQUIRE(t.tcp().set_md5_key(id, ip(kPeerIp), 32, key));
  CHECK(memory(t, id).md5_keys > 0);
  CHECK(t.tcp().info(id)->md5);
  REQUIRE(t.tcp().set_md5_key(id, ip(kPeerIp), 32, {}));  // an empty key deletes it
  CHECK(memory(t, id).md5_keys == 0);
  CHECK_FALSE(t.tcp().info(id)->md5);
  CHECK(t.tcp().set_md5_key(id, ip(kPeerIp), 32, {}).error().code == ENOENT);
  CHECK(memory(t, id).md5_keys == 0);
}

TEST_CASE("emptied buffers are given back after a second idle, and the bytes reported once") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  REQUIRE(t.tcp().take_freed_buffer_bytes() == 0);
  t.send(ACK | PSH, P, t.iss + 1, text("ping"));
  CHECK(t.read_all(id) == "ping");
  REQUIRE(t.tcp().send(id, text("pong"), t.now));
  t.send(ACK, P + 4, t.iss + 5);
  const SocketMemory busy = memory(t, id);
  CHECK(busy.send_buffer > 0);
  CHECK(busy.receive_buffer > 0);
  t.wait(Duration::milliseconds(900));
  CHECK(t.tcp().take_freed_buffer_bytes() == 0);  // kept for the next burst
  t.wait(Duration::milliseconds(200));
  const SocketMemory idle = memory(t, id);
  CHECK(idle.send_buffer == 0);
  CHECK(idle.receive_buffer == 0);
  CHECK(t.tcp().buffer_memory() == 0);
  CHECK(t.tcp().take_freed_buffer_bytes() == busy.send_buffer + busy.receive_buffer);
  CHECK(t.tcp().take_freed_buffer_bytes() == 0);
}

TEST_CASE("the buffers of a connection that ends are reported freed with it") {
  TcpScript t;
  const SocketId id = t.establish_passive();
  t.send(ACK | PSH, P, t.iss + 1, text("unread"));
  const size_t held = memory(t, id).receive_buffer;
  REQUIRE(held > 0);
  REQUIRE(t.tcp().abort(id, t.now));
  CHECK(t.tcp().take_freed_buffer_bytes() == held);
}

TEST_CASE(
    "MemoryRelease: a release once the freed bytes pass the threshold, at most one per interval") {
  TcpScript t;
  MemoryRelease release(
      MemoryReleaseOptions{.threshold = 8000, .min_interval = Duration::seconds(1)});
  auto free_some = [&] {  // one connection that received data and ended: 4 KiB freed
    const SocketId id = t.establish_passive();
    t.send(ACK | PSH, P, t.iss + 1, text("data"));
    REQUIRE(t.tcp().abort(id, t.now));
    REQUIRE(t.tcp().close(t.listener, t.now));
    t.sent();  // the reset
  };
  free_some();
  CHECK_FALSE(release.poll(t.stack, t.now));  // 4 KiB: not yet worth a walk of the heap
  CHECK(release.pending_bytes() == 4096);
  CHECK(release.next_deadline().is_never());
  free_some();
  CHECK(release.poll(t.stack, t.now));
  CHECK(release.releases() == 1);
  CHECK(release.pending_bytes() == 0);
  free_some();
  free_some();
  CHECK_FALSE(release.poll(t.stack, t.now));  // too soon after the last
  CHECK(release.next_deadline() == t.now + Duration::seconds(1));
  t.wait(Duration::seconds(1));
  CHECK(release.poll(t.stack, t.now));
  CHECK(release.releases() == 2);
  CHECK(release.next_deadline().is_never());
}

TEST_CASE("MemoryRelease with a threshold of 0 never releases") {
  TcpScript t;
  MemoryRelease release(MemoryReleaseOptions{.threshold = 0});
  const SocketId id = t.establish_passive();
  t.send(ACK | PSH, P, t.iss + 1, text("data"));
  REQUIRE(t.tcp().abort(id, t.now));
  CHECK_FALSE(release.poll(t.stack, t.now));
  CHECK(release.next_deadline().is_never());
  CHECK(release.releases() == 0);
}

}  // namespace
}  // namespace tapstack::test
