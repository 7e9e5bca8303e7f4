// TCP bulk throughput, three ways. Prints figures; asserts nothing about speed.
//
//   over TAP:       in a private network namespace, the stack in this process on an
//                   EventLoop, the kernel on the other side of tap0; stack → kernel and
//                   kernel → stack. The kernel side has GSO off, like the veth below.
//   kernel→kernel:  the same amount between two namespaces over a veth pair with TSO, GSO
//                   and GRO off on both ends: the yardstick the TAP figures are divided by.
//   in memory:      two stacks on the simulated network (tests/sim), moving the payload in
//                   virtual time: wall-clock payload rate, the cost of the core alone.
//
// bazel run //tests/bench:tcp_throughput_bench -- [MiB per run, 1..4096; 256]
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/netlink.h"
#include "tap/tap_device.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"
#include "tests/support/kernel_socket.h"
#include "tests/support/netns.h"
#include "tests/support/peer_netns.h"
#include "tests/support/subprocess.h"

namespace tapstack {
namespace {

using std::chrono::milliseconds;
using testing::KernelSocket;
using Clock = std::chrono::steady_clock;

constexpr Ipv4Address kKernelAddress = Ipv4Address::from_octets(198, 18, 0, 1);
constexpr Ipv4Interface kStackAddress = {Ipv4Address::from_octets(198, 18, 0, 2), 24};
constexpr size_t kChunk = 64 * 1024;
// No run may take longer: a stalled transfer ends the benchmark instead of hanging it.
constexpr milliseconds kRunLimit{300'000};

double seconds_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

struct Rate {
  uint64_t bytes = 0;
  double seconds = 0;
  bool complete = false;
  double mb_per_second() const {
    return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0;
  }
};

void print_rate(std::string_view what, const Rate& rate) {
  fmt::print("{:<44} {:>7.1f} MiB in {:6.2f} s = {:7.1f} MB/s ({:.2f} Gbit/s){}\n", what,
             static_cast<double>(rate.bytes) / (1 << 20), rate.seconds, rate.mb_per_second(),
             rate.mb_per_second() * 8 / 1000, rate.complete ? "" : "  INCOMPLETE");
}

void run_or_die(const std::vector<std::string>& argv) {
  const auto result = testing::run_process(argv, milliseconds(10'000));
  if (result.exit_code != 0) {
    fmt::print(stderr, "{}: {} {}\n", fmt::join(argv, " "), result.describe(), result.err);
    std::exit(1);
  }
}

// Blocking mode for the kernel's bulk loops: one thread each, nothing else to do.
void make_blocking(const KernelSocket& socket) {
  fcntl(socket.fd(), F_SETFL, fcntl(socket.fd(), F_GETFL) & ~O_NONBLOCK);
  const timeval timeout{10, 0};  // a stalled peer ends the loop, not the benchmark
  setsockopt(socket.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(socket.fd(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  socket.set_congestion_control("cubic");
}

uint64_t kernel_send_all(const KernelSocket& socket, uint64_t total) {
  const std::vector<uint8_t> chunk(kChunk, 0x5a);
  uint64_t sent = 0;
  while (sent < total) {
    const ssize_t n =
        send(socket.fd(), chunk.data(), std::min<uint64_t>(kChunk, total - sent), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<uint64_t>(n);
  }
  shutdown(socket.fd(), SHUT_WR);
  return sent;
}

// Reads to the end of the stream; the time of the last byte.
uint64_t kernel_receive_all(const KernelSocket& socket, Clock::time_point& last_byte) {
  std::vector<uint8_t> buffer(kChunk);
  uint64_t received = 0;
  for (ssize_t n; (n = recv(socket.fd(), buffer.data(), buffer.size(), 0)) > 0;) {
    received += static_cast<uint64_t>(n);
  }
  last_byte = Clock::now();
  return received;
}

// The stack on tap0 in this process, the kernel on the other side.
class TapBench {
 public:
  TapBench() {
    auto tap = TapDevice::open("tap0");
    if (!tap) fail(tap.error().message);
    tap_.emplace(std::move(*tap));
    auto netlink = Rtnetlink::open();
    if (!netlink) fail(netlink.error().message);
    if (auto s = netlink->add_ipv4_address("tap0", {kKernelAddress, 24}); !s)
      fail(s.error().message);
    if (auto s = netlink->set_link_up("tap0"); !s) fail(s.error().message);
    run_or_die({"/usr/sbin/ethtool", "-K", "tap0", "tso", "off", "gso", "off"});
    StackConfig config;
    config.mac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
    config.ipv4 = kStackAddress;
    config.seed = 1;
    stack_ = std::make_unique<Stack>(config);
    auto loop = EventLoop::create(*tap_, *stack_);
    if (!loop) fail(loop.error().message);
    loop_ = std::move(*loop);
    stack_->start(monotonic_now());
  }

  Rate stack_to_kernel(uint64_t total) {
    auto listener = KernelSocket::listen(5201);
    if (!listener) fail(listener.error().message);
    std::atomic<bool> done{false};
    Clock::time_point last_byte;
    uint64_t received = 0;
    std::thread kernel([&] {
      auto accepted = listener->accept(testing::deadline_in(kRunLimit));
      if (accepted) {
        make_blocking(*accepted);
        received = kernel_receive_all(*accepted, last_byte);
      }
      done = true;
      loop_->wake();
    });
    Tcp& tcp = stack_->tcp();
    const SocketId socket = *tcp.connect(kKernelAddress, 5201, monotonic_now());
    const std::vector<uint8_t> chunk(kChunk, 0xa5);
    uint64_t sent = 0;
    std::optional<Clock::time_point> start;
    pump_until([&](Instant now) {
      if (!start && (tcp.events(socket) & socket_event::kConnected)) start = Clock::now();
      while (start && sent < total) {
        auto n =
            tcp.send(socket, ByteView(chunk).first(std::min<uint64_t>(kChunk, total - sent)), now);
        if (!n) break;
        sent += *n;
        if (sent == total) tcp.shutdown(socket, ShutdownHow::Write, now);
      }
      return done.load();
    });
    kernel.join();
    tcp.close(socket, monotonic_now());
    return {received, start ? seconds_between(*start, last_byte) : 0, received == total};
  }

  Rate kernel_to_stack(uint64_t total) {
    Tcp& tcp = stack_->tcp();
    const SocketId listener = *tcp.listen(5202, 4);
    std::thread kernel([&] {
      auto socket =
          KernelSocket::connect(kStackAddress.address, 5202, testing::deadline_in(kRunLimit));
      if (!socket) return;
      make_blocking(*socket);
      kernel_send_all(*socket, total);
      char byte;
      recv(socket->fd(), &byte, 1, 0);  // until our FIN: the socket outlives the transfer
    });
    std::optional<SocketId> socket;
    Clock::time_point start;
    uint64_t received = 0;
    bool end = false;
    std::vector<uint8_t> buffer(kChunk);
    pump_until([&](Instant now) {
      if (!socket) {
        if (auto accepted = tcp.accept(listener)) {
          socket = *accepted;
          start = Clock::now();
        }
      }
      while (socket && !end) {
        auto n = tcp.receive(*socket, buffer, now);
        if (!n || *n == 0) {
          end = (n && *n == 0) || (!n && n.error().code != EAGAIN);
          break;
        }
        received += *n;
      }
      return end;
    });
    const Clock::time_point last_byte = Clock::now();
    if (socket) tcp.close(*socket, monotonic_now());
    pump_until([&](Instant) { return false; }, milliseconds(100));  // our FIN goes out
    kernel.join();
    tcp.close(listener, monotonic_now());
    return {received, seconds_between(start, last_byte), received == total};
  }

 private:
  [[noreturn]] static void fail(std::string_view message) {
    fmt::print(stderr, "over TAP: {}\n", message);
    std::exit(1);
  }

  // Runs the loop with step() before each turn until it returns true or the limit passes.
  template <typename Step>
  void pump_until(Step step, milliseconds limit = kRunLimit) {
    const auto deadline = Clock::now() + limit;
    while (!step(monotonic_now()) && Clock::now() < deadline) {
      if (auto status = loop_->run_once(Duration::milliseconds(1)); !status)
        fail(status.error().message);
    }
  }

  std::optional<TapDevice> tap_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<EventLoop> loop_;
};

// Kernel to kernel: 198.18.1.1 here, 198.18.1.2 in a second namespace, over a veth pair.
Rate kernel_to_kernel(uint64_t total) {
  auto peer = testing::PeerNamespace::create();
  if (!peer) {
    fmt::print(stderr, "veth: {}\n", peer.error().message);
    std::exit(1);
  }
  const std::string ip = "/usr/sbin/ip";
  const std::vector<std::string> offloads_off = {"tso", "off", "gso", "off", "gro", "off"};
  auto ethtool = [&](std::string device) {
    std::vector<std::string> argv = {"/usr/sbin/ethtool", "-K", device};
    argv.insert(argv.end(), offloads_off.begin(), offloads_off.end());
    return argv;
  };
  run_or_die(
      {ip, "link", "add", "vethA", "type", "veth", "peer", "name", "vethB", "netns", peer->path()});
  run_or_die({ip, "addr", "add", "198.18.1.1/24", "dev", "vethA"});
  run_or_die(ethtool("vethA"));
  run_or_die({ip, "link", "set", "vethA", "up"});
  auto listener = peer->within([&] {
    run_or_die({ip, "link", "set", "lo", "up"});
    run_or_die({ip, "addr", "add", "198.18.1.2/24", "dev", "vethB"});
    run_or_die(ethtool("vethB"));
    run_or_die({ip, "link", "set", "vethB", "up"});
    return KernelSocket::listen(5203);
  });
  if (!listener) return {};
  Clock::time_point last_byte;
  uint64_t received = 0;
  std::thread receiver([&] {
    auto accepted = listener->accept(testing::deadline_in(kRunLimit));
    if (!accepted) return;
    make_blocking(*accepted);
    received = kernel_receive_all(*accepted, last_byte);
  });
  auto socket = KernelSocket::connect(Ipv4Address::from_octets(198, 18, 1, 2), 5203,
                                      testing::deadline_in(milliseconds(10'000)));
  Clock::time_point start = Clock::now();
  if (socket) {
    make_blocking(*socket);
    start = Clock::now();
    kernel_send_all(*socket, total);
  }
  receiver.join();
  return {received, seconds_between(start, last_byte), received == total};
}

// One side of an in-memory transfer: sends `total` bytes of a constant chunk, reads and
// drops what arrives. No hashing or data generation: the figure is the stacks' cost.
class BulkApp {
 public:
  BulkApp(Tcp& tcp, uint64_t total) : tcp_(tcp), total_(total), chunk_(kChunk, 0x3c) {}
  void attach(SocketId socket) { socket_ = socket; }
  bool attached() const { return socket_ != 0; }
  bool done() const { return shut_ && end_of_stream_; }
  uint64_t received() const { return received_; }

  void pump(Instant now) {
    if (socket_ == 0) return;
    while (sent_ < total_) {
      auto n = tcp_.send(socket_,
                         ByteView(chunk_).first(std::min<uint64_t>(kChunk, total_ - sent_)), now);
      if (!n) break;
      sent_ += *n;
    }
    if (sent_ == total_ && !shut_)
      shut_ = static_cast<bool>(tcp_.shutdown(socket_, ShutdownHow::Write, now));
    while (!end_of_stream_) {
      auto n = tcp_.receive(socket_, chunk_, now);
      if (!n) break;
      end_of_stream_ = *n == 0;
      received_ += *n;
    }
  }

 private:
  Tcp& tcp_;
  uint64_t total_;
  std::vector<uint8_t> chunk_;
  SocketId socket_ = 0;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  bool shut_ = false;
  bool end_of_stream_ = false;
};

// Two simulated stacks on a perfect link: client → server, or both ways at once.
Rate in_memory(uint64_t total, bool both_ways) {
  sim::Network net(1);
  const auto segment = net.add_segment();
  Stack& server = net.add_stack(segment, sim::host_config(1));
  Stack& client = net.add_stack(segment, sim::host_config(2));
  const SocketId listener = *server.tcp().listen(5001, 4);
  BulkApp server_app(server.tcp(), both_ways ? total : 0);
  BulkApp client_app(client.tcp(), total);
  client_app.attach(*client.tcp().connect(sim::host_ip(1), 5001, net.now()));
  const auto start = Clock::now();
  const auto deadline = start + kRunLimit;
  while (!(server_app.done() && client_app.done()) && Clock::now() < deadline) {
    if (!server_app.attached()) {
      if (auto accepted = server.tcp().accept(listener)) server_app.attach(*accepted);
    }
    server_app.pump(net.now());
    client_app.pump(net.now());
    if (!net.step()) break;
  }
  const uint64_t moved = server_app.received() + client_app.received();
  const uint64_t expected = both_ways ? 2 * total : total;
  return {moved, seconds_between(start, Clock::now()), moved == expected};
}

uint64_t parse_mib(int argc, char** argv) {
  uint64_t mib = 256;
  if (argc > 1) {
    const std::string_view text = argv[1];
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), mib);
    if (error != std::errc{} || end != text.data() + text.size() || mib < 1 || mib > 4096) {
      fmt::print(stderr, "usage: tcp_throughput_bench [MiB per run, 1..4096]\n");
      std::exit(2);
    }
  }
  return mib << 20;
}

}  // namespace
}  // namespace tapstack

int main(int argc, char** argv) {
  using namespace tapstack;
  const uint64_t total = parse_mib(argc, argv);
  fmt::print("TCP bulk throughput, {} MiB per run (MB = 10^6 bytes of payload)\n\n", total >> 20);

  print_rate("in memory, simulated link, one way", in_memory(total, false));
  print_rate("in memory, simulated link, both ways at once", in_memory(total, true));

  testing::enter_private_netns_or_skip();
  const Rate veth = kernel_to_kernel(total);
  print_rate("kernel → kernel, veth, offloads off", veth);
  TapBench tap;
  const Rate out = tap.stack_to_kernel(total);
  print_rate("stack → kernel over TAP", out);
  const Rate in = tap.kernel_to_stack(total);
  print_rate("kernel → stack over TAP", in);
  if (veth.mb_per_second() > 0) {
    fmt::print("\nover TAP / kernel over veth: stack → kernel {:.2f}, kernel → stack {:.2f}\n",
               out.mb_per_second() / veth.mb_per_second(),
               in.mb_per_second() / veth.mb_per_second());
  }
  return 0;
}
