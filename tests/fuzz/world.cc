#include "tests/fuzz/world.h"

#include <algorithm>

#include "stack/tcp/tcp.h"
#include "tests/fuzz/frames.h"

namespace tapstack::fuzz {
namespace world {

MacAddress mac_of(Ipv4Address address) {
  return MacAddress{{0x02, 0, 0, 0, 0, static_cast<uint8_t>(address.value & 0xff)}};
}

StackConfig stack_config() {
  StackConfig config;
  config.mac = mac_of(kUs);
  config.ipv4 = Ipv4Interface{kUs, 24};
  config.seed = 1;
  config.transmit_queue_frames = 32;  // drained after every step
  config.gratuitous_arp = false;
  config.arp.entry_lifetime = Duration::seconds(600);  // longer than one record's advance
  return config;
}

md5opt::KeyTable peer_keys() {
  md5opt::KeyTable keys;
  (void)keys.add(IpAddress(kSignedPeer), md5opt::text_bytes(kSignedKey));
  (void)keys.add(IpAddress(kPrefix), kPrefixLength, md5opt::text_bytes(kPrefixKey));
  return keys;
}

}  // namespace world

namespace {

using namespace world;

constexpr int kMaxTimerRounds = 100'000;  // per step; more is a livelock
constexpr uint32_t kSignedPeerIss = 1000;
constexpr uint32_t kUnsignedPeerIss = 5000;

ByteView text(std::string_view s) {
  return md5opt::text_bytes(s);
}

TcpFrame segment_to_us(Ipv4Address peer, uint16_t peer_port, uint16_t our_port, uint8_t flags) {
  TcpFrame f;
  f.destination_mac = mac_of(kUs);
  f.source_mac = mac_of(peer);
  f.source = peer;
  f.destination = kUs;
  f.source_port = peer_port;
  f.destination_port = our_port;
  f.flags = flags;
  return f;
}

Record record(uint8_t fixups, Bytes frame) {
  return Record{fixups, 0, std::move(frame)};
}

}  // namespace

World::World() : stack_(stack_config()), peer_keys_(world::peer_keys()), sent_checker_(peer_keys_) {
  stack_.start(now_);
  set_up();
}

void World::set_up() {
  for (const Ipv4Address peer : kPeers) {
    step(record(0, build_arp(1, mac_of(peer), peer, kUs, MacAddress::broadcast())));
  }
  Tcp& tcp = stack_.tcp();
  listener_ = *tcp.listen(kListenPort, kBacklog);
  (void)tcp.set_md5_key(*listener_, kSignedPeer, 32, text(kSignedKey));
  (void)tcp.set_md5_key(*listener_, kPrefix, kPrefixLength, text(kPrefixKey));

  TcpFrame syn = segment_to_us(kSignedPeer, kSignedPeerPort, kListenPort, tcp_flags::kSyn);
  syn.seq = kSignedPeerIss;
  syn.options = option_bytes::md5();
  const Bytes mss = option_bytes::mss(1460);
  syn.options.insert(syn.options.end(), mss.begin(), mss.end());
  step(record(fixup::kValid | fixup::kSign, build_tcp_frame(syn)));
  TcpFrame ack = segment_to_us(kSignedPeer, kSignedPeerPort, kListenPort, tcp_flags::kAck);
  ack.options = option_bytes::md5();
  step(record(fixup::kAll, build_tcp_frame(ack)));
  accept_all();
  signed_ = accepted_.empty() ? std::nullopt : std::optional(accepted_.front());
  accepted_.clear();

  const auto opened = tcp.connect(kUnsignedPeer, kUnsignedPeerPort, now_, kUnsignedLocalPort);
  if (opened) unsigned_ = *opened;
  drain();
  TcpFrame synack = segment_to_us(kUnsignedPeer, kUnsignedPeerPort, kUnsignedLocalPort,
                                  tcp_flags::kSyn | tcp_flags::kAck);
  synack.seq = kUnsignedPeerIss;
  synack.options = option_bytes::mss(1460);
  step(record(fixup::kValid | fixup::kRelative, build_tcp_frame(synack)));

  expect_established(signed_, "the signed connection");
  expect_established(unsigned_, "the unsigned connection");
}

void World::expect_established(std::optional<SocketId> id, std::string_view what) {
  const auto info = id ? std::optional(stack_.tcp().info(*id)) : std::nullopt;
  violations_.check(info && *info && (*info)->state == TcpState::Established,
                    "setup: {} did not reach ESTABLISHED", what);
}

void World::step(const Record& r) {
  ++steps_;
  last_sent_.clear();
  advance(advance_of(r.advance));
  act(r.action());
  if (!r.frame.empty()) deliver(r.frame, r.fixups());
  check_state();
}

// Runs every timer that falls due, in order, the way an event loop would.
void World::advance(Duration d) {
  const Instant until = now_ + d;
  for (int round = 0; stack_.next_deadline() <= until; ++round) {
    if (round == kMaxTimerRounds) return violations_.add("timers keep falling due: a livelock");
    now_ = std::max(now_, stack_.next_deadline());
    stack_.on_timer(now_);
    drain();
    violations_.check(stack_.next_deadline() > now_,
                      "after on_timer({} ns), the next deadline is not later", now_.ns());
    if (stack_.next_deadline() <= now_) return;
  }
  now_ = until;
}

void World::deliver(Bytes frame, uint8_t fixups) {
  apply_fixups(fixups, frame, FixupContext{flows_, peer_keys_, signer_});
  ++frames_in_;
  stack_.on_frame(frame, now_);
  drain();
}

void World::drain() {
  // The listener and what it accepted sign to keyed peers; so do our signed active opens while
  // they last (a segment for a connection that is gone gets an unsigned reset, as in Linux).
  // Resets from an active open's port are not judged: one for a segment that came before the
  // connect, to no socket, goes unsigned and may wait for ARP until after it (as in Linux);
  // tests/unit/tcp_md5_test checks that the connection's own resets are signed.
  SigningRules rules;
  if (listener_) rules.signed_flows.push_back({kListenPort});
  for (size_t i = 0; i < connected_.size(); ++i) {
    const auto info = stack_.tcp().info(connected_[i]);
    if (!info || info->state == TcpState::Closed) continue;
    rules.signed_flows.push_back(
        {static_cast<uint16_t>(kConnectLocalPort + i), kListenPort, kPrefixPeer, false});
  }
  while (const auto frame = stack_.poll_transmit()) {
    ++frames_out_;
    sent_checker_.check(*frame, stack_, flows_, rules, violations_);
    flows_.learn(*frame);
    last_sent_.emplace_back(frame->begin(), frame->end());
  }
}

WorldFacts World::facts() const {
  WorldFacts facts;
  facts.frames_in = frames_in_;
  facts.frames_out = frames_out_;
  facts.steps = steps_;
  facts.listener = listener_;
  facts.once_established = accepted_;
  facts.active_opens = connected_;
  for (const auto& id : {signed_, unsigned_}) {
    if (id) facts.once_established.push_back(*id);
  }
  if (signed_) facts.signed_sockets.push_back(*signed_);
  if (unsigned_) facts.plain_sockets.push_back(*unsigned_);
  facts.signed_sockets.insert(facts.signed_sockets.end(), connected_.begin(), connected_.end());
  return facts;
}

void World::check_state() {
  const WorldFacts known = facts();
  check_counters(stack_, known, violations_);
  check_sockets(stack_, known, violations_);
  check_memory(stack_, violations_);
  check_liveness(stack_, violations_);
  for (std::string& broken : stack_.tcp().check_invariants()) violations_.add(std::move(broken));
}

}  // namespace tapstack::fuzz
