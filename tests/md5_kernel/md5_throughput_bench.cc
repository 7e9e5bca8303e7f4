// Bulk TCP throughput with RFC 2385 signatures and without, beside the kernel doing the same.
// Prints figures; asserts nothing about speed.
//
//   the tool:   the tapstack program users build (`bazel build //tools:tapstack`, the default
//               optimised configuration; its --version is printed), as a child process:
//               `tapstack serve --mode discard` receiving from a kernel socket, and
//               `tapstack connect --input FIFO` sending to one, with `--md5` and without;
//   over TAP:   the stack (on an EventLoop, this thread, and its transmit thread) and a kernel
//               socket (a thread of its own), over IPv4 and (", IPv6") over IPv6,
//               kernel -> stack and stack -> kernel, with the
//               seed's key "12345" on both sides and with no key; first with the TAP as the
//               tapstack tool opens it (virtio-net headers, TSO for unsigned segments), then
//               as `--no-offloads` does (one segment per frame);
//   over veth:  two kernel sockets in two network namespaces joined by a veth pair with
//               offloads off (TSO, GSO, GRO: the baseline), with TCP_MD5SIG on both
//               sockets and without; then with the offloads on, for reference;
//   multi-queue: the TAP as `--tap-queues 1` and `--tap-queues 2` open it (offloads on), each
//               with two connections at once, one per queue (a connection never leaves its
//               queue, so one connection cannot use two), both directions, with and without
//               MD5; beside two connections at once over the veth pair with offloads off.
//
// The sender sends for the given time and then shuts down writing; the receiver counts from
// its first byte to the end of stream. Everything runs in private network namespaces, on
// 198.18.0.0/24 (TAP) and 198.18.1.0/24 (veth).
//
// bazel run //tests/md5_kernel:md5_throughput_bench -- [seconds each, 1..30]
//     [kernel-to-stack|stack-to-kernel|no-offloads|ipv6|veth|multi-queue|tool: those paths
//      alone; multi-queue also measures the veth baselines, for its ratios]
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tap/clock.h"
#include "tap/netlink.h"
#include "tap/transmit_queue.h"
#include "tests/md5_kernel/kernel_side.h"
#include "tests/md5_kernel/peers.h"
#include "tests/md5_kernel/rig.h"
#include "tests/md5_kernel/veth.h"
#include "tests/support/netns.h"
#include "tests/support/subprocess.h"

namespace tapstack::md5kernel {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 * 1024;
constexpr Ipv4Interface kVethA = {Ipv4Address::from_octets(198, 18, 1, 1), 24};
constexpr Ipv4Interface kVethB = {Ipv4Address::from_octets(198, 18, 1, 2), 24};

struct Rate {
  uint64_t bytes = 0;
  double seconds = 0;
  // CPU time, where measured (the multi-queue rows): the loop's thread, the transmit threads,
  // and the kernel peers' threads, each with the kernel's work inside their system calls.
  uint64_t loop_cpu_ns = 0;
  uint64_t transmit_cpu_ns = 0;
  uint64_t peer_cpu_ns = 0;
  double mib_per_second() const { return seconds > 0 ? bytes / seconds / (1 << 20) : 0; }
};

// The calling thread's CPU time (Linux: the task's sum_exec_runtime).
uint64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(t.tv_nsec);
}

// The CPU time of the transmit threads (named tapstack-tx<queue>), from
// /proc/self/task/*/schedstat: the kernel's receive path of every frame they write is in it.
uint64_t transmit_threads_cpu_ns() {
  uint64_t sum = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name;
    std::getline(std::ifstream(task.path() / "comm"), name);
    uint64_t ns = 0;
    std::ifstream(task.path() / "schedstat") >> ns;
    if (name.starts_with("tapstack-tx")) sum += ns;
  }
  return sum;
}

// Flows measured at once: their bytes together over the longest of their times.
Rate combined(const std::vector<Rate>& rates) {
  Rate sum;
  for (const Rate& rate : rates) {
    sum.bytes += rate.bytes;
    sum.seconds = std::max(sum.seconds, rate.seconds);
    sum.peer_cpu_ns += rate.peer_cpu_ns;
  }
  return sum;
}

