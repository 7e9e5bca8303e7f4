#include "tests/fuzz/mutator.h"

#include <algorithm>
#include <array>

#include "stack/ipv4.h"
#include "stack/tcp/header.h"
#include "stack/tcp/tcp.h"
#include "tests/fuzz/world.h"

namespace tapstack::fuzz {
namespace {

using namespace world;
using namespace tcp_flags;

// A flow of the world, from the peer's side.
struct PeerFlow {
  Ipv4Address peer;
  uint16_t peer_port;
  uint16_t our_port;
};

}  // namespace

Mutator::Mutator(uint64_t seed, ByteMutator byte_mutator)
    : random_(seed), byte_mutator_(std::move(byte_mutator)) {}

size_t Mutator::mutate(uint8_t* data, size_t size, size_t max_size) {
  std::vector<Record> records = parse_records({data, size});
  if (records.empty()) {
    records = random_records();
  } else {
    const size_t rounds = 1 + pick(3);
    for (size_t i = 0; i < rounds; ++i) mutate_records(records);
  }
  const Bytes out = fit(std::move(records), max_size);
  std::copy(out.begin(), out.end(), data);
  return out.size();
}

size_t Mutator::cross_over(ByteView a, ByteView b, uint8_t* out, size_t max_size) {
  std::vector<Record> first = parse_records(a);
  const std::vector<Record> second = parse_records(b);
  first.resize(first.empty() ? 0 : pick(first.size() + 1));
  const size_t from = second.empty() ? 0 : pick(second.size());
  first.insert(first.end(), second.begin() + static_cast<ptrdiff_t>(from), second.end());
  const Bytes bytes = fit(std::move(first), max_size);
  std::copy(bytes.begin(), bytes.end(), out);
  return bytes.size();
}

Bytes fit(std::vector<Record> records, size_t max_size) {
  size_t total = 0;
  for (const Record& r : records) total += serialized_size(r);
  while (total > max_size && records.size() > 1) {
    total -= serialized_size(records.back());
    records.pop_back();
  }
  if (total > max_size && !records.empty()) {
    records[0].frame.resize(max_size > kRecordHeaderSize ? max_size - kRecordHeaderSize : 0);
    if (max_size < kRecordHeaderSize) records.clear();
  }
  return serialize_records(records);
}

void Mutator::mutate_records(std::vector<Record>& records) {
  Record& r = records[pick(records.size())];
  switch (pick(10)) {
    case 0:
    case 1: {
      auto fresh = random_records();
      records.insert(records.begin() + static_cast<ptrdiff_t>(pick(records.size() + 1)),
                     fresh.begin(), fresh.end());
      return;
    }
    case 2:
      if (records.size() > 1)
        records.erase(records.begin() + static_cast<ptrdiff_t>(pick(records.size())));
      return;
    case 3:
      records.insert(records.begin() + static_cast<ptrdiff_t>(pick(records.size() + 1)), Record(r));
      return;
    case 4:
      std::swap(r, records[pick(records.size())]);
      return;
    case 5:
      r.advance = random_advance();
      return;
    case 6:
      r.set_action(static_cast<AppAction>(pick(kAppActionCount)));
      return;
    case 7:
      r.set_fixups(r.fixups() ^ static_cast<uint8_t>(1u << pick(4)));
      return;
    default:
      mutate_frame(r.frame);
      return;
  }
}

void Mutator::mutate_frame(Bytes& frame) {
  auto tcp = read_tcp_frame(frame);
  if (!tcp || chance(0.1)) return mutate_bytes(frame, frame.size() + 64);
  mutate_tcp_field(*tcp);
  frame = build_tcp_frame(*tcp);
}

void Mutator::mutate_tcp_field(TcpFrame& f) {
  switch (pick(12)) {
    case 0:
      f.flags = chance(0.5) ? random_flags() : f.flags ^ static_cast<uint8_t>(1u << pick(8));
      return;
    case 1:
      f.seq = chance(0.5) ? random_offset() : f.seq + static_cast<uint32_t>(pick(64)) - 32;
      return;
    case 2:
      f.ack = chance(0.5) ? random_offset() : f.ack + static_cast<uint32_t>(pick(64)) - 32;
      return;
    case 3:
      f.window =
          std::array<uint16_t, 5>{0, 1, 512, 65535, static_cast<uint16_t>(pick(65536))}[pick(5)];
      return;
    case 4:
      f.payload = random_payload();
      return;
    case 5:
      mutate_bytes(f.payload, 2048);
      return;
    case 6:
      f.options = random_options((f.flags & kSyn) != 0, chance(0.5));
      return;
    case 7:
      f.options = malformed_options();
      return;
    case 8:
      f.source_port = std::array<uint16_t, 4>{kSignedPeerPort, kUnsignedPeerPort, kListenPort,
                                              static_cast<uint16_t>(pick(65536))}[pick(4)];
      return;
    case 9:
      f.destination_port = std::array<uint16_t, 4>{kListenPort, kUnsignedLocalPort, kClosedPort,
                                                   kConnectLocalPort}[pick(4)];
      return;
    case 10:
      f.source = kPeers[pick(std::size(kPeers))];
      f.source_mac = mac_of(f.source);
      return;
    default:
      f.ttl = std::array<uint8_t, 3>{0, 1, 64}[pick(3)];
      f.fragment_field = chance(0.5) ? 0x4000 : static_cast<uint16_t>(pick(0x10000));
      f.urgent = static_cast<uint16_t>(pick(3000));
      return;
  }
}

std::vector<Record> Mutator::random_records() {
  Record r;
  r.advance = random_advance();
  if (chance(0.3)) r.set_action(static_cast<AppAction>(pick(kAppActionCount)));
  const Ipv4Address peer = kPeers[pick(std::size(kPeers))];
  switch (pick(10)) {
    case 0:
      r.frame = build_arp(static_cast<uint16_t>(1 + pick(2)), mac_of(peer), peer, kUs,
                          chance(0.5) ? MacAddress::broadcast() : mac_of(kUs));
      return {r};
    case 1: {
      const Bytes echo = build_icmp_echo(static_cast<uint16_t>(pick(4)), 1, random_payload());
      r.frame = build_ipv4_frame(mac_of(kUs), mac_of(peer), peer, kUs, kProtocolIcmp, echo,
                                 static_cast<uint16_t>(pick(8)));
      if (chance(0.5)) return {r};
      std::vector<Record> fragments;
      for (Bytes& f : fragment_frame(r.frame, 8 * (1 + pick(100))))
        fragments.push_back(Record{r.control, 0, std::move(f)});
      if (chance(0.5)) std::reverse(fragments.begin(), fragments.end());
      return fragments;
    }
    case 2:
      return {Record{r.control, r.advance, {}}};
    default:
      return {tcp_record()};
  }
}

Record Mutator::tcp_record() {
  static constexpr PeerFlow kFlows[] = {
      {kSignedPeer, kSignedPeerPort, kListenPort},
      {kUnsignedPeer, kUnsignedPeerPort, kUnsignedLocalPort},
      {kPrefixPeer, kListenPort, kConnectLocalPort},
  };
  PeerFlow flow = kFlows[pick(std::size(kFlows))];
  if (chance(0.3)) {  // a new connection to the listener, or a segment to a closed port
    flow.peer = kPeers[pick(std::size(kPeers))];
    flow.peer_port = static_cast<uint16_t>(40002 + pick(8));
    flow.our_port = chance(0.8) ? kListenPort : kClosedPort;
  }
  static const md5opt::KeyTable keys = peer_keys();
  const bool has_key = keys.lookup(IpAddress(flow.peer)) != nullptr;
  const bool sign = has_key ? !chance(0.05) : chance(0.05);  // now and then the wrong way
  TcpFrame f;
  f.destination_mac = mac_of(kUs);
  f.source_mac = mac_of(flow.peer);
  f.source = flow.peer;
  f.destination = kUs;
  f.source_port = flow.peer_port;
  f.destination_port = flow.our_port;
  f.flags = random_flags();
  f.seq = random_offset();
  f.ack = chance(0.6) ? 0 : random_offset();
  f.window = chance(0.9) ? 65535 : static_cast<uint16_t>(pick(65536));
  f.options = random_options((f.flags & kSyn) != 0, sign);
  if (!(f.flags & (kSyn | kRst))) f.payload = random_payload();
  const uint8_t fixups = fixup::kValid | fixup::kRelative | (sign ? fixup::kSign : 0);
  Record r{fixups, random_advance(), build_tcp_frame(f)};
  if (chance(0.2)) r.set_action(static_cast<AppAction>(pick(kAppActionCount)));
  return r;
}

Bytes Mutator::random_options(bool syn, bool sign) {
  Bytes out = sign ? option_bytes::md5() : Bytes{};
  const auto add = [&](const Bytes& option) {
    if (out.size() + option.size() <= 40) out.insert(out.end(), option.begin(), option.end());
  };
  if (syn) {
    if (chance(0.9)) add(option_bytes::mss(random_mss()));
    if (chance(0.3)) add(option_bytes::window_scale(static_cast<uint8_t>(pick(16))));
    if (chance(0.3)) add(option_bytes::sack_permitted());
  }
  if (chance(0.2)) add(option_bytes::timestamps(random_.next_u32(), random_.next_u32()));
  if (chance(0.1)) {
    const std::pair<uint32_t, uint32_t> block{random_offset(), random_offset()};
    add(option_bytes::sack(std::span(&block, 1)));
  }
  if (chance(0.05)) add(malformed_options());
  return out;
}

Bytes Mutator::malformed_options() {
  Bytes out(1 + pick(40));
  for (auto& b : out) b = static_cast<uint8_t>(pick(4) == 0 ? pick(256) : pick(20));
  return out;
}

Bytes Mutator::random_payload() {
  static constexpr size_t kSizes[] = {0, 0, 1, 10, 100, 536, 1000, 1460};
  Bytes out(chance(0.8) ? kSizes[pick(std::size(kSizes))] : pick(2000));
  for (auto& b : out) b = static_cast<uint8_t>(random_.next_u32());
  return out;
}

uint8_t Mutator::random_flags() {
  static constexpr uint8_t kCommon[] = {kAck,        kAck,        kAck,        kPsh | kAck,
                                        kPsh | kAck, kFin | kAck, kSyn,        kSyn | kAck,
                                        kRst,        kRst | kAck, kUrg | kAck, 0};
  return chance(0.9) ? kCommon[pick(std::size(kCommon))] : static_cast<uint8_t>(pick(256));
}

// An offset from the flow's state: mostly at it, often within a window of it, sometimes far.
uint32_t Mutator::random_offset() {
  switch (pick(8)) {
    case 0:
    case 1:
    case 2:
      return 0;
    case 3:
      return static_cast<uint32_t>(pick(3)) - 1;
    case 4:
      return static_cast<uint32_t>(pick(6000)) - 3000;
    case 5:
      return std::array<uint32_t, 6>{
          65535, 65536, 0u - 65535, 131072, 262144, 0u - 262144}[pick(6)];
    case 6:
      return 0x80000000u + static_cast<uint32_t>(pick(3)) - 1;
    default:
      return random_.next_u32();
  }
}

uint16_t Mutator::random_mss() {
  static constexpr uint16_t kValues[] = {1460, 1460, 1460, 536, 1400, 0, 1, 20, 32, 48, 88, 65535};
  return chance(0.9) ? kValues[pick(std::size(kValues))] : static_cast<uint16_t>(pick(65536));
}

uint8_t Mutator::random_advance() {
  switch (pick(8)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return 0;
    case 4:
    case 5:
      return static_cast<uint8_t>(1 + pick(100));
    case 6:
      return static_cast<uint8_t>(101 + pick(100));
    default:
      return static_cast<uint8_t>(201 + pick(55));
  }
}

void Mutator::mutate_bytes(Bytes& bytes, size_t max_size) {
  if (bytes.empty()) bytes.push_back(static_cast<uint8_t>(random_.next_u32()));
  const size_t size = bytes.size();
  bytes.resize(std::max(max_size, size));
  bytes.resize(byte_mutator_(bytes.data(), size, bytes.size()));
}

}  // namespace tapstack::fuzz
