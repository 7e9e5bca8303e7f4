// A live signed connection with the kernel (the seed's client against the stack's listener)
// and segments spoofed into it, each with the connection's real 4-tuple and exactly the
// sequence and acknowledgment numbers its target expects next (taken from the last segment the
// other end sent, as the rig's log saw it). Each spoof goes to the stack, written with an
// AF_PACKET socket bound to the kernel's side of the TAP, and then, mirrored, to the kernel,
// written into the TAP: the kernel is the oracle.
//
// The matrix of issue 7: RST, SYN, FIN, data and ACK segments, each with no option, a wrong
// digest, a digest made with another key, a digest made for another connection's 4-tuple, an
// option cut short, of length 17 or of length 20; data whose data offset reaches into its
// payload; all 256 combinations of flags without the option. Both ends must drop every one
// before it touches the connection (RFC 2385 §2.0), answer nothing, and count it as the table
// says. Then replays of earlier valid segments of the connection: their signatures verify (RFC
// 2385 cannot tell a replay), TCP's sequence check drops them, and as RFC 9293 §3.10.7.4 asks
// (and the kernel does) the answer is at most one ACK of where the connection really is.
// Finally the connection carries the rest of both streams byte-exact: accepted, any of the
// spoofs would have reset it, closed it or put bytes into a stream.
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "md5opt/option.h"
#include "stack/tcp/header.h"
#include "tests/md5_kernel/craft.h"
#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

using namespace tcp_flags;

constexpr uint64_t kBytes = 1 << 20;
const Duration kSettle = Duration::milliseconds(150);

// A way of getting the option wrong, and what each end counts it as.
struct BadSignature {
  std::string_view what;
  Signature signature;
  DropReason stack_drop;                 // the stack's drop reason (and its nstat counter)
  std::optional<Md5Drop> kernel_counts;  // what the kernel counts it as; nullopt: nothing
};

// The stack and the kernel differ on one thing: an MD5 option whose length is not 18. Linux
// since 6.7 parses options with tcp_do_parse_auth_options(), which calls such a list malformed
// and drops the segment as SKB_DROP_REASON_TCP_AUTH_HDR, counted under no TCPMD5 counter;
// md5opt::find_md5_option() keeps the rule of the older tcp_parse_md5sig_option(): no option,
// so TCPMD5NotFound. Both drop it unanswered. An option cut short is NotFound on both: Linux
// stops parsing when fewer bytes are left than an MD5 option takes.
constexpr BadSignature kBadSignatures[] = {
    {"without the option", Signature::None, DropReason::Md5NotFound, Md5Drop::NotFound},
    {"with a wrong digest", Signature::FlippedBit, DropReason::Md5Failure, Md5Drop::Failure},
    {"signed with another key", Signature::WrongKey, DropReason::Md5Failure, Md5Drop::Failure},
    {"signed for another connection's 4-tuple", Signature::OtherTuple, DropReason::Md5Failure,
     Md5Drop::Failure},
    {"with the option cut short", Signature::CutShort, DropReason::Md5NotFound, Md5Drop::NotFound},
    {"with an option of length 17", Signature::Length17, DropReason::Md5NotFound, std::nullopt},
    {"with an option of length 20", Signature::Oversized, DropReason::Md5NotFound, std::nullopt},
};

struct SegmentKind {
  std::string_view name;
  uint8_t flags;
  std::string_view payload;
};

constexpr SegmentKind kKinds[] = {
    {"RST", kRst, ""},        {"SYN", kSyn, ""},
    {"FIN", kFin | kAck, ""}, {"data", kAck | kPsh, "spoofed"},
    {"ACK", kAck, ""},
};

struct Spoof {
  std::string name;
  uint8_t flags;
  std::string payload;
  BadSignature bad;
};

// Every kind with every bad signature, and data whose header claims 8 bytes of its payload
// (eight NOPs, so that both parsers read them as options): signed for the real layout, the
// moved data offset (covered by the digest) makes it fail.
std::vector<Spoof> spoofs() {
  std::vector<Spoof> all;
  for (const SegmentKind& kind : kKinds) {
    for (const BadSignature& bad : kBadSignatures) {
      all.push_back(
          {fmt::format("{} {}", kind.name, bad.what), kind.flags, std::string(kind.payload), bad});
    }
  }
  all.push_back({"data whose data offset reaches 8 bytes into its payload",
                 kAck | kPsh,
                 std::string(8, '\x01') + "spoofed",
                 {"", Signature::OverlapsPayload, DropReason::Md5Failure, Md5Drop::Failure}});
  return all;
}

Md5Counters counted_as(DropReason drop, uint64_t n = 1) {
  return Md5Counters::only(drop == DropReason::Md5Failure ? Md5Drop::Failure : Md5Drop::NotFound,
                           n);
}

Md5Counters counted_as(std::optional<Md5Drop> drop) {
  return drop ? Md5Counters::only(*drop, 1) : Md5Counters{};
}

