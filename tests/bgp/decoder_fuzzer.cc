// libFuzzer (and AFL++) entry point for the BGP decoder and state machine. The first byte
// chooses the codec options; the rest is a TCP stream from an Established peer. Invariants,
// checked on every input (a violation aborts, which the fuzzer reports as a crash):
//   - decode() of any byte string returns a message or a NOTIFICATION, never throws or reads
//     out of bounds (ASan);
//   - a message it accepts, encoded again, decodes again; without RFC 7606 notes, to the same
//     value;
//   - the state machine fed the stream stays Established or goes to Idle, never anything else,
//     and whatever it sends decodes.
//
// Build with clang, from the repository's root:
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -I. tests/bgp/decoder_fuzzer.cc
//   bgp/*.cc stack/address.cc -lfmt -o bgp_decoder_fuzzer
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "bgp/fsm.h"
#include "bgp/message.h"

namespace tapstack::bgp {
namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

bool same_value(const Message& a, const Message& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& left) {
        using T = std::decay_t<decltype(left)>;
        return left == std::get<T>(b);
      },
      a);
}

void check_round_trip(ByteView message, const CodecOptions& options) {
  Decoded decoded = decode(message, options);
  if (std::holds_alternative<DecodeError>(decoded)) {
    const Notification& n = std::get<DecodeError>(decoded).notification;
    check(n.code >= 1 && n.code <= 3);
    return;
  }
  const Message& first = std::get<Message>(decoded);
  const auto* update = std::get_if<Update>(&first);
  const std::vector<uint8_t> again = encode(first, options);
  if (again.size() > kMaxMessageSize) return;
  Decoded second = decode(again, options);
  check(std::holds_alternative<Message>(second));
  if (update && !update->notes.empty()) return;
  check(same_value(first, std::get<Message>(second)));
}

void run_established(ByteView stream, const CodecOptions& options) {
  PeerConfig config;
  config.local_as = 65002;
  config.peer_as = options.external ? 65001 : 65002;
  config.router_id = 0xc6120002;
  Fsm fsm(config);
  Instant now = Instant::from_ns(0);
  fsm.start(now);
  fsm.tcp_connected(now);
  Open open = Open::make(config.peer_as, 90, 0xc6120001);
  if (!options.four_octet_as) open.capabilities.four_octet_as.reset();
  fsm.receive(encode(open, options), now);
  fsm.receive(encode(Keepalive{}, options), now);
  check(fsm.state() == State::Established);
  fsm.take_outputs();
  fsm.receive(stream, now);
  bool notified = false;
  for (const Output& output : fsm.take_outputs()) {
    if (const auto* sent = std::get_if<SendBytes>(&output)) {
      const Decoded d = decode(sent->bytes, fsm.codec());
      check(std::holds_alternative<Message>(d));
      notified = notified || std::holds_alternative<Notification>(std::get<Message>(d));
    }
  }
  // Idle with our NOTIFICATION sent, or the peer's received; nothing in between.
  check(fsm.state() == State::Established || fsm.state() == State::Idle);
  check(!notified || fsm.state() == State::Idle);
}

}  // namespace

int fuzz_decoder(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const CodecOptions options{.four_octet_as = (data[0] & 1) != 0, .external = (data[0] & 2) != 0};
  const ByteView rest(data + 1, size - 1);
  const auto header = check_header(rest);
  if (const size_t* length = std::get_if<size_t>(&header); length && *length <= rest.size()) {
    check_round_trip(rest.first(*length), options);
  }
  check_round_trip(rest, options);
  run_established(rest, options);
  return 0;
}

}  // namespace tapstack::bgp

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tapstack::bgp::fuzz_decoder(data, size);
}
