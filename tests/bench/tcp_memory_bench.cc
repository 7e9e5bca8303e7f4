// Memory per idle TCP connection. Two simulated stacks (tests/sim, virtual time) open N
// connections between them and leave them idle; the figures are the stack's own count of
// socket buffer memory (Tcp::buffer_memory()), the growth of the heap in use (glibc's
// mallinfo2(): what the control blocks, the hash tables and the timer set hold, exactly) and
// the growth of the process's resident set (/proc/self/statm: what the system gives the
// process, which is the heap plus whatever the allocator keeps without giving it back).
// Each connection has two ends, one in each stack: per-end figures are half the per-pair ones.
// Each run is made over IPv4 and then over IPv6 (2001:db8::N/64, DAD passed in virtual time
// before the first connect), in the same invocation, so that the two can be compared.
// Runs for N = 1, 10,000 and 100,000 (both ends in this one process: 200,000 ends), fresh from
// the handshake and after 1 KiB each way and a second idle, each in a process of its own:
// "kept" without asking the allocator to return what the trimmed buffers freed, "released"
// with the event loop's MemoryRelease (tap/memory_release.h) polled as the loop would. For
// N = 1 the resident set moves by whole pages and allocator arenas: only the buffer and heap
// figures mean something there.
//
// bazel run //tests/bench:tcp_memory_bench            # N = 1, 10,000 and 100,000
// bazel run //tests/bench:tcp_memory_bench -- 25000   # other values of N
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "stack/stack.h"
#include "stack/tcp/connection.h"
#include "stack/tcp/tcp.h"
#include "tap/memory_release.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack {
namespace {

constexpr uint16_t kFirstPort = 5001;
// Connections per listening port: one client address has 28,232 ephemeral ports per
// destination (Linux's ip_local_port_range), so N = 100,000 needs four listeners.
constexpr size_t kConnectionsPerPort = 25'000;
constexpr size_t kBatch = 32;  // connects between network steps: the ARP queue holds 64
constexpr Duration kDadTime = Duration::milliseconds(1500);  // DAD takes 1 s
constexpr Duration kVirtualLimit = Duration::seconds(600);

// Resident set size in bytes.
uint64_t resident_bytes() {
  std::FILE* file = std::fopen("/proc/self/statm", "r");
  if (!file) return 0;
  unsigned long long size = 0, resident = 0;
  const int read = std::fscanf(file, "%llu %llu", &size, &resident);
  std::fclose(file);
  return read == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// Bytes the program holds from malloc (small chunks from the heap, large ones mmapped).
uint64_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

struct Pairs {
  std::vector<SocketId> clients;
  std::vector<SocketId> servers;
};

void accept_all(Stack& server, const std::vector<SocketId>& listeners, Pairs& pairs) {
  for (const SocketId listener : listeners) {
    while (auto accepted = server.tcp().accept(listener)) pairs.servers.push_back(*accepted);
  }
}

// Opens n connections from client to server, spread over the listeners, and accepts them all.
Pairs open_connections(sim::Network& net, Stack& client, Stack& server,
                       const std::vector<SocketId>& listeners, const IpAddress& server_address,
                       size_t n) {
  Pairs pairs;
  pairs.clients.reserve(n);
  pairs.servers.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto port = static_cast<uint16_t>(kFirstPort + i / kConnectionsPerPort);
    if (auto socket = client.tcp().connect(server_address, port, net.now())) {
      pairs.clients.push_back(*socket);
    }
    if (i % kBatch == kBatch - 1) {
      net.run_for(Duration::milliseconds(1));
      accept_all(server, listeners, pairs);
    }
  }
  net.run_until(
      [&] {
        accept_all(server, listeners, pairs);
        return pairs.servers.size() == pairs.clients.size();
      },
      kVirtualLimit);
  return pairs;
}

// What the event loop does after each iteration (tap/event_loop.cc), for both stacks: the
// release of freed buffer memory, and the time it took.
struct Releases {
  explicit Releases(MemoryReleaseOptions options) : client(options), server(options) {}
  MemoryRelease client;
  MemoryRelease server;
  std::chrono::steady_clock::duration took{};