// Sends a fixed buffer for `length`, then shuts down writing; returns the thread's CPU time
// and counts what it sent in *sent.
uint64_t kernel_source(int fd, Duration length, uint64_t* sent_bytes = nullptr) {
  const uint64_t cpu = thread_cpu_ns();
  const std::vector<uint8_t> chunk(kChunk, 0x5a);
  const auto end = Clock::now() + std::chrono::nanoseconds(length.ns());
  uint64_t sent = 0;
  while (Clock::now() < end) {
    pollfd entry{fd, POLLOUT, 0};
    if (poll(&entry, 1, 10) <= 0) continue;
    const ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) break;
    if (n > 0) sent += static_cast<uint64_t>(n);
  }
  shutdown(fd, SHUT_WR);
  if (sent_bytes) *sent_bytes = sent;
  return thread_cpu_ns() - cpu;
}

// Reads until the end of stream (or the deadline): bytes, and the time from first to last.
Rate kernel_sink(int fd, Clock::time_point deadline) {
  const uint64_t cpu = thread_cpu_ns();
  std::vector<uint8_t> buffer(kChunk);
  Rate rate;
  Clock::time_point first{};
  while (Clock::now() < deadline) {
    pollfd entry{fd, POLLIN, 0};
    if (poll(&entry, 1, 10) <= 0) continue;
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    if (rate.bytes == 0) first = Clock::now();
    rate.bytes += static_cast<uint64_t>(n);
  }
  rate.seconds = std::chrono::duration<double>(Clock::now() - first).count();
  rate.peer_cpu_ns = thread_cpu_ns() - cpu;
  return rate;
}

// A connection on a non-blocking listener, waited for until the deadline (or an empty Fd).
Fd accept_before(int listener, Clock::time_point deadline) {
  Fd connection;
  while (connection.get() < 0 && Clock::now() < deadline) {
    pollfd entry{listener, POLLIN, 0};
    poll(&entry, 1, 10);
    connection = try_accept(listener);
  }
  return connection;
}

KeyPlan tap_keys(const TapRig& rig, bool md5) {
  return md5 ? seed_keys(rig.family()) : KeyPlan{};
}

std::optional<Connection> connect_over_tap(TapRig& rig, Listener listener, bool md5,
                                           uint16_t port) {
  auto connection =
      open_connection(rig, listener, port, tap_keys(rig, md5), Duration::seconds(5));
  if (connection) {
    ok_or_throw(set_congestion_control(connection->kernel.get(), "cubic"), "cubic");
  } else {
    fmt::print("  no connection over TAP on port {}\n", port);
  }
  return connection;
}

Rate tap_kernel_to_stack(TapRig& rig, bool md5, Duration length, uint16_t port) {
  auto connection = connect_over_tap(rig, Listener::Stack, md5, port);
  if (!connection) return {};
  std::jthread sender([&] { kernel_source(connection->kernel.get(), length); });
  std::vector<uint8_t> buffer(kChunk);
  Rate rate;
  Instant first;
  bool end_of_stream = false;
  rig.set_hook([&](Instant now) {
    for (;;) {
      const auto n = rig.tcp().receive(connection->stack, buffer, now);
      if (!n || *n == 0) {
        end_of_stream = n.ok();
        break;
      }
      if (rate.bytes == 0) first = now;
      rate.bytes += *n;
    }
  });
  rig.pump_until([&] { return end_of_stream; }, length + Duration::seconds(10));
  rate.seconds = (monotonic_now() - first).seconds_f();
  rig.set_hook({});
  sender.join();
  close_connection(rig, *connection);
  return rate;
}

