// CUBIC (RFC 9438) in a loss-free run with one loss event: after the loss the window drops to
// β·W_max, then follows W_cubic(t) = C·(t − K)³ + W_max — concave up to W_max at t = K, convex
// beyond — which this test checks against the formula.
#include <doctest/doctest.h>

#include <cmath>

#include <fmt/format.h>

#include "tests/sim/hosts.h"
#include "tests/transfer/transfer.h"

namespace tapstack::test {
namespace {

TEST_CASE("CUBIC's window follows RFC 9438's curve after one loss event") {
  sim::Impairments link;
  link.delay = Duration::milliseconds(10);  // RTT 20 ms
  link.bandwidth_bps = 100'000'000;         // segments spaced 117 µs apart: a short outage loses a few
  sim::Network net(5);
  const auto segment = net.add_segment(link);
  // Room to queue a whole window of frames at once: no drops but the one the test makes.
  StackConfig server_config = sim::host_config(1, 5);
  StackConfig client_config = sim::host_config(2, 5);
  server_config.transmit_queue_frames = client_config.transmit_queue_frames = 2048;
  Stack& server = net.add_stack(segment, server_config);
  Stack& client = net.add_stack(segment, client_config);
  const SocketId listener = *server.tcp().listen(5001, 4);
  StreamApp sender(client, 1ull << 40, 1);  // never finishes: a bulk sender
  StreamApp receiver(server, 0, 2);
  sender.attach(*client.tcp().connect(sim::host_ip(1), 5001, net.now()));
  const SocketId id = *std::move(client.tcp().sockets()).rbegin();
  auto pump = [&] {
    if (!receiver.attached()) {
      if (auto a = server.tcp().accept(listener)) receiver.attach(*a);
    }
    sender.pump(net.now());
    receiver.pump(net.now());
    return false;
  };
  auto cwnd = [&] { return static_cast<double>(client.tcp().info(id)->cwnd) / client.tcp().info(id)->mss; };
  // Slow start up to 300 segments, then lose what is on the wire toward the server for 1 ms.
  net.run_until([&] { pump(); return cwnd() >= 300; }, Duration::seconds(30));
  const double w_max_before = cwnd();
  sim::Impairments lossy = link;
  lossy.loss = 1.0;
  net.set_port_impairments(net.port_of(server), lossy);
  net.run_until([&] { return pump(); }, Duration::milliseconds(1));
  net.set_port_impairments(net.port_of(server), link);
  net.run_until([&] { pump(); return client.tcp().info(id)->in_recovery; }, Duration::seconds(5));
  net.run_until([&] { pump(); return !client.tcp().info(id)->in_recovery; }, Duration::seconds(5));
  REQUIRE(client.counters()[Counter::TcpExtTCPTimeouts] == 0);  // one clean fast recovery
  REQUIRE(client.counters()[Counter::TcpExtTCPSackRecovery] == 1);
  const Instant epoch = net.now();
  // The window kept growing until the loss was seen: W_max is the window then, β·W_max the
  // threshold the reduction left (RFC 9438 §4.6).
  const double w_max = static_cast<double>(client.tcp().info(id)->ssthresh) / 0.7 / client.tcp().info(id)->mss;
  CHECK(w_max >= w_max_before);
  CHECK(cwnd() == doctest::Approx(0.7 * w_max).epsilon(0.05));

  CubicState model;
  model.w_max = w_max;
  model.k = std::cbrt(w_max * (1 - 0.7) / 0.4);
  // Sample the window at fractions of K and beyond, against W_cubic(t).
  for (const double fraction : {0.25, 0.5, 0.75, 1.0, 1.25, 1.5}) {
    const double t = fraction * model.k;
    net.run_until([&] { pump(); return false; }, epoch + Duration::nanoseconds(static_cast<int64_t>(t * 1e9)) - net.now());
    const double expected = cubic_window(model, t);
    MESSAGE(fmt::format("t = {:.2f} s ({:.2f} K): cwnd {:.0f} segments, W_cubic {:.0f}", t,
                        fraction, cwnd(), expected));
    CHECK(cwnd() == doctest::Approx(expected).epsilon(0.08));
  }
}

}  // namespace
}  // namespace tapstack::test
