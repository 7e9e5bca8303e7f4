#include "tests/tap/bridged_exchange.h"

#include <tins/tins.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <chrono>
#include <vector>

#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/tap_device.h"
#include "tests/support/byte_pattern.h"
#include "tests/tap/tapstack_tcp.h"

namespace tapstack::testing {
namespace {

using std::chrono::steady_clock;
constexpr milliseconds limit{600'000};

// Set-up that must work, for tests and benchmarks alike: a failure throws, naming the step.
template <typename R>
void ensure(bool ok, const char* what, const R& result) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + result.error().message);
}

void observe(const Tins::TCP& tcp, Seen& seen, const Seen& other) {
  if (tcp.get_flag(Tins::TCP::SYN)) {
    if (tcp.search_option(Tins::TCP::WSCALE)) seen.syn_window_scale = tcp.winscale();
    seen.syn_sack_permitted = tcp.has_sack_permitted();
    seen.syn_timestamps = tcp.search_option(Tins::TCP::TSOPT) != nullptr;
    return;
  }
  ++seen.segments;
  // RFC 7323 §3.2: once negotiated, TSopt MUST be in every non-<RST> segment. A reset may come
  // at the end, when a late segment of the peer finds the connection gone (no socket: no
  // options, as Linux's tcp_v4_send_reset()); it is counted apart.
  if (tcp.get_flag(Tins::TCP::RST)) {
    ++seen.resets;
  } else if (!tcp.search_option(Tins::TCP::TSOPT)) {
    ++seen.without_timestamps;
  }
  if (tcp.search_option(Tins::TCP::SACK)) ++seen.with_sack_blocks;
  // The scale applies only when both SYNs carried the option (RFC 7323 §2.2).
  const uint8_t shift =
      seen.syn_window_scale && other.syn_window_scale ? *seen.syn_window_scale : 0;
  seen.largest_window = std::max(seen.largest_window, uint32_t{tcp.window()} << shift);
}

}  // namespace

BridgedExchange bridged_exchange(uint64_t size, int loss_percent, const TcpConfig& tcp_config,
                                 uint16_t port) {
  auto peer = BridgedPeer::create(loss_percent);
  ensure(static_cast<bool>(peer), "bridge", peer);
  auto tap = TapDevice::open("tap0");
  ensure(static_cast<bool>(tap), "tap0", tap);
  StackConfig config;
  config.mac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
  config.ipv4 = *Ipv4Interface::parse("198.18.0.2/24");
  config.seed = 7323;
  config.tcp = tcp_config;
  Stack stack(config);
  auto loop = EventLoop::create(*tap, stack);
  ensure(static_cast<bool>(loop), "event loop", loop);

  BridgedExchange result;
  Seen& ours = result.ours;
  Seen& theirs = result.theirs;
  (*loop)->set_frame_tap([&](FrameDirection direction, ByteView frame) {
    try {
      const Tins::EthernetII ethernet(frame.data(), static_cast<uint32_t>(frame.size()));
      const auto* tcp = ethernet.find_pdu<Tins::TCP>();
      if (!tcp) return;
      if (direction == FrameDirection::Sent) {
        observe(*tcp, ours, theirs);
      } else {
        observe(*tcp, theirs, ours);
      }
    } catch (const Tins::malformed_packet&) {
    }
  });
  stack.start(monotonic_now());

  KernelServer server = peer->within([port, size] {
    return KernelServer(port, deadline_in(limit), [size](KernelSocket& connection) {
      connection.set_congestion_control("cubic");
      return exchange(connection, {.seed = 31, .size = size}, deadline_in(limit));
    });
  });

  Tcp& tcp = stack.tcp();
  auto socket = tcp.connect(kKernelAddress, port, monotonic_now());
  ensure(static_cast<bool>(socket), "connect", socket);
  std::vector<uint8_t> chunk(64 * 1024);
  uint64_t sent = 0;
  uint64_t received = 0;
  bool shut = false;
  bool end = false;
  Sha256 digest;
  const auto start = steady_clock::now();
  const auto deadline = start + limit;
  // Until the kernel's stream has ended and all of ours is acknowledged, FIN included.
  auto all_done = [&] {
    if (!end || !shut) return false;
    const auto now_info = tcp.info(*socket);
    return now_info && now_info->send_queue == 0 && now_info->unacked == 0;
  };
  while (!all_done() && steady_clock::now() < deadline) {
    const Status turned = (*loop)->run_once(Duration::milliseconds(5));
    ensure(static_cast<bool>(turned), "event loop", turned);
    const Instant now = monotonic_now();
    const uint32_t events = tcp.events(*socket);
    if (events & socket_event::kError) {
      throw std::runtime_error("the connection failed: " + tcp.take_error(*socket).error().message);
    }
    if (!(events & socket_event::kConnected)) continue;
    while (sent < size) {
      const size_t length = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - sent));
      fill_pattern(32, sent, MutableByteView(chunk).first(length));
      const auto n = tcp.send(*socket, ByteView(chunk).first(length), now);
      if (!n) break;
      sent += *n;
    }
    if (sent == size && !shut) shut = static_cast<bool>(tcp.shutdown(*socket, ShutdownHow::Write, now));
    while (!end) {
      const auto n = tcp.receive(*socket, MutableByteView(chunk), now);
      if (!n) break;
      if (*n == 0) {
        end = true;
        break;
      }
      digest.update(ByteView(chunk).first(*n));
      received += *n;
    }
  }
  const double seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
  const TcpInfo info = *tcp.info(*socket);
  tcp.close(*socket, monotonic_now());
  // Let our last ACK and FIN out before the kernel side is asked for its result.
  for (int i = 0; i < 20; ++i) (void)(*loop)->run_once(Duration::milliseconds(5));
  const Transfer kernel = server.join();

  result.finished = end;
  result.received = received;
  result.received_intact = received == size && digest.finish() == pattern_digest(31, size);
  result.kernel = kernel;
  result.kernel_intact =
      kernel.received == size && kernel.received_digest == pattern_digest(32, size);
  result.seconds = seconds;
  result.info = info;
  return result;
}

}  // namespace tapstack::testing