Rate tap_stack_to_kernel(TapRig& rig, bool md5, Duration length, uint16_t port) {
  auto connection = connect_over_tap(rig, Listener::Kernel, md5, port);
  if (!connection) return {};
  const auto deadline =
      Clock::now() + std::chrono::nanoseconds((length + Duration::seconds(10)).ns());
  auto receiver = std::async(std::launch::async,
                             [&] { return kernel_sink(connection->kernel.get(), deadline); });
  const std::vector<uint8_t> chunk(kChunk, 0xa5);
  const Instant end = monotonic_now() + length;
  bool shut = false;
  rig.set_hook([&](Instant now) {
    if (shut) return;
    if (now >= end) {
      shut = rig.tcp().shutdown(connection->stack, ShutdownHow::Write, now).ok();
      return;
    }
    while (rig.tcp().send(connection->stack, chunk, now)) {
    }
  });
  rig.pump_until(
      [&] { return receiver.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
      length + Duration::seconds(11));
  rig.set_hook({});
  const Rate rate = receiver.get();
  close_connection(rig, *connection);
  return rate;
}

// The TAP queue that the stack's frames of a connection take (flow_queue(), as the event loop
// picks it), from the two ends of the kernel's socket.
size_t stack_queue_of(const Connection& connection, size_t queues) {
  sockaddr_in kernel{};
  sockaddr_in stack{};
  socklen_t size = sizeof kernel;
  getsockname(connection.kernel.get(), reinterpret_cast<sockaddr*>(&kernel), &size);
  size = sizeof stack;
  getpeername(connection.kernel.get(), reinterpret_cast<sockaddr*>(&stack), &size);
  std::vector<uint8_t> frame(14 + 20 + 20);
  store_be16(&frame[12], 0x0800);
  frame[14] = 0x45;
  frame[14 + 9] = IPPROTO_TCP;
  std::memcpy(&frame[14 + 12], &stack.sin_addr, 4);
  std::memcpy(&frame[14 + 16], &kernel.sin_addr, 4);
  std::memcpy(&frame[34], &stack.sin_port, 2);
  std::memcpy(&frame[36], &kernel.sin_port, 2);
  return flow_queue(frame, queues);
}

// `flows` connections, the i-th on queue i % queues of the TAP, so that the figures show the
// queues and not the luck of the hash: one that lands elsewhere is closed and the next port
// tried. Fewer than `flows` when 64 ports did not do.
std::vector<Connection> connect_flows(TapRig& rig, Listener who, bool md5, uint16_t& port,
                                      size_t flows) {
  std::vector<Connection> chosen;
  for (int attempt = 0; chosen.size() < flows && attempt < 64; ++attempt) {
    auto connection = connect_over_tap(rig, who, md5, port++);
    if (!connection) continue;
    if (stack_queue_of(*connection, rig.queue_count()) == chosen.size() % rig.queue_count()) {
      chosen.push_back(std::move(*connection));
    } else {
      close_connection(rig, *connection);
    }
  }
  if (chosen.size() < flows)
    fmt::print("  only {} of {} connections formed\n", chosen.size(), flows);
  return chosen;
}

// kernel -> stack over `flows` connections at once, each from a kernel thread of its own.
Rate tap_kernel_to_stack_flows(TapRig& rig, bool md5, Duration length, uint16_t& port,
                               size_t flows) {
  std::vector<Connection> connections = connect_flows(rig, Listener::Stack, md5, port, flows);
  if (connections.size() < flows) return {};
  const uint64_t loop_cpu = thread_cpu_ns();
  const uint64_t transmit_cpu = transmit_threads_cpu_ns();
  std::atomic<uint64_t> peer_cpu{0};
  std::vector<std::jthread> senders;
  for (const Connection& c : connections) {
    senders.emplace_back(
        [&c, &peer_cpu, length] { peer_cpu += kernel_source(c.kernel.get(), length); });
  }
  std::vector<uint8_t> buffer(kChunk);
  Rate rate;
  Instant first;
  std::vector<bool> ended(flows, false);
  size_t ended_count = 0;
  rig.set_hook([&](Instant now) {
    for (size_t i = 0; i < flows; ++i) {
      while (!ended[i]) {
        const auto n = rig.tcp().receive(connections[i].stack, buffer, now);
        if (!n) break;
        if (*n == 0) {
          ended[i] = true;
          ++ended_count;
          break;
        }
        if (rate.bytes == 0) first = now;
        rate.bytes += *n;
      }
    }
  });
  rig.pump_until([&] { return ended_count == flows; }, length + Duration::seconds(10));
  rate.seconds = (monotonic_now() - first).seconds_f();
  rate.loop_cpu_ns = thread_cpu_ns() - loop_cpu;
  rate.transmit_cpu_ns = transmit_threads_cpu_ns() - transmit_cpu;
  rig.set_hook({});
  senders.clear();  // joins
  rate.peer_cpu_ns = peer_cpu.load();
  for (Connection& c : connections) close_connection(rig, c);
  return rate;
}

// stack -> kernel over `flows` connections at once, each read by a kernel thread of its own.
Rate tap_stack_to_kernel_flows(TapRig& rig, bool md5, Duration length, uint16_t& port,
                               size_t flows) {
  std::vector<Connection> connections = connect_flows(rig, Listener::Kernel, md5, port, flows);
  if (connections.size() < flows) return {};
  const auto deadline =
      Clock::now() + std::chrono::nanoseconds((length + Duration::seconds(10)).ns());
  const uint64_t loop_cpu = thread_cpu_ns();
  const uint64_t transmit_cpu = transmit_threads_cpu_ns();
  std::vector<std::future<Rate>> receivers;
  for (const Connection& c : connections) {
    receivers.push_back(std::async(
        std::launch::async, [&c, deadline] { return kernel_sink(c.kernel.get(), deadline); }));
  }
  const std::vector<uint8_t> chunk(kChunk, 0xa5);
  const Instant end = monotonic_now() + length;
  std::vector<bool> shut(flows, false);
  rig.set_hook([&](Instant now) {
    for (size_t i = 0; i < flows; ++i) {
      if (shut[i]) continue;
      if (now >= end) {
        shut[i] = rig.tcp().shutdown(connections[i].stack, ShutdownHow::Write, now).ok();
        continue;
      }
      while (rig.tcp().send(connections[i].stack, chunk, now)) {
      }
    }
  });
  rig.pump_until(
      [&] {
        return std::all_of(receivers.begin(), receivers.end(), [](const std::future<Rate>& r) {
          return r.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
        });
      },
      length + Duration::seconds(11));
  const uint64_t loop_cpu_used = thread_cpu_ns() - loop_cpu;
  const uint64_t transmit_cpu_used = transmit_threads_cpu_ns() - transmit_cpu;
  rig.set_hook({});
  std::vector<Rate> rates;
  for (auto& receiver : receivers) rates.push_back(receiver.get());
  for (Connection& c : connections) close_connection(rig, c);
  Rate rate = combined(rates);
  rate.loop_cpu_ns = loop_cpu_used;
  rate.transmit_cpu_ns = transmit_cpu_used;
  return rate;
}

// Kernel to kernel: a listener in the namespace `other` (a thread moved there), the sender here.
Rate veth_kernel_to_kernel(const Fd& other, bool md5, Duration length, uint16_t port) {
  const std::vector<PeerKey> to_b = {{kVethB.address, 32, kSeedKey}};
  const std::vector<PeerKey> to_a = {{kVethA.address, 32, kSeedKey}};
  std::promise<void> listening;
  auto receiver = std::async(std::launch::async, [&] {
    ok_or_throw(enter_network_namespace(other), "setns");
    const Fd listener = value_or_throw(
        kernel_listen(kVethB.address, port, md5 ? to_a : std::vector<PeerKey>{}), "listen");
    listening.set_value();
    const auto deadline =
        Clock::now() + std::chrono::nanoseconds((length + Duration::seconds(10)).ns());
    const Fd connection = accept_before(listener.get(), deadline);
    return connection.get() < 0 ? Rate{} : kernel_sink(connection.get(), deadline);
  });
  // A receiver that failed to listen has thrown: get() passes that on.
  if (listening.get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return receiver.get();
  }
  const Fd client = value_or_throw(kernel_start_connect(kVethA.address, kVethB.address, port,
                                                        md5 ? to_b : std::vector<PeerKey>{}),
                                   "connect");
  ok_or_throw(set_congestion_control(client.get(), "cubic"), "cubic");
  pollfd entry{client.get(), POLLOUT, 0};
  poll(&entry, 1, 5000);
  if (connect_result(client.get()) == 0) kernel_source(client.get(), length);
  return receiver.get();
}

// `flows` veth connections at once, on ports port .. port + flows - 1.
Rate veth_flows(const Fd& other, bool md5, Duration length, uint16_t port, size_t flows) {
  std::vector<std::future<Rate>> runs;
  for (size_t i = 0; i < flows; ++i) {
    const uint16_t p = static_cast<uint16_t>(port + i);
    runs.push_back(std::async(std::launch::async, [&other, md5, length, p] {
      return veth_kernel_to_kernel(other, md5, length, p);
    }));
  }
  std::vector<Rate> rates;
  for (auto& run : runs) rates.push_back(run.get());
  return combined(rates);
}

// TSO, GSO and GRO off (on = false), so that the kernel pays per segment on both ends, as MD5
// makes the kernel pay anyway (no GSO for signed segments); or back on.
void set_offloads(const char* device, bool on) {
  const char* state = on ? "on" : "off";
  const std::string command = fmt::format(
      "/usr/sbin/ethtool -K {} tso {} gso {} gro {} >/dev/null 2>&1", device, state, state, state);
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error(fmt::format("ethtool -K {}: failed", device));
  }
}

