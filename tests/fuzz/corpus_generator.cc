// Writes the seed corpus of the fuzz targets, tests/fuzz/corpus/TARGET/NAME, from simulated
// runs. In the peer scenarios a real tapstack Stack plays a peer of the fuzz world in virtual
// time, and each frame it sends becomes one record of a receive-path input, its sequence
// numbers made relative to the world's state so that the input stays meaningful when the
// stack's ISNs or options change. Scripted scenarios drive the setup's two connections
// through data, loss, resets and closes. The TCP segments seen on the way, and a few
// malformed option lists, seed the header and MD5 targets.
//
//   bazel run //tests/fuzz:corpus_generator -- "$PWD/tests/fuzz/corpus"
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "stack/ipv4.h"
#include "stack/tcp/tcp.h"
#include "tests/fuzz/frames.h"
#include "tests/fuzz/world.h"

namespace tapstack::fuzz {
namespace {

using namespace world;
using namespace tcp_flags;
using Corpus = std::map<std::string, Bytes>;  // file name → contents

// A peer of the world: a Stack at 198.18.0.n that signs with `key` when one is given.
struct PeerSpec {
  Ipv4Address address;
  std::optional<std::string_view> key;
};

StackConfig peer_config(Ipv4Address address) {
  StackConfig config;
  config.mac = mac_of(address);
  config.ipv4 = Ipv4Interface{address, 24};
  config.seed = 7;
  config.transmit_queue_frames = 64;
  config.gratuitous_arp = false;
  config.mtu = 576;  // small segments keep the corpus small
  return config;
}

// The world and one peer Stack, run together; the peer's frames become records.
class PeerRun {
 public:
  explicit PeerRun(const PeerSpec& spec) : spec_(spec), peer_(peer_config(spec.address)) {
    peer_.start(world_.now());
  }

  Stack& peer() { return peer_; }
  Instant now() const { return world_.now(); }
  // The world's application acts (a record with no frame).
  void world_acts(AppAction action) { step(Record{fixup::kValid, 0, {}}, action); }
  // Runs until done() or `limit` of virtual time passed.
  void run(
      Duration limit, const std::function<bool()>& done = [] { return false; });
  // The records, and every frame that crossed between the two.
  std::pair<std::vector<Record>, std::vector<Bytes>> take() {
    return {std::move(records_), std::move(segments_)};
  }

 private:
  void step(Record record, AppAction action = AppAction::None);
  void take_from_peer();
  Record record_of(Bytes frame);