ByteView bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The segment the other end of `direction`'s last segment would send next: seq is the
// target's RCV.NXT, ack its SND.NXT, all of it acknowledged.
Flow next_after_last(const std::vector<SegmentRecord>& log, FrameDirection direction) {
  const auto last = std::find_if(log.rbegin(), log.rend(),
                                 [&](const SegmentRecord& s) { return s.direction == direction; });
  REQUIRE(last != log.rend());
  return {*Ipv4Address::from(last->source),
          *Ipv4Address::from(last->destination),
          last->source_port,
          last->destination_port,
          last->seq + last->payload_size,
          last->ack};
}

std::vector<SegmentRecord> segments(const std::vector<SegmentRecord>& log,
                                    FrameDirection direction) {
  std::vector<SegmentRecord> out;
  std::copy_if(log.begin(), log.end(), std::back_inserter(out),
               [&](const SegmentRecord& s) { return s.direction == direction; });
  return out;
}

// The two ends of the live connection, and what a spoof at either takes.
struct Target {
  TapRig& rig;
  SocketId stack_socket;
  Flow to_stack;   // as the kernel would send next
  Flow to_kernel;  // as the stack would send next
  KernelSideWriter writer;

  void to_the_stack(const Bytes& tcp, const Flow& flow) {
    writer.send(crafted_frame(rig.kernel_mac(), kStackMac, flow, tcp), kStackMac);
  }
  void to_the_kernel(const Bytes& tcp, const Flow& flow) {
    rig.write_to_kernel(crafted_frame(kStackMac, rig.kernel_mac(), flow, tcp));
  }
  bool established() const {
    const auto info = rig.tcp().info(stack_socket);
    return info && info->state == TcpState::Established;
  }
};

void spoof_the_stack(Target& t, const Spoof& spoof) {
  t.rig.clear_log();
  const Md5Counters before = stack_md5_counters(t.rig.stack());
  const uint64_t drops_before = t.rig.stack().counters().drops(spoof.bad.stack_drop);
  const uint64_t frames_out = t.rig.stack().counters()[Counter::EthOutFrames];
  t.to_the_stack(crafted_segment(t.to_stack, spoof.flags, bytes_of(spoof.payload),
                                 spoof.bad.signature, kSeedKey),
                 t.to_stack);
  t.rig.pump_for(kSettle);
  CHECK(segments(t.rig.log(), FrameDirection::Received).size() == 1);    // the spoof arrived
  CHECK(t.rig.stack().counters()[Counter::EthOutFrames] == frames_out);  // nothing answered
  CHECK(t.rig.stack().counters().drops(spoof.bad.stack_drop) == drops_before + 1);
  CHECK(stack_md5_counters(t.rig.stack()) - before == counted_as(spoof.bad.stack_drop));
  CHECK(t.established());
}

void spoof_the_kernel(Target& t, const Spoof& spoof) {
  t.rig.clear_log();
  const Md5Counters before = kernel_md5_counters();
  t.to_the_kernel(crafted_segment(t.to_kernel, spoof.flags, bytes_of(spoof.payload),
                                  spoof.bad.signature, kSeedKey),
                  t.to_kernel);
  t.rig.pump_for(kSettle);
  CHECK(segments(t.rig.log(), FrameDirection::Received).empty());  // the kernel answered nothing
  CHECK(kernel_md5_counters() - before == counted_as(spoof.bad.kernel_counts));
}

// 256 flag combinations, none signed, at one end: every one NotFound, nothing answered.
void every_flag_combination(Target& t) {
  t.rig.clear_log();
  const Md5Counters stack_before = stack_md5_counters(t.rig.stack());
  const Md5Counters kernel_before = kernel_md5_counters();
  const uint64_t frames_out = t.rig.stack().counters()[Counter::EthOutFrames];
  for (int flags = 0; flags < 256; ++flags) {
    const auto f = static_cast<uint8_t>(flags);
    t.to_the_stack(crafted_segment(t.to_stack, f, {}, Signature::None, kSeedKey), t.to_stack);
    t.to_the_kernel(crafted_segment(t.to_kernel, f, {}, Signature::None, kSeedKey), t.to_kernel);
  }
  t.rig.pump_for(Duration::milliseconds(400));
  CHECK(t.rig.stack().counters()[Counter::EthOutFrames] == frames_out);
  CHECK(segments(t.rig.log(), FrameDirection::Received).size() == 256);  // the stack's 256
  CHECK(stack_md5_counters(t.rig.stack()) - stack_before ==
        counted_as(DropReason::Md5NotFound, 256));
  CHECK(kernel_md5_counters() - kernel_before == Md5Counters::only(Md5Drop::NotFound, 256));
  CHECK(t.established());
}

