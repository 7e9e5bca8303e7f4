// Bulk TCP throughput with RFC 2385 signatures and without, beside the kernel doing the same.
// Prints figures; asserts nothing about speed.
//
//   over TAP:   the stack (on an EventLoop, this thread) and a kernel socket (a thread of its
//               own), kernel -> stack and stack -> kernel, with the seed's key "12345" on both
//               sides and with no key;
//   over veth:  two kernel sockets in two network namespaces joined by a veth pair with
//               offloads off (TSO, GSO, GRO), with TCP_MD5SIG on both sockets and without.
//
// The sender sends for the given time and then shuts down writing; the receiver counts from
// its first byte to the end of stream. Everything runs in private network namespaces, on
// 198.18.0.0/24 (TAP) and 198.18.1.0/24 (veth).
//
// bazel run --config=bench //tests/md5_kernel:md5_throughput_bench -- [seconds each, 1..30]
//     [kernel-to-stack|stack-to-kernel|veth: that path alone, without the table]
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <charconv>
#include <chrono>
#include <future>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tap/clock.h"
#include "tap/netlink.h"
#include "tests/md5_kernel/kernel_side.h"
#include "tests/md5_kernel/peers.h"
#include "tests/md5_kernel/rig.h"
#include "tests/md5_kernel/veth.h"

