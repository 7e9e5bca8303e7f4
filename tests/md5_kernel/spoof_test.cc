// A live signed connection with the kernel (the seed's client against the stack's listener)
// and segments spoofed into it, each with the connection's real 4-tuple and exactly the
// sequence and acknowledgment numbers its target expects next (taken from the last segment the
// other end sent, as the rig's log saw it). Each spoof goes to the stack, written with an
// AF_PACKET socket bound to the kernel's side of the TAP, and then, mirrored, to the kernel,
// written into the TAP: the kernel is the oracle. Both must drop it before it touches the
// connection (RFC 2385 §2.0) and answer nothing, and count it as the table says (the same
// counter, but for one case where Linux changed); then the connection carries the rest of
// both streams byte-exact. Accepted, the resets would kill the
// connection and the data would end up in a stream.
#include <doctest/doctest.h>

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "stack/checksum.h"
#include "stack/tcp_header.h"
#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

using namespace tcp_flags;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kBytes = 1 << 20;
constexpr const char* kWrongKey = "54321";

// How the spoofed segment's MD5 option looks.
enum class Signature {
  None,        // no option at all
  FlippedBit,  // the right digest with one bit flipped
  WrongKey,    // a well-formed option, signed with another key
  Length17,    // the right digest in an option of length 17
  CutShort,    // length 18, but the header ends 4 bytes into the digest
};

constexpr auto kNotFound = Md5Drop::NotFound;
constexpr auto kFailure = Md5Drop::Failure;

struct Spoof {
  std::string_view name;
  uint8_t flags;
  std::string_view payload;
  Signature signature;
  DropReason stack_drop;                 // the stack's drop reason (and its nstat counter)
  std::optional<Md5Drop> kernel_counts;  // what the kernel counts it as; nullopt: nothing
};

// The stack and the kernel differ on one case: an MD5 option whose length is not 18. Linux
// since 6.7 parses options with tcp_do_parse_auth_options(), which calls such a list malformed
// and drops the segment as SKB_DROP_REASON_TCP_AUTH_HDR, counted under no TCPMD5 counter;
// md5opt::find_md5_option() keeps the rule of the older tcp_parse_md5sig_option(): no option,
// so TCPMD5NotFound. Both drop it unanswered. An option cut short is NotFound on both: Linux
// stops parsing when fewer bytes are left than an MD5 option takes.
const std::vector<Spoof> kSpoofs = {
    {"RST without the option", kRst, "", Signature::None, DropReason::Md5NotFound, kNotFound},
    {"RST with a wrong digest", kRst, "", Signature::FlippedBit, DropReason::Md5Failure, kFailure},
    {"RST with an option of length 17", kRst, "", Signature::Length17, DropReason::Md5NotFound,
     std::nullopt},
    {"data without the option", kAck | kPsh, "spoofed", Signature::None, DropReason::Md5NotFound,
     kNotFound},
    {"data signed with a wrong key", kAck | kPsh, "spoofed", Signature::WrongKey,
     DropReason::Md5Failure, kFailure},
    {"data with an option of length 17", kAck | kPsh, "spoofed", Signature::Length17,
     DropReason::Md5NotFound, std::nullopt},
    {"data with the option cut short", kAck | kPsh, "spoofed", Signature::CutShort,
     DropReason::Md5NotFound, kNotFound},
};

Md5Counters counted_as(DropReason drop) {
  return Md5Counters::only(drop == DropReason::Md5Failure ? Md5Drop::Failure : Md5Drop::NotFound,
                           1);
}

Md5Counters counted_as(std::optional<Md5Drop> drop) {
  return drop ? Md5Counters::only(*drop, 1) : Md5Counters{};
}

// Where a spoofed segment goes and the numbers that land it where its target expects the next.
struct Flow {
  Ipv4Address from;
  Ipv4Address to;
  uint16_t from_port = 0;
  uint16_t to_port = 0;
  uint32_t seq = 0;  // the target's RCV.NXT
  uint32_t ack = 0;  // the target's SND.NXT, all of it acknowledged
};

// The segment the other end of `direction`'s last segment would send next.
Flow next_after_last(const std::vector<SegmentRecord>& log, FrameDirection direction) {
  const auto last = std::find_if(log.rbegin(), log.rend(),
                                 [&](const SegmentRecord& s) { return s.direction == direction; });
  REQUIRE(last != log.rend());
  return {last->source,
          last->destination,
          last->source_port,
          last->destination_port,
          last->seq + last->payload_size,
          last->ack};
}