// Earlier valid segments of the connection, whole frames as they crossed the link.
struct Captured {
  std::optional<Bytes> syn, pure_ack, data;
  void keep(ByteView frame) {
    const ByteView tcp = frame.subspan(14 + 20);  // the peers send no IPv4 options
    const size_t header = (tcp[12] >> 4) * 4u;
    const uint8_t flags = tcp[13];
    std::optional<Bytes>* slot = nullptr;
    if (flags & kSyn)
      slot = &syn;
    else if (tcp.size() > header)
      slot = &data;
    else if (flags == kAck)
      slot = &pure_ack;
    if (slot && !*slot) *slot = Bytes(frame.begin(), frame.end());
  }
  std::vector<std::pair<std::string_view, Bytes>> all() const {
    return {{"the SYN of the handshake", *syn},
            {"the first pure ACK", *pure_ack},
            {"the first data segment", *data}};
  }
};

// What may answer a replay: nothing, or one ACK (signed, no data) of `rcv_nxt`.
void check_replay_answer(const std::vector<SegmentRecord>& answers, uint32_t rcv_nxt,
                         size_t at_least) {
  CHECK(answers.size() >= at_least);
  CHECK(answers.size() <= 1);
  for (const SegmentRecord& a : answers) {
    CHECK(a.flags == kAck);
    CHECK(a.payload_size == 0);
    CHECK(a.md5());
    CHECK(a.ack == rcv_nxt);
  }
}

void replay_to_the_stack(Target& t, const Bytes& frame) {
  t.rig.clear_log();
  const Md5Counters before = stack_md5_counters(t.rig.stack());
  const uint64_t out_of_window = t.rig.stack().counters().drops(DropReason::TcpOutOfWindow);
  t.writer.send(frame, kStackMac);
  t.rig.pump_for(kSettle);
  CHECK(segments(t.rig.log(), FrameDirection::Received).size() == 1);
  check_replay_answer(segments(t.rig.log(), FrameDirection::Sent), t.to_stack.seq, 1);
  CHECK(t.rig.stack().counters().drops(DropReason::TcpOutOfWindow) == out_of_window + 1);
  CHECK((stack_md5_counters(t.rig.stack()) - before).zero());
  CHECK(t.established());
}

// The kernel limits such answers per socket (tcp_oow_rate_limited(), 500 ms): one at most.
void replay_to_the_kernel(Target& t, const Bytes& frame) {
  t.rig.clear_log();
  const Md5Counters before = kernel_md5_counters();
  t.rig.write_to_kernel(frame);
  t.rig.pump_for(kSettle);
  check_replay_answer(segments(t.rig.log(), FrameDirection::Received), t.to_kernel.seq, 0);
  CHECK((kernel_md5_counters() - before).zero());
}

TEST_CASE("spoofed and replayed segments on a live signed connection: dropped, counted") {
  TapRig rig;
  Captured from_kernel, from_stack;
  rig.set_capture([&](FrameDirection direction, ByteView frame) {
    if (frame.size() < 14 + 20 + 20 || frame[12] != 0x08 || frame[13] != 0x00 || frame[23] != 6)
      return;
    (direction == FrameDirection::Received ? from_kernel : from_stack).keep(frame);
  });
  auto connection =
      open_connection(rig, Listener::Stack, kSeedPort, seed_keys(), Duration::seconds(5));
  REQUIRE(connection);
  KernelStream kernel(connection->kernel.get(), 1);
  StackStream stack(rig.tcp(), connection->stack, 2);
  const Goal half{.send = kBytes / 2, .receive = kBytes / 2};
  REQUIRE(run_exchange(rig, kernel, half, stack, half, Duration::seconds(15)));
  rig.pump_for(Duration::milliseconds(300));  // the last ACKs, both ways
  rig.set_capture({});
  REQUIRE((from_kernel.syn && from_kernel.pure_ack && from_kernel.data));
  REQUIRE((from_stack.syn && from_stack.pure_ack && from_stack.data));
  Target target{rig, connection->stack, next_after_last(rig.log(), FrameDirection::Received),
                next_after_last(rig.log(), FrameDirection::Sent),
                KernelSideWriter(rig.kernel_ifindex())};

  for (const Spoof& spoof : spoofs()) {
    CAPTURE(spoof.name);
    spoof_the_stack(target, spoof);
    spoof_the_kernel(target, spoof);
  }
  every_flag_combination(target);
  for (const auto& [name, frame] : from_kernel.all()) {
    CAPTURE(name);
    replay_to_the_stack(target, frame);
  }
  for (const auto& [name, frame] : from_stack.all()) {
    CAPTURE(name);
    replay_to_the_kernel(target, frame);
  }

  const Goal rest{.send = kBytes, .finish = true};
  CHECK(run_exchange(rig, kernel, rest, stack, rest, Duration::seconds(15)));
  CAPTURE(kernel.error());
  CAPTURE(stack.error());
  CHECK(kernel.received_exactly(2, kBytes));
  CHECK(stack.received_exactly(1, kBytes));
  close_connection(rig, *connection);
}

}  // namespace
}  // namespace tapstack::md5kernel
