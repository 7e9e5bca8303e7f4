// TCP over a link with offloads (a TAP with virtio-net headers): segments of many MSS for the
// link to cut (TSO), checksums left to the link, and segments the link vouched for or made of
// several (the kernel's TSO or GRO) taken as they come. The link is a sink that keeps each
// frame with what the stack said of it.
#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "md5opt/option.h"
#include "stack/checksum.h"
#include "stack/random.h"
#include "stack/tcp/header.h"
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
  s.stack.on_frame(frame, s.now, FrameOffload{.checksum_offloaded = true, .segment_size = kMss});
  const auto answers = TcpScript::segments({s.take().at(0).frame});
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].flags == ACK);
  CHECK(answers[0].ack == s.kPeerIss + 1 + length);
  CHECK(s.read_all(id) == pattern(length));
}

// Two stacks joined by a link with TCP segmentation offload, in virtual time: each frame
// arrives 1 ms after it was sent, a frame of several segments with the offload flags the
// kernel would give it, and a deterministic share of frames is lost, big ones included.
class OffloadLink {
 public:
  OffloadLink(uint32_t loss_per_mille, uint64_t seed, bool tso = true)
      : loss_(loss_per_mille), random_(seed) {
    StackConfig config = default_config();
    config.mac = *MacAddress::parse(kPeerMac);
    config.ipv4 = *Ipv4Interface::parse("198.18.0.1/24");
    ends_[0] = std::make_unique<Stack>(config);
    ends_[1] = std::make_unique<Stack>(default_config());
    for (int i = 0; i < 2; ++i) {
      ends_[i]->set_transmit_sink(
          [this, i](ByteView frame, const FrameOffload& offload) {
            wire_.push_back({now + Duration::milliseconds(1), 1 - i,
                             Bytes(frame.begin(), frame.end()), offload});
          },
          LinkOffloads{.tcp_segmentation = tso});
      ends_[i]->start(now);
    }
  }
  Stack& end(int i) { return *ends_[i]; }

  // Runs until done() or `limit` of virtual time; `turn` runs after every step.
  bool run(const std::function<bool()>& done, const std::function<void()>& turn, Duration limit) {
    const Instant end_at = now + limit;
    while (!done() && now < end_at) {
      Instant next = std::min(ends_[0]->next_deadline(), ends_[1]->next_deadline());
      if (!wire_.empty()) next = std::min(next, wire_.front().at);
      if (next.is_never()) return false;
      now = std::max(now, next);
      while (!wire_.empty() && wire_.front().at <= now) {
        Frame f = std::move(wire_.front());
        wire_.pop_front();
        if (random_.next_u64() % 1000 < loss_) {
          ++lost;
          continue;
        }
        if (f.offload.segment_size > 0) ++offloaded;
        ends_[f.to]->on_frame(f.bytes, now, f.offload);
      }
      for (auto& e : ends_) e->on_timer(now);
      turn();
    }
    return done();
  }

  Instant now = Instant::from_ns(1'000'000'000);
  uint64_t lost = 0;
  uint64_t offloaded = 0;  // frames of several segments delivered

 private:
  struct Frame {
    Instant at;
    int to;
    Bytes bytes;
    FrameOffload offload;
  };
  uint32_t loss_;
  Random random_;
  std::unique_ptr<Stack> ends_[2];
  std::deque<Frame> wire_;
};

uint8_t stream_byte(uint64_t seed, uint64_t i) {
  return static_cast<uint8_t>((i * 131 + (i >> 9) + seed * 77) & 0xff);
}

// One end of a byte stream: sends `total` bytes of its pattern, checks what arrives against
// the peer's.
struct StreamEnd {
  Stack* stack = nullptr;
  SocketId socket = 0;
  uint64_t seed = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
  bool intact = true;

  void turn(uint64_t total, uint64_t peer_seed, Instant now) {
    Tcp& tcp = stack->tcp();
    uint8_t buffer[65536];
    while (sent < total) {
      const size_t n = std::min<uint64_t>(sizeof buffer, total - sent);
      for (size_t k = 0; k < n; ++k) buffer[k] = stream_byte(seed, sent + k);
      const auto taken = tcp.send(socket, {buffer, n}, now);
      if (!taken || *taken == 0) break;
      sent += *taken;
    }
    for (;;) {
      const auto n = tcp.receive(socket, buffer, now);
      if (!n || *n == 0) break;
      for (size_t k = 0; k < *n; ++k) {
        if (buffer[k] != stream_byte(peer_seed, received + k)) intact = false;
      }
      received += *n;
    }
  }
};

// The same transfer with the link's TSO and without, loss-free and through 2 % frame loss: a
// lost frame of many segments is recovered one MSS at a time (SACK, RTO) as any other loss.
TEST_CASE("two stacks over a link with TSO: 8 MiB each way byte-exact through lost frames") {
  for (const uint32_t loss : {0u, 20u}) {
    for (const bool tso : {false, true}) {
      CAPTURE(loss);
      CAPTURE(tso);
      OffloadLink link(loss, 7 + loss, tso);
      Stack& client = link.end(0);
      Stack& server = link.end(1);
      const SocketId listener = *server.tcp().listen(5001, 8);
      auto connected = client.tcp().connect(*Ipv4Address::parse(kOurIp), 5001, link.now);
      REQUIRE(connected);
      StreamEnd a{&client, *connected, 1};
      StreamEnd b{&server, 0, 2};
      constexpr uint64_t kTotal = 8 << 20;
      const bool done = link.run([&] { return a.received == kTotal && b.received == kTotal; },
                                 [&] {
                                   if (b.socket == 0) {
                                     if (auto accepted = server.tcp().accept(listener))
                                       b.socket = *accepted;
                                   }
                                   a.turn(kTotal, 2, link.now);
                                   if (b.socket != 0) b.turn(kTotal, 1, link.now);
                                 },
                                 Duration::seconds(600));
      CAPTURE(a.received);
      CAPTURE(b.received);
      CAPTURE(a.sent);
      CAPTURE(b.sent);
      CAPTURE((link.now - Instant::from_ns(1'000'000'000)).seconds_f());
      CAPTURE(link.lost);
      CAPTURE(client.counters()[Counter::TcpRetransSegs]);
      CAPTURE(server.counters()[Counter::TcpRetransSegs]);
      CAPTURE(client.counters()[Counter::TcpExtTCPTimeouts]);
      CHECK(done);
      CHECK(a.intact);
      CHECK(b.intact);
      CHECK((link.offloaded > 0) == tso);
      if (loss > 0) {
        CHECK(link.lost > 0);
        CHECK(client.counters()[Counter::TcpRetransSegs] +
                  server.counters()[Counter::TcpRetransSegs] >
              0);
      }
      CHECK(client.tcp().check_invariants().empty());
      CHECK(server.tcp().check_invariants().empty());
    }
  }
}

}  // namespace
}  // namespace tapstack::test