// md5a here (198.18.1.1/24), md5b in a namespace of its own (198.18.1.2/24), offloads off.
Fd make_veth_pair() {
  Fd other = value_or_throw(new_network_namespace(), "second namespace");
  ok_or_throw(add_veth_pair("md5a", "md5b", other), "veth pair");
  auto here = value_or_throw(Rtnetlink::open(), "rtnetlink");
  ok_or_throw(here.add_ipv4_address("md5a", kVethA), "md5a address");
  ok_or_throw(here.set_link_up("md5a"), "md5a up");
  set_offloads("md5a", false);
  std::thread([&] {
    ok_or_throw(enter_network_namespace(other), "setns");
    auto there = value_or_throw(Rtnetlink::open(), "rtnetlink");
    ok_or_throw(there.add_ipv4_address("md5b", kVethB), "md5b address");
    ok_or_throw(there.set_link_up("md5b"), "md5b up");
    set_offloads("md5b", false);  // a child forked from this thread starts in this namespace
  }).join();
  return other;
}

void veth_offloads_on(const Fd& other) {
  set_offloads("md5a", true);
  std::thread([&] {
    ok_or_throw(enter_network_namespace(other), "setns");
    set_offloads("md5b", true);
  }).join();
}

double ratio(const Rate& a, const Rate& b) {
  return b.mib_per_second() > 0 ? a.mib_per_second() / b.mib_per_second() : 0;
}