namespace tapstack::md5kernel {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 * 1024;
constexpr Ipv4Interface kVethA = {Ipv4Address::from_octets(198, 18, 1, 1), 24};
constexpr Ipv4Interface kVethB = {Ipv4Address::from_octets(198, 18, 1, 2), 24};

struct Rate {
  uint64_t bytes = 0;
  double seconds = 0;
  double mib_per_second() const { return seconds > 0 ? bytes / seconds / (1 << 20) : 0; }
};

// Sends a fixed buffer for `length`, then shuts down writing.
void kernel_source(int fd, Duration length) {
  const std::vector<uint8_t> chunk(kChunk, 0x5a);
  const auto end = Clock::now() + std::chrono::nanoseconds(length.ns());
  while (Clock::now() < end) {
    pollfd entry{fd, POLLOUT, 0};
    if (poll(&entry, 1, 10) <= 0) continue;
    if (send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
      break;
    }
  }
  shutdown(fd, SHUT_WR);
}

// Reads until the end of stream (or the deadline): bytes, and the time from first to last.
Rate kernel_sink(int fd, Clock::time_point deadline) {
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
  return rate;
}

KeyPlan tap_keys(bool md5) {
  return md5 ? seed_keys() : KeyPlan{};
}

std::optional<Connection> connect_over_tap(TapRig& rig, Listener listener, bool md5,
                                           uint16_t port) {
  auto connection = open_connection(rig, listener, port, tap_keys(md5), Duration::seconds(5));
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
    Fd connection;
    while (connection.get() < 0 && Clock::now() < deadline) {
      pollfd entry{listener.get(), POLLIN, 0};
      poll(&entry, 1, 10);
      connection = try_accept(listener.get());
    }
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

// TSO, GSO and GRO off, so that the kernel pays per segment on both ends, as a TAP makes the
// stack pay and as MD5 makes the kernel pay anyway (no GSO for signed segments).
void offloads_off(const char* device) {
  const std::string command = fmt::format(
      "/usr/sbin/ethtool -K {} tso off gso off gro off >/dev/null 2>&1", device);
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error(fmt::format("ethtool -K {}: failed", device));
  }
}

// md5a here (198.18.1.1/24), md5b in a namespace of its own (198.18.1.2/24).
Fd make_veth_pair() {
  Fd other = value_or_throw(new_network_namespace(), "second namespace");
  ok_or_throw(add_veth_pair("md5a", "md5b", other), "veth pair");
  auto here = value_or_throw(Rtnetlink::open(), "rtnetlink");
  ok_or_throw(here.add_ipv4_address("md5a", kVethA), "md5a address");
  ok_or_throw(here.set_link_up("md5a"), "md5a up");
  offloads_off("md5a");
  std::thread([&] {
    ok_or_throw(enter_network_namespace(other), "setns");
    auto there = value_or_throw(Rtnetlink::open(), "rtnetlink");
    ok_or_throw(there.add_ipv4_address("md5b", kVethB), "md5b address");
    ok_or_throw(there.set_link_up("md5b"), "md5b up");
    offloads_off("md5b");  // a child forked from this thread starts in this namespace
  }).join();
  return other;
}

double ratio(const Rate& a, const Rate& b) {
  return b.mib_per_second() > 0 ? a.mib_per_second() / b.mib_per_second() : 0;
}

struct Row {
  std::string_view path;
  Rate plain;
  Rate md5;
};

// with_veth: the last row is kernel <-> kernel over veth, the baseline of the ratios.
void print(const std::vector<Row>& rows, bool with_veth) {
  fmt::print("\n{:<28} {:>14} {:>14} {:>10}\n", "path", "no key MiB/s", "MD5 MiB/s", "MD5/none");
  for (const Row& row : rows) {
    fmt::print("{:<28} {:>14.1f} {:>14.1f} {:>10.3f}\n", row.path, row.plain.mib_per_second(),
               row.md5.mib_per_second(), ratio(row.md5, row.plain));
  }
  if (with_veth) {
    const Row& veth = rows.back();
    fmt::print("\nover TAP against kernel <-> kernel over veth, keyed alike:\n");
    for (size_t i = 0; i + 1 < rows.size(); ++i) {
      fmt::print("  {:<26} no key {:>7.3f}   MD5 {:>7.3f}\n", rows[i].path,
                 ratio(rows[i].plain, veth.plain), ratio(rows[i].md5, veth.md5));
    }
  }
  fmt::print("\nraw:\n");
  for (const Row& row : rows) {
    fmt::print("  {:<26} no key {} bytes in {:.2f} s, MD5 {} bytes in {:.2f} s\n", row.path,
               row.plain.bytes, row.plain.seconds, row.md5.bytes, row.md5.seconds);
  }
}

// only: "" for every path, else one of "kernel-to-stack", "stack-to-kernel", "veth" (for a
// profile of one path).
int run(Duration length, std::string_view only) {
  // Enters a private namespace first, while this is the only thread. The TAP as the tapstack
  // tool opens it: virtio-net headers, TSO both ways (for unsigned connections).
  TapRig rig(TapOffloads::TcpOffloads);
  rig.set_logging(false);
  uint16_t port = 6666;
  // One path measured without a key, then with the seed's key on both ends.
  const auto both_ways = [&](std::string_view path, const auto& measure) {
    fmt::print("measuring {}, {:.0f} s without a key and {:.0f} s with MD5\n", path,
               length.seconds_f(), length.seconds_f());
    const Rate plain = measure(false, port++);
    const Rate md5 = measure(true, port++);
    return Row{path, plain, md5};
  };
  const auto wanted = [&](std::string_view name) { return only.empty() || only == name; };
  std::vector<Row> rows;
  if (wanted("kernel-to-stack")) {
    rows.push_back(both_ways("kernel -> stack over TAP", [&](bool md5, uint16_t p) {
      return tap_kernel_to_stack(rig, md5, length, p);
    }));
  }
  if (wanted("stack-to-kernel")) {
    rows.push_back(both_ways("stack -> kernel over TAP", [&](bool md5, uint16_t p) {
      return tap_stack_to_kernel(rig, md5, length, p);
    }));
  }
  if (wanted("veth")) {
    const Fd other = make_veth_pair();
    rows.push_back(both_ways("kernel -> kernel over veth", [&](bool md5, uint16_t p) {
      return veth_kernel_to_kernel(other, md5, length, p);
    }));
  }
  print(rows, wanted("veth"));
  const EventLoopStats loop = rig.loop().stats();
  fmt::print("\nstack: {}; TcpRetransSegs {}; TcpInSegs {}, TcpOutSegs {}\n",
             stack_md5_counters(rig.stack()).to_string(),
             rig.stack().counters()[Counter::TcpRetransSegs],
             rig.stack().counters()[Counter::TcpInSegs],
             rig.stack().counters()[Counter::TcpOutSegs]);
  fmt::print("TAP: {} frames read, {} written (TSO frames carry up to 64 KiB), {} send drops\n",
             loop.frames_received, loop.frames_sent, loop.send_drops);
  return 0;
}

}  // namespace
}  // namespace tapstack::md5kernel

int main(int argc, char** argv) {
  int seconds = 3;
  const std::string_view only = argc > 2 ? argv[2] : "";
  const bool known_path = only.empty() || only == "kernel-to-stack" ||
                          only == "stack-to-kernel" || only == "veth";
  if (argc > 1) {
    const std::string_view text = argv[1];
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error != std::errc{} || end != text.data() + text.size() || seconds < 1 ||
        seconds > 30 || !known_path || argc > 3) {
      fmt::print(stderr,
                 "usage: md5_throughput_bench [seconds per measurement, 1..30] "
                 "[kernel-to-stack|stack-to-kernel|veth]\n");
      return 2;
    }
  }
  return tapstack::md5kernel::run(tapstack::Duration::seconds(seconds), only);
}