  void poll(Stack& client_stack, Stack& server_stack, Instant now) {
    const auto start = std::chrono::steady_clock::now();
    client.poll(client_stack, now);
    server.poll(server_stack, now);
    took += std::chrono::steady_clock::now() - start;
  }
  uint64_t count() const { return client.releases() + server.releases(); }
};

// Virtual time in steps as an event loop would wake for it, polling the releases after each.
void run_for(sim::Network& net, Stack& client, Stack& server, Releases& releases, Duration d) {
  const Instant end = net.now() + d;
  while (net.now() < end) {
    net.run_for(std::min(Duration::milliseconds(100), end - net.now()));
    releases.poll(client, server, net.now());
  }
}

// 1 KiB each way on every connection, all read: the buffers are empty again, and idle.
void exchange_a_little(sim::Network& net, Stack& client, Stack& server, const Pairs& pairs,
                       Releases& releases) {
  const std::vector<uint8_t> data(1024, 0x42);
  std::vector<uint8_t> buffer(2048);
  for (size_t i = 0; i < pairs.clients.size(); ++i) {
    client.tcp().send(pairs.clients[i], data, net.now());
    server.tcp().send(pairs.servers[i], data, net.now());
    if (i % kBatch == kBatch - 1) net.run_for(Duration::milliseconds(1));
  }
  run_for(net, client, server, releases, Duration::seconds(1));  // delivered, acknowledged
  for (size_t i = 0; i < pairs.clients.size(); ++i) {
    for (auto [tcp, socket] :
         {std::pair{&client.tcp(), pairs.clients[i]}, std::pair{&server.tcp(), pairs.servers[i]}}) {
      for (auto n = tcp->receive(socket, buffer, net.now()); n && *n > 0;
           n = tcp->receive(socket, buffer, net.now())) {
      }
    }
  }
  // Delivered and acknowledged; then idle for longer than an emptied buffer keeps its memory
  // (Tcp::kBufferTrimDelay).
  run_for(net, client, server, releases, Duration::seconds(3));
}

double per_end(double bytes, size_t pairs) {
  return bytes / (2 * static_cast<double>(pairs ? pairs : 1));
}

enum class Run { Fresh, TrafficKept, TrafficReleased };

void measure(size_t n, Run run, IpFamily family) {
  const bool exchange = run != Run::Fresh;
  const bool ipv6 = family == IpFamily::Ipv6;
  sim::Network net(1);
  const auto segment = net.add_segment();
  StackConfig server_config = ipv6 ? sim::dual_stack_host_config(1) : sim::host_config(1);
  StackConfig client_config = ipv6 ? sim::dual_stack_host_config(2) : sim::host_config(2);
  server_config.tcp.max_connections = client_config.tcp.max_connections = n + 64;
  Stack& server = net.add_stack(segment, server_config);
  Stack& client = net.add_stack(segment, client_config);
  std::vector<SocketId> listeners;
  for (size_t i = 0; i * kConnectionsPerPort < n; ++i) {
    listeners.push_back(*server.tcp().listen(static_cast<uint16_t>(kFirstPort + i), 65535));
  }
  net.run_for(ipv6 ? kDadTime : Duration::milliseconds(1));
  const IpAddress server_address = ipv6 ? sim::host_ip6(1) : IpAddress(sim::host_ip(1));
  if (ipv6 && !(server.ndisc()->owns(sim::host_ip6(1)) && client.ndisc()->owns(sim::host_ip6(2)))) {
    fmt::print("  IPv6: the addresses did not pass DAD; skipped\n");
    return;
  }

  const uint64_t rss_before = resident_bytes();
  const uint64_t heap_before = heap_in_use();
  const Pairs pairs = open_connections(net, client, server, listeners, server_address, n);
  Releases releases(run == Run::TrafficReleased ? MemoryReleaseOptions{}
                                                : MemoryReleaseOptions{.threshold = 0});
  if (exchange) exchange_a_little(net, client, server, pairs, releases);
  const uint64_t rss_after = resident_bytes();
  const uint64_t heap_after = heap_in_use();
  const size_t buffers = client.tcp().buffer_memory() + server.tcp().buffer_memory();
  const size_t established = pairs.servers.size();

  fmt::print(
      "{} {:>7} idle connections{:<28} buffers {:>5.0f} B, heap {:>5.0f} B, RSS {:>5.0f} B per "
      "end; RSS +{:.1f} MiB, {:.1f} MiB in all\n",
      ipv6 ? "IPv6" : "IPv4", established,
      run == Run::Fresh         ? ", fresh"
      : run == Run::TrafficKept ? ", 1 KiB each way, kept"
                                : ", 1 KiB each way, released",
      per_end(static_cast<double>(buffers), established),
      per_end(static_cast<double>(heap_after - heap_before), established),
      per_end(static_cast<double>(rss_after - rss_before), established),
      static_cast<double>(rss_after - rss_before) / (1 << 20),
      static_cast<double>(rss_after) / (1 << 20));
  if (established != n)
    fmt::print("  only {} of {} connections were established\n", established, n);
  if (run == Run::TrafficReleased) {
    fmt::print("  {} releases of freed buffer memory (malloc_trim), {:.1f} ms in all\n",
               releases.count(), std::chrono::duration<double, std::milli>(releases.took).count());
  }
}

// Bytes of heap one entry of a container costs, measured by filling one with n entries.
template <typename Fill>
double heap_per_entry(size_t n, Fill fill) {
  const uint64_t before = heap_in_use();
  const auto container = fill(n);
  return static_cast<double>(heap_in_use() - before) / static_cast<double>(n);
}

// The parts of the control block (stack/tcp/connection.h), each group from its first field to
// the next group's, padding included.
void print_control_block() {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
  struct Group {
    std::string_view name;
    size_t begin;
  };
  const Group groups[] = {
      {"identity, socket state, SocketOptions", offsetof(Connection, id)},
      {"send sequence variables, send buffer's bookkeeping", offsetof(Connection, iss)},
      {"receive variables, negotiated options, receive buffer's", offsetof(Connection, irs)},
      {"retransmission (RFC 6298)", offsetof(Connection, srtt)},
      {"congestion control, recovery", offsetof(Connection, congestion)},
      {"timers", offsetof(Connection, retransmit_at)},
      {"pointers to out-of-line state", offsetof(Connection, listen)},
  };
#pragma GCC diagnostic pop
  fmt::print("The control block, sizeof(Connection) = {} B (712 B before issue 12):\n",
             sizeof(Connection));
  for (size_t i = 0; i < std::size(groups); ++i) {
    const size_t end = i + 1 < std::size(groups) ? groups[i + 1].begin : sizeof(Connection);
    fmt::print("  {:<58} {:>4} B\n", groups[i].name, end - groups[i].begin);
  }
  fmt::print("  of which SocketOptions {} B, each ByteRing {} B\n", sizeof(SocketOptions),
             sizeof(ByteRing));
  fmt::print("Out of line, made when needed and freed after (0 B while idle):\n");
  fmt::print("  {:<58} {:>4} B + 8 B per queued SocketId\n", "ListenerState (listeners only)",
             sizeof(ListenerState));
  fmt::print("  {:<58} {:>4} B + {} B per segment + its bytes\n",
             "OutOfOrderQueue (data beyond a gap)", sizeof(OutOfOrderQueue),
             sizeof(OutOfOrderSegment));
  fmt::print("  {:<58} {:>4} B + {} B per block\n", "SackScoreboard (peer SACKed data)",
             sizeof(SackScoreboard), sizeof(SackBlock));
  fmt::print("  {:<58} {:>4} B\n", "CubicState (from CUBIC's first epoch or loss on)",
             sizeof(CubicState));
  fmt::print("  {:<58} {:>4} B + {} B per key\n", "md5opt::KeyTable (RFC 2385 keys)",
             sizeof(md5opt::KeyTable), sizeof(md5opt::KeyTable::Entry));
  constexpr size_t kEntries = 100'000;
  const double block = heap_per_entry(kEntries,
                                      [](size_t n) {
                                        std::vector<std::unique_ptr<Connection>> v;
                                        v.reserve(n);
                                        for (size_t i = 0; i < n; ++i)
                                          v.push_back(std::make_unique<Connection>());
                                        return v;
                                      }) -
                       sizeof(std::unique_ptr<Connection>);
  const double by_id = heap_per_entry(kEntries, [](size_t n) {
    std::unordered_map<SocketId, std::unique_ptr<Connection>> m;
    for (size_t i = 0; i < n; ++i) m.emplace(static_cast<SocketId>(i), nullptr);
    return m;
  });
  const double by_flow = heap_per_entry(kEntries, [](size_t n) {
    std::unordered_map<FlowKey, SocketId, FlowKeyHash> m;
    for (size_t i = 0; i < n; ++i) {
      m.emplace(FlowKey{Ipv4Address{static_cast<uint32_t>(i)}, Ipv4Address{1}, 1, 2}, 0);
    }
    return m;
  });
  fmt::print("Heap per idle end (malloc's chunk headers and the tables' buckets included):\n");
  fmt::print("  {:<58} {:>4.0f} B\n", "the control block", block);
  fmt::print("  {:<58} {:>4.0f} B\n", "Tcp::connections_ entry (by socket id)", by_id);
  fmt::print("  {:<58} {:>4.0f} B\n", "Tcp::flows_ entry (by address and ports)", by_flow);
  fmt::print("  {:<58} {:>4.0f} B\n", "in all", block + by_id + by_flow);
  fmt::print(
      "  (a connection with a timer armed adds one std::set node; an idle one has none)\n\n");
}

}  // namespace
}  // namespace tapstack

// Runs fn in a process of its own: memory freed by one run and reused by the next would hide
// from the heap's and the resident set's growth.
template <typename Fn>
void in_child(Fn fn) {
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    fn();
    std::fflush(stdout);
    _exit(0);
  }
  waitpid(child, nullptr, 0);
}

int main(int argc, char** argv) {
  using namespace tapstack;
  std::vector<size_t> counts;
  for (int i = 1; i < argc; ++i) counts.push_back(std::strtoul(argv[i], nullptr, 10));
  if (counts.empty()) counts = {1, 10'000, 100'000};
  fmt::print(
      "Memory of idle TCP connections between two simulated stacks "
      "(each connection: two ends, one per stack)\n\n");
  in_child(print_control_block);
  for (const size_t n : counts) {
    for (const Run run : {Run::Fresh, Run::TrafficKept, Run::TrafficReleased}) {
      for (const IpFamily family : {IpFamily::Ipv4, IpFamily::Ipv6}) {
        in_child([=] { measure(n, run, family); });
      }
    }
  }
  return 0;
}