struct Row {
  std::string path;
  Rate plain;
  Rate md5;
  bool baseline = false;  // Linux <-> Linux over veth with offloads off: the measure
  bool tap = false;
  size_t flows = 1;   // connections at once; a row's ratios are against the baseline with as many
  size_t queues = 0;  // of the TAP, for the multi-queue rows; 0 elsewhere
  std::string direction;
};

void print(const std::vector<Row>& rows) {
  fmt::print("\n{:<52} {:>13} {:>11} {:>9}\n", "path", "no key MiB/s", "MD5 MiB/s", "MD5/none");
  for (const Row& row : rows) {
    fmt::print("{:<52} {:>13.1f} {:>11.1f} {:>9.3f}\n", row.path, row.plain.mib_per_second(),
               row.md5.mib_per_second(), ratio(row.md5, row.plain));
  }
  for (const Row& baseline : rows) {
    if (!baseline.baseline) continue;
    fmt::print("\nagainst {}, keyed alike [goals: MD5 >= 2, no key >= 0.8]:\n", baseline.path);
    for (const Row& row : rows) {
      if (&row == &baseline || row.baseline || row.flows != baseline.flows) continue;
      fmt::print("  {:<52} no key {:>7.3f}   MD5 {:>7.3f}\n", row.path,
                 ratio(row.plain, baseline.plain), ratio(row.md5, baseline.md5));
    }
  }
  bool header = false;
  for (const Row& row : rows) {
    if (row.queues < 2) continue;
    const auto one = std::find_if(rows.begin(), rows.end(), [&](const Row& r) {
      return r.queues == 1 && r.flows == row.flows && r.direction == row.direction;
    });
    if (one == rows.end()) continue;
    if (!header) fmt::print("\nmulti-queue against one queue, same flows, same run:\n");
    header = true;
    fmt::print("  {:<52} no key {:>7.3f}   MD5 {:>7.3f}\n", row.path, ratio(row.plain, one->plain),
               ratio(row.md5, one->md5));
  }
  fmt::print(
      "\nCPU per signed segment (MD5 bytes / 1440, the MSS with the option), µs: the loop's "
      "thread, the transmit threads (the kernel's receive path inside write()), the kernel "
      "peers' threads; the wall time per segment; cores busy:\n");
  for (const Row& row : rows) {
    if (row.queues == 0 || row.md5.bytes == 0) continue;
    const double segments = row.md5.bytes / 1440.0;
    const auto us = [&](uint64_t ns) { return ns / 1e3 / segments; };
    fmt::print(
        "  {:<52} loop {:>5.2f}  transmit {:>5.2f}  peers {:>5.2f}  wall {:>5.2f}  "
        "cores {:.2f}\n",
        row.path, us(row.md5.loop_cpu_ns), us(row.md5.transmit_cpu_ns), us(row.md5.peer_cpu_ns),
        row.md5.seconds * 1e6 / segments,
        (row.md5.loop_cpu_ns + row.md5.transmit_cpu_ns + row.md5.peer_cpu_ns) / 1e9 /
            row.md5.seconds);
  }
  fmt::print("\nraw:\n");
  for (const Row& row : rows) {
    fmt::print("  {:<52} no key {} bytes in {:.2f} s, MD5 {} bytes in {:.2f} s\n", row.path,
               row.plain.bytes, row.plain.seconds, row.md5.bytes, row.md5.seconds);
  }
}

