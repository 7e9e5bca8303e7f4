// Segment scripts for TCP, smoltcp style: a stack under test and a scripted peer. The peer
// sends with send(); what the stack answered comes back as Segments to assert on.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "stack/tcp/tcp.h"
#include "tests/support/harness.h"

namespace tapstack::test {

struct Segment {
  uint8_t flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;
  Bytes payload;
  std::optional<uint16_t> mss;
  std::optional<uint8_t> window_scale;
  bool sack_permitted = false;
  std::optional<std::pair<uint32_t, uint32_t>> timestamps;
  std::vector<std::pair<uint32_t, uint32_t>> sack;
  Bytes options;  // the raw options area, to check order and layout
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  bool has(uint8_t f) const { return (flags & f) == f; }
};

inline std::ostream& operator<<(std::ostream& os, const Segment& s) {
  return os << tcp_flags_text(s.flags) << " seq=" << s.seq << " ack=" << s.ack
            << " win=" << s.window << " len=" << s.payload.size();
}

constexpr uint8_t SYN = tcp_flags::kSyn;
constexpr uint8_t ACK = tcp_flags::kAck;
constexpr uint8_t FIN = tcp_flags::kFin;
constexpr uint8_t RST = tcp_flags::kRst;
constexpr uint8_t PSH = tcp_flags::kPsh;

inline Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

class TcpScript : public Harness {
 public:
  static constexpr uint16_t kOurPort = 6666;
  static constexpr uint16_t kPeerPort = 40000;
  static constexpr uint32_t kPeerIss = 1000;

  explicit TcpScript(StackConfig config = script_config()) : Harness(config) { learn_peer(); }

  // The peer's MAC stays known for the whole script, so answers are never held for ARP.
  static StackConfig script_config() {
    StackConfig config = default_config();
    config.arp.entry_lifetime = Duration::seconds(1'000'000);
    return config;
  }

  Tcp& tcp() { return stack.tcp(); }

  // The peer sends one segment; returns the stack's answers.
  std::vector<Segment> send(uint8_t flags, uint32_t seq, uint32_t ack, const Bytes& payload = {},
                            uint16_t window = 65535, std::optional<uint16_t> mss = std::nullopt,
                            uint16_t from_port = kPeerPort) {
    Tins::TCP tcp(kOurPort, from_port);
    tcp.flags(static_cast<Tins::small_uint<12>>(flags));
    tcp.seq(seq);
    tcp.ack_seq(ack);
    tcp.window(window);
    if (mss) tcp.mss(*mss);
    Tins::IP ip = ip_from_peer() / tcp;
    if (!payload.empty()) ip /= Tins::RawPDU(payload);
    return segments(inject(frame_from_peer(ip)));
  }
  // The same, with the peer's options set by `options` (libtins' TCP PDU).
  std::vector<Segment> send_with(uint8_t flags, uint32_t seq, uint32_t ack,
                                 const std::function<void(Tins::TCP&)>& options,
                                 const Bytes& payload = {}, uint16_t from_port = kPeerPort) {
    Tins::TCP tcp(kOurPort, from_port);
    tcp.flags(static_cast<Tins::small_uint<12>>(flags));
    tcp.seq(seq);
    tcp.ack_seq(ack);
    tcp.window(65535);
    options(tcp);
    Tins::IP ip = ip_from_peer() / tcp;
    if (!payload.empty()) ip /= Tins::RawPDU(payload);
    return segments(inject(frame_from_peer(ip)));
  }
  std::vector<Segment> wait(Duration d) { return segments(advance(d)); }
  std::vector<Segment> sent() { return segments(drain()); }

  static std::vector<Segment> segments(const std::vector<Bytes>& frames) {
    std::vector<Segment> out;
    for (const auto& frame : frames) {
      const Tins::EthernetII eth = parse(frame);
      const auto* tcp = eth.find_pdu<Tins::TCP>();
      if (!tcp) continue;
      Segment s;
      s.flags = static_cast<uint8_t>(tcp->flags());
      s.seq = tcp->seq();
      s.ack = tcp->ack_seq();
      s.window = tcp->window();
      s.source_port = tcp->sport();
      s.destination_port = tcp->dport();
      if (const auto* raw = eth.find_pdu<Tins::RawPDU>()) s.payload = raw->payload();
      if (tcp->search_option(Tins::TCP::MSS)) s.mss = tcp->mss();
      if (tcp->search_option(Tins::TCP::WSCALE)) s.window_scale = tcp->winscale();
      s.sack_permitted = tcp->has_sack_permitted();
      if (tcp->search_option(Tins::TCP::TSOPT)) s.timestamps = tcp->timestamp();
      if (tcp->search_option(Tins::TCP::SACK)) {
        const auto edges = tcp->sack();
        for (size_t i = 0; i + 1 < edges.size(); i += 2) s.sack.emplace_back(edges[i], edges[i + 1]);
      }
      const ByteView ip_bytes = ByteView(frame).subspan(kEthernetHeaderSize);
      const ByteView tcp_bytes = ip_bytes.subspan((ip_bytes[0] & 0x0f) * 4u);
      s.options.assign(tcp_bytes.begin() + 20, tcp_bytes.begin() + (tcp_bytes[12] >> 4) * 4);
      out.push_back(std::move(s));
    }
    return out;
  }

  // A listener on kOurPort, and a peer whose handshake completed; returns the accepted socket.
  // Our ISS is in iss after the call.
  SocketId establish_passive(uint16_t peer_mss = 1460) {
    return establish_passive_with([peer_mss](Tins::TCP& syn) { syn.mss(peer_mss); });
  }
  // A peer whose SYN offers MSS and SACK-permitted (RFC 2018), accepted.
  SocketId establish_passive_with_sack(uint16_t peer_mss = 1460) {
    return establish_passive_with([peer_mss](Tins::TCP& syn) {
      syn.mss(peer_mss);
      syn.sack_permitted();
    });
  }
  // As establish_passive(), with the options of the peer's SYN set by `options` (libtins'
  // TCP PDU).
  SocketId establish_passive_with(const std::function<void(Tins::TCP&)>& options) {
    listener = *tcp().listen(kOurPort, 8);
    const auto synack = send_with(SYN, kPeerIss, 0, options);
    REQUIRE(synack.size() == 1);
    REQUIRE(synack[0].flags == (SYN | ACK));
    iss = synack[0].seq;
    REQUIRE(send(ACK, kPeerIss + 1, iss + 1).empty());
    auto accepted = tcp().accept(listener);
    REQUIRE(accepted);
    return *accepted;
  }

  // We connect to the peer, which completes the handshake; returns our socket.
  SocketId establish_active(uint16_t peer_mss = 1460) {
    auto id = tcp().connect(ip(kPeerIp), kPeerPort, now, kOurPort);
    REQUIRE(id);
    const auto syn = sent();
    REQUIRE(syn.size() == 1);
    REQUIRE(syn[0].flags == SYN);
    iss = syn[0].seq;
    const auto ack = send(SYN | ACK, kPeerIss, iss + 1, {}, 65535, peer_mss, kPeerPort);
    REQUIRE(ack.size() == 1);
    REQUIRE(ack[0].flags == ACK);
    return *id;
  }

  TcpState state(SocketId id) { return tcp().info(id)->state; }
  std::string read_all(SocketId id) {
    std::string out;
    uint8_t buffer[4096];
    for (;;) {
      auto n = tcp().receive(id, buffer, now);
      if (!n || *n == 0) return out;
      out.append(buffer, buffer + *n);
    }
  }

  SocketId listener = 0;
  uint32_t iss = 0;
};

}  // namespace tapstack::test