  PeerSpec spec_;
  World world_;
  Stack peer_;
  std::vector<Record> records_;
  std::vector<Bytes> segments_;
};

void PeerRun::run(Duration limit, const std::function<bool()>& done) {
  const Instant end = world_.now() + limit;
  while (!done() && world_.now() < end) {
    take_from_peer();
    const Instant next = std::min({peer_.next_deadline(), world_.stack().next_deadline(), end});
    if (next <= world_.now()) continue;
    Record wait{fixup::kValid, advance_code(next - world_.now()), {}};
    step(std::move(wait));
    peer_.on_timer(world_.now());
  }
}

void PeerRun::take_from_peer() {
  std::vector<Bytes> frames;
  while (const auto frame = peer_.poll_transmit())
    frames.emplace_back(frame->begin(), frame->end());
  for (Bytes& frame : frames) step(record_of(std::move(frame)));
}

void PeerRun::step(Record record, AppAction action) {
  record.set_action(action);
  if (!record.frame.empty()) segments_.push_back(record.frame);
  world_.step(record);
  records_.push_back(std::move(record));
  for (const Bytes& frame : world_.last_sent()) {
    segments_.push_back(frame);
    const bool for_peer =
        std::equal(frame.begin(), frame.begin() + 6, peer_config(spec_.address).mac.bytes.begin());
    if (for_peer || (frame[0] & 1)) peer_.on_frame(frame, world_.now());
  }
}

// Sequence numbers relative to what the world last sent on the flow; re-signed on replay when
// the peer signs with the key the world expects from it.
Record PeerRun::record_of(Bytes frame) {
  uint8_t fixups = fixup::kValid;
  if (auto tcp = read_tcp_frame(frame)) {
    const auto state = world_.flows().state(tcp->source, tcp->source_port, tcp->destination_port);
    store_be32(&frame[kTcpAt + 4], tcp->seq - state.rcv_nxt);
    store_be32(&frame[kTcpAt + 8], tcp->ack - state.snd_max);
    fixups |= fixup::kRelative;
    static const md5opt::KeyTable keys = world::peer_keys();
    const auto* expected = keys.lookup(IpAddress(tcp->source));
    const bool right_key = spec_.key && expected &&
                           std::ranges::equal(expected->bytes(), md5opt::text_bytes(*spec_.key));
    if (right_key) fixups |= fixup::kSign;
  }
  return Record{fixups, 0, std::move(frame)};
}

using Recorded = std::pair<std::vector<Record>, std::vector<Bytes>>;

// The peer opens a connection to port, sends `size` bytes and closes; the world accepts and
// reads.
Recorded peer_transfer(const PeerSpec& spec, uint16_t port, size_t size) {
  PeerRun run(spec);
  Tcp& tcp = run.peer().tcp();
  const SocketId id = *tcp.open();
  if (spec.key) (void)tcp.set_md5_key(id, kUs, 32, md5opt::text_bytes(*spec.key));
  (void)tcp.connect(id, kUs, port, run.now(), 40100);
  run.run(Duration::seconds(3), [&] { return tcp.events(id) & socket_event::kConnected; });
  run.world_acts(AppAction::Accept);
  const Bytes data(size, 'd');
  (void)tcp.send(id, data, run.now());
  (void)tcp.shutdown(id, ShutdownHow::Write, run.now());
  run.run(Duration::seconds(2));
  run.world_acts(AppAction::Read);
  run.run(Duration::seconds(1));
  return run.take();
}

// We open a signed connection to the prefix-keyed peer, which listens with the key.
Recorded active_open() {
  PeerRun run({kPrefixPeer, kPrefixKey});
  Tcp& tcp = run.peer().tcp();
  const SocketId listener = *tcp.listen(kListenPort, 4);
  (void)tcp.set_md5_key(listener, kUs, 32, md5opt::text_bytes(kPrefixKey));
  run.world_acts(AppAction::ConnectSigned);
  run.run(Duration::seconds(2));
  if (const auto id = tcp.accept(listener)) (void)tcp.send(*id, Bytes(700, 'a'), run.now());
  run.run(Duration::seconds(1));
  run.world_acts(AppAction::Read);
  return run.take();
}

Recorded ping(size_t size) {
  PeerRun run({kUnsignedPeer, std::nullopt});
  (void)run.peer().send_echo_request(kUs, 7, 1, Bytes(size, 'p'), run.now());
  run.run(Duration::seconds(2));
  return run.take();
}

void add_peer_scenarios(Corpus& receive, std::vector<Bytes>& segments) {
  std::vector<std::pair<std::string, Recorded>> runs;
  runs.emplace_back("peer_signed_transfer",
                    peer_transfer({kSignedPeer, kSignedKey}, kListenPort, 1500));
  runs.emplace_back("peer_unsigned_transfer",
                    peer_transfer({kUnsignedPeer, std::nullopt}, kListenPort, 1500));
  runs.emplace_back("peer_prefix_key_transfer",
                    peer_transfer({kPrefixPeer, kPrefixKey}, kListenPort, 800));
  runs.emplace_back("peer_wrong_key",
                    peer_transfer({kSignedPeer, "not the key"}, kListenPort, 100));
  runs.emplace_back("peer_missing_key",
                    peer_transfer({kSignedPeer, std::nullopt}, kListenPort, 100));
  runs.emplace_back("peer_unexpected_key", peer_transfer({kStranger, "a key"}, kListenPort, 100));
  runs.emplace_back("peer_closed_port",
                    peer_transfer({kUnsignedPeer, std::nullopt}, kClosedPort, 100));
  runs.emplace_back("active_open_signed", active_open());
  runs.emplace_back("ping", ping(100));
  runs.emplace_back("ping_fragmented", ping(1200));
  for (auto& [name, run] : runs) {
    receive[name] = serialize_records(run.first);
    segments.insert(segments.end(), run.second.begin(), run.second.end());
  }
}

// A segment on one of the setup's connections, numbers relative to the world's state.
Record on_connection(bool signed_connection, uint8_t flags, uint32_t seq, uint32_t ack = 0,
                     size_t payload = 0, uint16_t window = 65535) {
  const Ipv4Address peer = signed_connection ? kSignedPeer : kUnsignedPeer;
  TcpFrame f;
  f.destination_mac = mac_of(kUs);
  f.source_mac = mac_of(peer);
  f.source = peer;
  f.destination = kUs;
  f.source_port = signed_connection ? kSignedPeerPort : kUnsignedPeerPort;
  f.destination_port = signed_connection ? kListenPort : kUnsignedLocalPort;
  f.seq = seq;
  f.ack = ack;
  f.flags = flags;
  f.window = window;
  f.payload.assign(payload, 'x');
  if (signed_connection) f.options = option_bytes::md5();
  const uint8_t fixups = fixup::kAll & (signed_connection ? 0xff : ~fixup::kSign);
  return Record{fixups, 0, build_tcp_frame(f)};
}

Record acting(Record r, AppAction action) {
  r.set_action(action);
  return r;
}

// The option is there, but the digest is left as it is: wrong.
Record unsigned_digest(Record r) {
  r.set_fixups(r.fixups() & ~fixup::kSign);
  return r;
}

Record wait(Duration d, AppAction action = AppAction::None) {
  return acting(Record{fixup::kValid, advance_code(d), {}}, action);
}

void add_scripted_scenarios(Corpus& receive) {
  constexpr bool S = true, U = false;
  const auto add = [&](const std::string& name, std::vector<Record> records) {
    receive[name] = serialize_records(records);
  };
  add("signed_data_in_order",
      {on_connection(S, kAck | kPsh, 0, 0, 300), on_connection(S, kAck | kPsh, 0, 0, 300),
       wait(Duration::milliseconds(50), AppAction::Read)});
  add("signed_out_of_order",
      {on_connection(S, kAck, 400, 0, 200), on_connection(S, kAck, 100, 0, 100),
       on_connection(S, kAck, 0, 0, 100), on_connection(S, kAck, 0, 0, 200),
       wait(Duration::milliseconds(1), AppAction::Read)});
  add("unsigned_fin_then_close",
      {on_connection(U, kAck | kFin, 0, 0, 10), wait(Duration::milliseconds(1), AppAction::Read),
       wait(Duration::milliseconds(1), AppAction::CloseUnsigned), on_connection(U, kAck, 0)});
  add("signed_reset_exact", {on_connection(S, kRst, 0)});
  add("signed_reset_in_window", {on_connection(S, kRst, 100), on_connection(S, kRst | kAck, 0, 0)});
  add("syn_on_established", {on_connection(U, kSyn, 0), on_connection(S, kSyn, 12345)});
  add("bad_signature", {unsigned_digest(on_connection(S, kAck | kPsh, 0, 0, 50))});
  add("out_of_window",
      {on_connection(S, kAck, 70000, 0, 10), on_connection(U, kAck, 0u - 5000, 0, 10),
       on_connection(U, kAck, 0, 100000)});
  add("zero_window_probes",
      {acting(on_connection(U, kAck, 0, 0, 0, 0), AppAction::NoDelay),
       wait(Duration::zero(), AppAction::SendUnsigned), on_connection(U, kAck, 0, 0, 0, 0),
       wait(Duration::seconds(5)), wait(Duration::seconds(30)), on_connection(U, kAck, 0, 0)});
  add("retransmit_until_timeout",
      {wait(Duration::zero(), AppAction::SendBulkSigned), wait(Duration::seconds(10)),
       wait(Duration::seconds(100)), wait(Duration::seconds(500)), wait(Duration::seconds(500))});
  add("fast_retransmit",
      {wait(Duration::zero(), AppAction::SendBulkSigned), on_connection(S, kAck, 0, 0u - 5000),
       on_connection(S, kAck, 0, 0u - 5000), on_connection(S, kAck, 0, 0u - 5000),
       on_connection(S, kAck, 0, 0u - 5000), on_connection(S, kAck, 0, 0)});
  add("time_wait", {wait(Duration::zero(), AppAction::CloseSigned), on_connection(S, kAck, 0, 0),
                    on_connection(S, kAck | kFin, 0, 0), wait(Duration::seconds(60)),
                    on_connection(S, kAck | kFin, 0u - 1, 0), wait(Duration::seconds(130))});
  add("keepalive", {wait(Duration::zero(), AppAction::Keepalive), wait(Duration::seconds(20)),
                    wait(Duration::seconds(20))});
  add("small_receive_buffer",
      {wait(Duration::zero(), AppAction::ShrinkReceiveBuffer),
       on_connection(U, kAck | kPsh, 0, 0, 1460), on_connection(U, kAck | kPsh, 0, 0, 1460),
       wait(Duration::milliseconds(1), AppAction::Read)});
  add("close_listener",
      {acting(wait(Duration::zero()), AppAction::CloseListener), on_connection(S, kAck, 0, 0, 10)});
}

// A control byte that asks the header target to fix the checksum, then the segment.
Bytes header_input(ByteView segment, uint8_t control = 0x01) {
  Bytes out;
  out.reserve(1 + segment.size());
  out.push_back(control);
  out.insert(out.end(), segment.begin(), segment.end());
  return out;
}

ByteView tcp_of(const Bytes& frame) {
  return ByteView(frame).subspan(
      kTcpAt, std::min<size_t>(load_be16(&frame[kEthernetSize + 2]), frame.size() - kEthernetSize) -
                  kIpv4Size);
}

// One segment per (flags, option layout) seen, as inputs of the header and MD5 targets.
void add_seen_segments(const std::vector<Bytes>& frames, Corpus& header, Corpus& md5) {
  std::map<std::pair<uint8_t, Bytes>, ByteView> distinct;
  for (const Bytes& frame : frames) {
    const auto tcp = read_tcp_frame(frame);
    if (!tcp || frame[kEthernetSize + 9] != kProtocolTcp) continue;
    Bytes layout;
    for (uint8_t b : tcp->options) layout.push_back(b <= 19 ? b : 0xff);
    distinct.emplace(std::pair{tcp->flags, layout}, tcp_of(frame));
  }
  int n = 0;
  for (const auto& [key, segment] : distinct) {
    const Bytes truncated(segment.begin(), segment.begin() + std::min<size_t>(segment.size(), 100));
    header[fmt::format("seen_{:02}", n)] = header_input(truncated);
    if (md5opt::find_md5_option(truncated)) {
      Bytes input{0, static_cast<uint8_t>(kSignedKey.size())};
      input.insert(input.end(), kSignedKey.begin(), kSignedKey.end());
      input.insert(input.end(), truncated.begin(), truncated.end());
      md5[fmt::format("seen_signed_{:02}", n)] = input;
    }
    if (++n == 8) break;
  }
}

// A TCP header with these option bytes (padded with EOL) and a few payload bytes.
Bytes header_with(Bytes options, uint8_t flags = kSyn) {
  options.resize((options.size() + 3) / 4 * 4, 0);
  Bytes segment(20 + options.size() + 4, 'p');
  store_be16(&segment[0], 40000);
  store_be16(&segment[2], kListenPort);
  store_be32(&segment[4], 1000);
  segment[12] = static_cast<uint8_t>((20 + options.size()) / 4 << 4);
  segment[13] = flags;
  store_be16(&segment[14], 65535);
  std::copy(options.begin(), options.end(), segment.begin() + 20);
  return segment;
}

void add_crafted_options(Corpus& header, Corpus& md5) {
  const std::map<std::string, Bytes> lists = {
      {"eol_in_middle", {2, 4, 5, 0xb4, 0, 3, 3, 7}},
      {"length_zero", {1, 1, 8, 0, 2, 4, 5, 0xb4}},
      {"length_one", {2, 1, 2, 4, 5, 0xb4}},
      {"length_beyond", {1, 2, 30, 5, 0xb4}},
      {"mss_twice", {2, 4, 5, 0xb4, 2, 4, 2, 0x18}},
      {"sack_four_blocks", {1, 1, 5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0,
                            0, 4, 0, 0,  0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8}},
      {"timestamps_short", {1, 1, 8, 8, 0, 0, 0, 1, 0, 0}},
      {"md5_short", {19, 10, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 5, 0xb4}},
      {"md5_twice", {19, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                     19, 18, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
      {"md5_after_window_scale",
       {1, 3, 3, 7, 1, 1, 19, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"md5_at_the_end", {1, 1, 1,  1,  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                          1, 1, 19, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
  };
  for (const auto& [name, options] : lists) {
    const Bytes segment = header_with(options);
    header[name] = header_input(segment, 0x03);
    Bytes input{0, 5, 'k', 'e', 'y', '-', '1'};
    input.insert(input.end(), segment.begin(), segment.end());
    md5[name] = input;
  }
  header["data_offset_below_five"] = header_input(header_with({}, kAck));
  header["data_offset_below_five"][1 + 12] = 0x40;
  header["truncated"] = {0x01, 0x9c, 0x40, 0x00, 0xb3};
  md5["no_key"] = {0, 0};
  md5["no_key"].insert(md5["no_key"].end(), lists.at("md5_twice").size() + 20, 0);
}

void write(const std::filesystem::path& dir, const Corpus& corpus) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : corpus) {
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  fmt::print("{}: {} files\n", dir.string(), corpus.size());
}

}  // namespace
}  // namespace tapstack::fuzz

int main(int argc, char** argv) {
  using namespace tapstack::fuzz;
  if (argc != 2) {
    fmt::print(stderr, "usage: corpus_generator DIRECTORY (tests/fuzz/corpus)\n");
    return 2;
  }
  Corpus receive, header, md5;
  std::vector<Bytes> segments;
  add_peer_scenarios(receive, segments);
  add_scripted_scenarios(receive);
  add_seen_segments(segments, header, md5);
  add_crafted_options(header, md5);
  const std::filesystem::path dir = argv[1];
  write(dir / "receive_path", receive);
  write(dir / "tcp_header", header);
  write(dir / "md5_option", md5);
  return 0;
}