// One path over the TAP, one connection: measure(md5, port) without a key and with, each on a
// port of its own.
template <typename Measure>
void add_tap_row(std::vector<Row>& rows, std::string path, Duration length, uint16_t& port,
                 const Measure& measure) {
  fmt::print("measuring {}, {:.0f} s without a key and {:.0f} s with MD5\n", path,
             length.seconds_f(), length.seconds_f());
  Row row{path, measure(false, port), measure(true, port + 1), false, true, 1, 0, ""};
  port += 2;
  rows.push_back(std::move(row));
}

// The TAP paths over one rig: kernel -> stack, stack -> kernel, without a key and with.
void measure_tap(TapRig& rig, std::string_view label, Duration length, std::string_view only,
                 uint16_t& port, std::vector<Row>& rows) {
  rig.set_logging(false);
  const auto both = [&](std::string path, const auto& measure) {
    add_tap_row(rows, std::move(path), length, port, measure);
  };
  if (only.empty() || only == "kernel-to-stack") {
    both(fmt::format("kernel -> stack over TAP{}", label),
         [&](bool md5, uint16_t p) { return tap_kernel_to_stack(rig, md5, length, p); });
  }
  if (only.empty() || only == "stack-to-kernel") {
    both(fmt::format("stack -> kernel over TAP{}", label),
         [&](bool md5, uint16_t p) { return tap_stack_to_kernel(rig, md5, length, p); });
  }
  const EventLoopStats loop = rig.loop().stats();
  fmt::print(
      "  stack: {}; TcpRetransSegs {}; TcpInSegs {}, TcpOutSegs {}; TAP: {} frames read, "
      "{} written, {} send drops\n",
      stack_md5_counters(rig.stack()).to_string(), rig.stack().counters()[Counter::TcpRetransSegs],
      rig.stack().counters()[Counter::TcpInSegs], rig.stack().counters()[Counter::TcpOutSegs],
      loop.frames_received, loop.frames_sent, loop.send_drops);
}

// The tapstack program itself, as `bazel build //tools:tapstack` (the README's command) builds
// it: this benchmark's data dependency is that target in the same, default configuration.
// `bazel run` starts benchmarks in their runfiles tree, where it is tools/tapstack.
constexpr const char* kTool = "tools/tapstack";
constexpr Ipv4Interface kToolStack = {Ipv4Address::from_octets(198, 18, 2, 2), 24};
constexpr Ipv4Interface kToolKernel = {Ipv4Address::from_octets(198, 18, 2, 1), 24};