// The TCP segment: header, option as `signature` says, payload; the checksum last.
Bytes spoofed_segment(const Flow& flow, const Spoof& spoof) {
  const size_t options = spoof.signature == Signature::None       ? 0
                         : spoof.signature == Signature::CutShort ? 16
                                                                  : md5opt::kMd5OptionSpace;
  const size_t header = kTcpMinHeaderSize + options;
  Bytes tcp(header + spoof.payload.size());
  store_be16(&tcp[0], flow.from_port);
  store_be16(&tcp[2], flow.to_port);
  store_be32(&tcp[4], flow.seq);
  store_be32(&tcp[8], flow.ack);
  tcp[12] = static_cast<uint8_t>(header / 4 << 4);
  tcp[13] = spoof.flags;
  store_be16(&tcp[14], 65535);
  std::copy(spoof.payload.begin(), spoof.payload.end(), tcp.begin() + header);
  if (options > 0) {
    tcp[20] = tcp[21] = md5opt::kOptionNop;
    tcp[22] = md5opt::kOptionMd5;
    tcp[23] = md5opt::kMd5OptionLength;
    const std::string key = spoof.signature == Signature::WrongKey ? kWrongKey : kSeedKey;
    md5opt::Md5Signer signer;
    const auto segment = md5opt::split_segment(md5_address(flow.from), md5_address(flow.to), tcp);
    REQUIRE(segment);
    const auto digest = signer.digest(*segment, key_bytes(key));
    REQUIRE(digest);
    std::copy_n(digest->begin(), std::min<size_t>(16, options - 4), tcp.begin() + 24);
  }
  if (spoof.signature == Signature::FlippedBit) tcp[24] ^= 0x01;
  if (spoof.signature == Signature::Length17) {
    tcp[23] = 17;
    tcp[39] = md5opt::kOptionNop;  // the digest's last byte, outside an option of 17 bytes
  }
  store_be16(&tcp[16], tcp_checksum(tcp, flow.from, flow.to));
  return tcp;
}

// Ethernet II and IPv4 (RFC 791) around the segment.
Bytes spoofed_frame(const MacAddress& from, const MacAddress& to, const Flow& flow, ByteView tcp) {
  Bytes frame(14 + 20 + tcp.size());
  std::copy(to.bytes.begin(), to.bytes.end(), frame.begin());
  std::copy(from.bytes.begin(), from.bytes.end(), frame.begin() + 6);
  store_be16(&frame[12], ETHERTYPE_IP);
  uint8_t* ip = &frame[14];
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<uint16_t>(20 + tcp.size()));
  store_be16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = 6;  // TCP
  store_be32(ip + 12, flow.from.value);
  store_be32(ip + 16, flow.to.value);
  store_be16(ip + 10, internet_checksum({ip, 20}));
  std::copy(tcp.begin(), tcp.end(), frame.begin() + 34);
  return frame;
}

// Writes a whole frame out of the kernel's interface, which hands it to the TAP's reader: the
// stack. Linux: packet_sendmsg() → dev_queue_xmit() → tun_net_xmit().
void send_from_kernel_side(int ifindex, ByteView frame) {
  const Fd fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, kStackMac.bytes.data(), 6);
  REQUIRE(sendto(fd.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof to) == static_cast<ssize_t>(frame.size()));
}

size_t segments(const std::vector<SegmentRecord>& log, FrameDirection direction) {
  return static_cast<size_t>(std::count_if(
      log.begin(), log.end(), [&](const SegmentRecord& s) { return s.direction == direction; }));
}

// The stack as the target: the spoof comes in from the kernel's side, through AF_PACKET.
void spoof_the_stack(TapRig& rig, const Connection& connection, const Flow& flow,
                     const Spoof& spoof) {
  rig.clear_log();
  const Md5Counters before = stack_md5_counters(rig.stack());
  const uint64_t drops_before = rig.stack().counters().drops(spoof.stack_drop);
  send_from_kernel_side(rig.kernel_ifindex(), spoofed_frame(rig.kernel_mac(), kStackMac, flow,
                                                            spoofed_segment(flow, spoof)));
  rig.pump_for(Duration::milliseconds(150));
  CHECK(segments(rig.log(), FrameDirection::Received) == 1);  // the spoof, seen by the stack
  CHECK(segments(rig.log(), FrameDirection::Sent) == 0);
  CHECK(rig.stack().counters().drops(spoof.stack_drop) == drops_before + 1);
  CHECK(stack_md5_counters(rig.stack()) - before == counted_as(spoof.stack_drop));
  CHECK(rig.tcp().info(connection.stack)->state == TcpState::Established);
}

// The kernel as the target, the oracle: the same spoof, mirrored, written into the TAP.
void spoof_the_kernel(TapRig& rig, const Flow& flow, const Spoof& spoof) {
  rig.clear_log();
  const Md5Counters before = kernel_md5_counters();
  rig.write_to_kernel(
      spoofed_frame(kStackMac, rig.kernel_mac(), flow, spoofed_segment(flow, spoof)));
  rig.pump_for(Duration::milliseconds(150));
  CHECK(segments(rig.log(), FrameDirection::Received) == 0);  // the kernel answered nothing
  CHECK(kernel_md5_counters() - before == counted_as(spoof.kernel_counts));
}

TEST_CASE("spoofed segments on a live signed connection: dropped, counted, unanswered") {
  TapRig rig;
  auto connection =
      open_connection(rig, Listener::Stack, kSeedPort, seed_keys(), Duration::seconds(5));
  REQUIRE(connection);
  KernelStream kernel(connection->kernel.get(), 1);
  StackStream stack(rig.tcp(), connection->stack, 2);
  const Goal half{.send = kBytes / 2, .receive = kBytes / 2};
  REQUIRE(run_exchange(rig, kernel, half, stack, half, Duration::seconds(15)));
  rig.pump_for(Duration::milliseconds(300));  // the last ACKs, both ways
  const Flow to_stack = next_after_last(rig.log(), FrameDirection::Received);
  const Flow to_kernel = next_after_last(rig.log(), FrameDirection::Sent);

  for (const Spoof& spoof : kSpoofs) {
    CAPTURE(spoof.name);
    spoof_the_stack(rig, *connection, to_stack, spoof);
    spoof_the_kernel(rig, to_kernel, spoof);
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
