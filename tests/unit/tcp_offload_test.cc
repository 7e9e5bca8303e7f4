// TCP over a link with offloads (a TAP with virtio-net headers): segments of many MSS for the
// link to cut (TSO), checksums left to the link, and segments the link vouched for or made of
// several (the kernel's TSO or GRO) taken as they come. The link is a sink that keeps each
// frame with what the stack said of it.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "md5opt/option.h"
#include "stack/checksum.h"
#include "stack/tcp_header.h"
#include "tests/support/tcp_script.h"

namespace tapstack::test {
namespace {

constexpr uint32_t kMss = 1460;  // the peer's MSS; no timestamps in these scripts

struct Sent {
  Bytes frame;
  FrameOffload offload;
};

// A script whose stack, once the handshake is done, hands its frames to a link with (or
// without) TCP segmentation offload.
struct OffloadScript : TcpScript {
  void attach_link(bool tso = true) {
    stack.set_transmit_sink(
        [this](ByteView frame, const FrameOffload& offload) {
          link.push_back({Bytes(frame.begin(), frame.end()), offload});
        },
        LinkOffloads{.tcp_segmentation = tso});
  }
  // The frames sent since the last call.
  std::vector<Sent> take() { return std::exchange(link, {}); }

  std::vector<Sent> link;
};

ByteView tcp_of(const Bytes& frame) {
  const ByteView ip = ByteView(frame).subspan(kEthernetHeaderSize);
  return ip.subspan((ip[0] & 0x0f) * 4u);
}

size_t payload_of(const Bytes& frame) {
  const ByteView tcp = tcp_of(frame);
  return tcp.size() - (tcp[12] >> 4) * 4u;
}

// What the kernel does with VIRTIO_NET_HDR_F_NEEDS_CSUM: the sum of the segment from
// csum_start, with the pseudo-header sum the stack left in the field, goes into the field.
Bytes complete_checksum(Bytes frame) {
  const size_t start = kEthernetHeaderSize + (frame[kEthernetHeaderSize] & 0x0f) * 4u;
  const uint16_t sum = internet_checksum(ByteView(frame).subspan(start));
  store_be16(frame.data() + start + 16, sum);
  return frame;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

TEST_CASE("new data leaves in segments of whole MSS for the link to cut, checksummed by it") {
  OffloadScript s;
  const SocketId id = s.establish_active(kMss);
  s.attach_link();
  const uint64_t out_before = s.count(Counter::TcpOutSegs);
  const std::string data = pattern(100'000);
  REQUIRE(*s.tcp().send(id, text(data), s.now) == data.size());
  auto sent = s.take();
  // The initial window (RFC 6928: 10 segments) in one frame of ten.
  REQUIRE(sent.size() == 1);
  CHECK(payload_of(sent[0].frame) == 10 * kMss);
  CHECK(sent[0].offload.segment_size == kMss);
  CHECK(sent[0].offload.checksum_offloaded);
  CHECK(s.count(Counter::TcpOutSegs) - out_before == 10);
  // The field holds the pseudo-header sum: completed as the kernel would, the checksum is right.
  const Bytes completed = complete_checksum(sent[0].frame);
  CHECK(tcp_checksum(tcp_of(completed), ip(kOurIp), ip(kPeerIp)) == 0);
  CHECK(tcp_checksum(tcp_of(sent[0].frame), ip(kOurIp), ip(kPeerIp)) != 0);
  const auto first = TcpScript::segments({completed});
  CHECK(std::string(first[0].payload.begin(), first[0].payload.end()) == data.substr(0, 10 * kMss));

  // Each ACK opens the window further: frames stay whole multiples of the MSS and within one
  // IPv4 datagram, until the last, which takes what is left.
  uint32_t acked = s.iss + 1 + 10 * kMss;
  size_t delivered = 10 * kMss;
  std::string received = data.substr(0, delivered);
  s.send(ACK, s.kPeerIss + 1, acked);
  for (int round = 0; round < 20 && delivered < data.size(); ++round) {
    for (const Sent& frame : s.take()) {
      const size_t n = payload_of(frame.frame);
      CHECK(n <= (65535 - 40) / kMss * kMss);
      if (delivered + n < data.size()) CHECK(n % kMss == 0);
      CHECK(frame.offload.segment_size == (n > kMss ? kMss : 0));
      const auto seg = TcpScript::segments({complete_checksum(frame.frame)});
      received.append(seg[0].payload.begin(), seg[0].payload.end());
      delivered += n;
    }
    acked = s.iss + 1 + static_cast<uint32_t>(delivered);
    s.send(ACK, s.kPeerIss + 1, acked);
  }
  CHECK(received == data);
}

TEST_CASE("a connection with an RFC 2385 key sends every segment itself, signed") {
  // Linux turns GSO off for a socket with a key: the link cannot sign the segments it cuts.
  OffloadScript s;
  const SocketId id = s.establish_active(kMss);
  const uint8_t key[] = {'1', '2', '3', '4', '5'};
  REQUIRE(s.tcp().set_md5_key(id, ip(kPeerIp), 32, key));  // signed from the next segment on
  s.attach_link();
  REQUIRE(*s.tcp().send(id, text(pattern(30'000)), s.now) == 30'000);
  const auto sent = s.take();
  REQUIRE(sent.size() >= 9);
  for (const Sent& frame : sent) {
    CHECK(payload_of(frame.frame) <= kMss - md5opt::kMd5OptionSpace);
    CHECK(frame.offload.segment_size == 0);
    CHECK_FALSE(frame.offload.checksum_offloaded);
    CHECK(tcp_checksum(tcp_of(frame.frame), ip(kOurIp), ip(kPeerIp)) == 0);
    CHECK(TcpScript::segments({frame.frame})[0].options.size() == md5opt::kMd5OptionSpace);
  }
}

TEST_CASE("retransmissions go out one MSS at a time") {
  OffloadScript s;
  const SocketId id = s.establish_active(kMss);
  s.attach_link();
  REQUIRE(*s.tcp().send(id, text(pattern(20'000)), s.now) == 20'000);
  REQUIRE(s.take().size() == 1);  // ten segments in one frame
  s.wait(Duration::seconds(1));   // the RTO fires, and again after backing off
  const auto resent = s.take();
  REQUIRE(!resent.empty());
  for (const Sent& frame : resent) {
    CHECK(payload_of(frame.frame) == kMss);
    CHECK(frame.offload.segment_size == 0);
    CHECK_FALSE(frame.offload.checksum_offloaded);
    CHECK(tcp_checksum(tcp_of(frame.frame), ip(kOurIp), ip(kPeerIp)) == 0);
  }
}

TEST_CASE("a link without TCP segmentation gets segments of at most one MSS") {
  OffloadScript s;
  const SocketId id = s.establish_active(kMss);
  s.attach_link(false);
  REQUIRE(*s.tcp().send(id, text(pattern(20'000)), s.now) == 20'000);
  const auto sent = s.take();
  CHECK(sent.size() == 10);
  for (const Sent& frame : sent) {
    CHECK(payload_of(frame.frame) == kMss);
    CHECK(frame.offload.segment_size == 0);
    CHECK(tcp_checksum(tcp_of(frame.frame), ip(kOurIp), ip(kPeerIp)) == 0);
  }
}

// A data segment from the peer with the checksum field left as the kernel leaves it for a
// device to fill (VIRTIO_NET_HDR_F_NEEDS_CSUM): only the pseudo-header sum.
Bytes segment_with_unfilled_checksum(uint32_t seq, uint32_t ack, size_t length) {
  Tins::TCP tcp(TcpScript::kOurPort, TcpScript::kPeerPort);
  tcp.flags(ACK);
  tcp.seq(seq);
  tcp.ack_seq(ack);
  tcp.window(65535);
  Tins::IP packet = ip_from_peer() / tcp / Tins::RawPDU(text(pattern(length)));
  Bytes frame = frame_from_peer(packet);
  const size_t start = kEthernetHeaderSize + 20;
  store_be16(frame.data() + start + 16,
             tcp_pseudo_header_sum(frame.size() - start, ip(kPeerIp), ip(kOurIp)));
  return frame;
}

TEST_CASE("a segment whose checksum the link vouched for is taken unchecked, else dropped") {
  OffloadScript s;
  const SocketId id = s.establish_passive(kMss);
  s.attach_link();
  const Bytes frame = segment_with_unfilled_checksum(s.kPeerIss + 1, s.iss + 1, 100);
  s.stack.on_frame(frame, s.now);
  CHECK(s.drops(DropReason::TcpBadChecksum) == 1);
  CHECK(s.read_all(id).empty());
  s.stack.on_frame(frame, s.now, FrameOffload{.checksum_offloaded = true});
  CHECK(s.drops(DropReason::TcpBadChecksum) == 1);
  CHECK(s.read_all(id) == pattern(100));
}

TEST_CASE("a segment of many MSS (the kernel's TSO or GRO) is taken whole and ACKed at once") {
  OffloadScript s;
  const SocketId id = s.establish_passive(kMss);
  s.attach_link();
  const size_t length = 40 * kMss;  // 58,400 bytes in one IPv4 datagram
  const Bytes frame = segment_with_unfilled_checksum(s.kPeerIss + 1, s.iss + 1, length);
  s.stack.on_frame(frame, s.now,
                   FrameOffload{.checksum_offloaded = true, .segment_size = kMss});
  const auto answers = TcpScript::segments({s.take().at(0).frame});
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].flags == ACK);
  CHECK(answers[0].ack == s.kPeerIss + 1 + length);
  CHECK(s.read_all(id) == pattern(length));
}

}  // namespace
}  // namespace tapstack::test