std::vector<std::string> tool_command(std::string_view command, bool md5,
                                      std::vector<std::string> extra) {
  std::vector<std::string> argv = {
      kTool,    std::string(command),   "--tap",       "tstool0",
      "--addr", kToolStack.to_string(), "--host-addr", kToolKernel.to_string()};
  if (md5)
    argv.insert(argv.end(),
                {"--md5", fmt::format("{}={}", kToolKernel.address.to_string(), kSeedKey)});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::vector<PeerKey> tool_kernel_keys(bool md5) {
  if (!md5) return {};
  return {{kToolStack.address, 32, kSeedKey}};
}

// The kernel sends to `tapstack serve --mode discard --once` for `length`: the bytes it sent,
// over the time from the start to the end of stream coming back (the tool closes once it has
// read everything and our FIN).
Rate tool_kernel_to_stack(bool md5, Duration length, uint16_t port) {
  auto tool = testing::ChildProcess::start(
      tool_command("serve", md5, {"--port", std::to_string(port), "--mode", "discard", "--once"}));
  if (!tool || !tool->wait_for_stderr("listening", std::chrono::milliseconds(5000))) {
    fmt::print("  tapstack serve did not start\n");
    return {};
  }
  const Fd client = value_or_throw(
      kernel_start_connect(kToolKernel.address, kToolStack.address, port, tool_kernel_keys(md5)),
      "connect");
  ok_or_throw(set_congestion_control(client.get(), "cubic"), "cubic");
  pollfd entry{client.get(), POLLOUT, 0};
  poll(&entry, 1, 5000);
  if (connect_result(client.get()) != 0) return {};
  const auto start = Clock::now();
  Rate rate;
  kernel_source(client.get(), length, &rate.bytes);
  kernel_sink(client.get(), Clock::now() + std::chrono::seconds(10));
  rate.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const testing::ProcessResult result = tool->wait(std::chrono::milliseconds(10'000));
  if (result.exit_code != 0) fmt::print("  tapstack serve: {}\n{}", result.describe(), result.err);
  return rate;
}

// `tapstack connect --input FIFO` sends what this process writes into a named pipe for
// `length`, to a kernel listener; measured where the kernel receives it.
Rate tool_stack_to_kernel(bool md5, Duration length, uint16_t port) {
  // Any address: the kernel side's comes with the tool (--host-addr), after this listens.
  const Fd listener = value_or_throw(
      kernel_listen(Ipv4Address::from_octets(0, 0, 0, 0), port, tool_kernel_keys(md5)), "listen");
  const std::string fifo = fmt::format("/tmp/tapstack-bench-{}.fifo", getpid());
  unlink(fifo.c_str());
  if (mkfifo(fifo.c_str(), 0600) != 0) throw std::runtime_error("mkfifo: failed");
  // The writer opens the pipe first: the tool's open of it waits for one.
  std::jthread writer([&] {
    const Fd pipe(open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
    const std::vector<uint8_t> chunk(kChunk, 0xa5);
    const auto end = Clock::now() + std::chrono::nanoseconds(length.ns());
    while (pipe.get() >= 0 && Clock::now() < end) {
      if (write(pipe.get(), chunk.data(), chunk.size()) < 0) break;
    }
  });
  auto tool = testing::ChildProcess::start(
      tool_command("connect", md5,
                   {"--to", fmt::format("{}:{}", kToolKernel.address.to_string(), port), "--input",
                    fifo, "--output", "/dev/null"}));
  if (!tool) {
    fmt::print("  tapstack connect did not start: {}\n", tool.error().message);
    return {};
  }
  const auto deadline =
      Clock::now() + std::chrono::nanoseconds((length + Duration::seconds(10)).ns());
  Fd connection = accept_before(listener.get(), deadline);
  Rate rate;
  if (connection.get() >= 0) {
    ok_or_throw(set_congestion_control(connection.get(), "cubic"), "cubic");
    rate = kernel_sink(connection.get(), deadline);
    connection.reset();
  }
  const testing::ProcessResult result = tool->wait(std::chrono::milliseconds(10'000));
  unlink(fifo.c_str());
  if (result.exit_code != 0) {
    fmt::print("  tapstack connect: {}\n{}", result.describe(), result.err);
  }
  return rate;
}

void measure_tool(Duration length, uint16_t& port, std::vector<Row>& rows) {
  const testing::ProcessResult version =
      testing::run_process({kTool, "--version"}, std::chrono::milliseconds(5000));
  fmt::print("the tool: {}", version.out);
  const auto both = [&](std::string path, const auto& measure) {
    add_tap_row(rows, std::move(path), length, port, measure);
  };
  both("kernel -> tapstack serve (the tool)",
       [&](bool md5, uint16_t p) { return tool_kernel_to_stack(md5, length, p); });
  both("tapstack connect (the tool) -> kernel",
       [&](bool md5, uint16_t p) { return tool_stack_to_kernel(md5, length, p); });
}

// Two connections at once over a TAP of `queues` queues, one connection per queue: both
// directions, without a key and with. A rig of its own (a fresh namespace): call it while no
// other rig is alive.
void measure_multi_queue(size_t queues, Duration length, uint16_t& port, std::vector<Row>& rows) {
  constexpr size_t kFlows = 2;
  TapRig rig(TapOffloads::TcpOffloads, queues);
  rig.set_logging(false);
  const std::string label =
      fmt::format(", {} queue{}, {} flows", queues, queues > 1 ? "s" : "", kFlows);
  const auto both = [&](std::string direction, const auto& measure) {
    const std::string path = fmt::format("{} over TAP{}", direction, label);
    fmt::print("measuring {}, {:.0f} s without a key and {:.0f} s with MD5\n", path,
               length.seconds_f(), length.seconds_f());
    Row row{path, measure(false), measure(true), false, true, kFlows, queues, direction};
    rows.push_back(std::move(row));
  };
  both("kernel -> stack",
       [&](bool md5) { return tap_kernel_to_stack_flows(rig, md5, length, port, kFlows); });
  both("stack -> kernel",
       [&](bool md5) { return tap_stack_to_kernel_flows(rig, md5, length, port, kFlows); });
  const EventLoopStats loop = rig.loop().stats();
  fmt::print("  stack: TcpRetransSegs {}; TAP: {} frames read, {} written, {} send drops\n",
             rig.stack().counters()[Counter::TcpRetransSegs], loop.frames_received,
             loop.frames_sent, loop.send_drops);
}

// only: "" for every path, else one of kPaths (for a profile of one path).
int run(Duration length, std::string_view only) {
  std::vector<Row> rows;
  uint16_t port = 6666;
  const bool multi_queue = only.empty() || only == "multi-queue";
  if (only.empty() || only == "tool") {
    // A private namespace of its own, entered while this is the only thread.
    testing::enter_private_netns_or_skip();
    measure_tool(length, port, rows);
  }
  if (only != "tool") {
    // Enters a private namespace first, while this is the only thread. The TAP as the
    // tapstack tool opens it: virtio-net headers, TSO both ways for unsigned connections.
    TapRig rig(TapOffloads::TcpOffloads);
    if (only != "veth" && only != "no-offloads" && only != "multi-queue" && only != "ipv6") {
      measure_tap(rig, "", length, only, port, rows);
    }
  }
  if (only.empty() || only == "ipv6") {
    // The same TAP paths over IPv6 (a dual-stack rig, connections to 2001:db8::1 and ::2): MSS
    // 1440 unsigned, 1420 signed; TSO6 for unsigned segments.
    TapRig rig(TapOffloads::TcpOffloads, 1, IpFamily::Ipv6);
    measure_tap(rig, ", IPv6", length, "", port, rows);
  }
  if (only.empty() || only == "no-offloads") {
    // A namespace of its own again (the first rig's threads are gone): tapstack --no-offloads,
    // one system call per segment.
    TapRig rig(TapOffloads::None);
    measure_tap(rig, ", --no-offloads", length, "", port, rows);
  }
  if (multi_queue) {
    uint16_t multi_port = 20000;
    measure_multi_queue(1, length, multi_port, rows);
    measure_multi_queue(2, length, multi_port, rows);
  }
  if (only.empty() || only == "veth" || multi_queue) {
    // In the namespace of the last rig: the veth pair's ends there and in one more.
    const Fd other = make_veth_pair();
    const auto both = [&](std::string path, bool baseline, size_t flows) {
      fmt::print("measuring {}, {:.0f} s without a key and {:.0f} s with MD5\n", path,
                 length.seconds_f(), length.seconds_f());
      Row row{path,
              veth_flows(other, false, length, port, flows),
              veth_flows(other, true, length, static_cast<uint16_t>(port + flows), flows),
              baseline,
              false,
              flows,
              0,
              ""};
      port = static_cast<uint16_t>(port + 2 * flows);
      rows.push_back(std::move(row));
    };
    both("kernel -> kernel over veth, offloads off", true, 1);
    if (multi_queue) both("kernel -> kernel over veth, offloads off, 2 flows", true, 2);
    if (only != "multi-queue") {
      veth_offloads_on(other);
      both("kernel -> kernel over veth, offloads on", false, 1);
    }
  }
  print(rows);
  return 0;
}

}  // namespace
}  // namespace tapstack::md5kernel

int main(int argc, char** argv) {
  int seconds = 3;
  const std::string_view only = argc > 2 ? argv[2] : "";
  const bool known_path = only.empty() || only == "kernel-to-stack" || only == "stack-to-kernel" ||
                          only == "no-offloads" || only == "veth" || only == "multi-queue" ||
                          only == "tool" || only == "ipv6";
  if (argc > 1) {
    const std::string_view text = argv[1];
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error != std::errc{} || end != text.data() + text.size() || seconds < 1 || seconds > 30 ||
        !known_path || argc > 3) {
      fmt::print(stderr,
                 "usage: md5_throughput_bench [seconds per measurement, 1..30] "
                 "[kernel-to-stack|stack-to-kernel|no-offloads|ipv6|veth|multi-queue|tool]\n");
      return 2;
    }
  }
  return tapstack::md5kernel::run(tapstack::Duration::seconds(seconds), only);
}
