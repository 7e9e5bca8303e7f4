// Memory per idle TCP connection. Two simulated stacks (tests/sim, virtual time) open N
// connections between them and leave them idle; the figures are the stack's own count of
// socket buffer memory (Tcp::buffer_memory()), the growth of the heap in use (glibc's
// mallinfo2(): what the control blocks, the hash tables and the timer set hold, exactly) and
// the growth of the process's resident set (/proc/self/statm: what the system gives the
// process, which is the heap plus whatever the allocator keeps without giving it back).
// Each connection has two ends, one in each stack: per-end figures are half the per-pair ones.
// Runs for N = 1, 10,000 and 100,000 (both ends in this one process: 200,000 ends), fresh from
// the handshake and after 1 KiB each way and a second idle, each in a process of its own. For
// N = 1 the resident set moves by whole pages and allocator arenas: only the buffer and heap
// figures mean something there.
//
// bazel run //tests/bench:tcp_memory_bench            # N = 1, 10,000 and 100,000
// bazel run //tests/bench:tcp_memory_bench -- 25000   # other values of N
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "stack/stack.h"
#include "stack/tcp_layer.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack {
namespace {

constexpr uint16_t kFirstPort = 5001;
// Connections per listening port: one client address has 28,232 ephemeral ports per
// destination (Linux's ip_local_port_range), so N = 100,000 needs four listeners.
constexpr size_t kConnectionsPerPort = 25'000;
constexpr size_t kBatch = 32;  // connects between network steps: the ARP queue holds 64
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
                       const std::vector<SocketId>& listeners, size_t n) {
  Pairs pairs;
  pairs.clients.reserve(n);
  pairs.servers.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto port = static_cast<uint16_t>(kFirstPort + i / kConnectionsPerPort);
    if (auto socket = client.tcp().connect(sim::host_ip(1), port, net.now())) {
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

// 1 KiB each way on every connection, all read: the buffers are empty again, and idle.
void exchange_a_little(sim::Network& net, Stack& client, Stack& server, const Pairs& pairs) {
  const std::vector<uint8_t> data(1024, 0x42);
  std::vector<uint8_t> buffer(2048);
  for (size_t i = 0; i < pairs.clients.size(); ++i) {
    client.tcp().send(pairs.clients[i], data, net.now());
    server.tcp().send(pairs.servers[i], data, net.now());
    if (i % kBatch == kBatch - 1) net.run_for(Duration::milliseconds(1));
  }
  net.run_for(Duration::seconds(1));  // delivered and acknowledged (delayed ACKs included)
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
  net.run_for(Duration::seconds(3));
}

double per_end(double bytes, size_t pairs) {
  return bytes / (2 * static_cast<double>(pairs ? pairs : 1));
}

void measure(size_t n, bool exchange) {
  sim::Network net(1);
  const auto segment = net.add_segment();
  StackConfig server_config = sim::host_config(1);
  StackConfig client_config = sim::host_config(2);
  server_config.tcp.max_connections = client_config.tcp.max_connections = n + 64;
  Stack& server = net.add_stack(segment, server_config);
  Stack& client = net.add_stack(segment, client_config);
  std::vector<SocketId> listeners;
  for (size_t i = 0; i * kConnectionsPerPort < n; ++i) {
    listeners.push_back(*server.tcp().listen(static_cast<uint16_t>(kFirstPort + i), 65535));
  }
  net.run_for(Duration::milliseconds(1));

  const uint64_t rss_before = resident_bytes();
  const uint64_t heap_before = heap_in_use();
  const Pairs pairs = open_connections(net, client, server, listeners, n);
  if (exchange) exchange_a_little(net, client, server, pairs);
  const uint64_t rss_after = resident_bytes();
  const uint64_t heap_after = heap_in_use();
  const size_t buffers = client.tcp().buffer_memory() + server.tcp().buffer_memory();
  const size_t established = pairs.servers.size();

  fmt::print(
      "{:>7} idle connections{:<24} buffers {:>5.0f} B, heap {:>5.0f} B, RSS {:>5.0f} B per "
      "end; RSS +{:.1f} MiB, {:.1f} MiB in all\n",
      established, exchange ? ", after 1 KiB each way" : ", fresh",
      per_end(static_cast<double>(buffers), established),
      per_end(static_cast<double>(heap_after - heap_before), established),
      per_end(static_cast<double>(rss_after - rss_before), established),
      static_cast<double>(rss_after - rss_before) / (1 << 20),
      static_cast<double>(rss_after) / (1 << 20));
  if (established != n)
    fmt::print("  only {} of {} connections were established\n", established, n);
  const auto start = std::chrono::steady_clock::now();
  malloc_trim(0);
  const auto took = std::chrono::steady_clock::now() - start;
  const uint64_t rss_trimmed = resident_bytes();
  fmt::print("  malloc_trim: {:.1f} ms, RSS {:>5.0f} B per end, {:.1f} MiB in all\n",
             std::chrono::duration<double, std::milli>(took).count(),
             per_end(static_cast<double>(rss_trimmed - rss_before), established),
             static_cast<double>(rss_trimmed) / (1 << 20));
}

void print_control_block() {
  fmt::print("sizeof(Connection) = {} B\n\n", sizeof(Connection));
}

}  // namespace
}  // namespace tapstack

int main(int argc, char** argv) {
  using namespace tapstack;
  std::vector<size_t> counts;
  for (int i = 1; i < argc; ++i) counts.push_back(std::strtoul(argv[i], nullptr, 10));
  if (counts.empty()) counts = {1, 10'000, 100'000};
  fmt::print(
      "Memory of idle TCP connections between two simulated stacks "
      "(each connection: two ends, one per stack)\n\n");
  print_control_block();
  for (const size_t n : counts) {
    for (const bool exchange : {false, true}) {
      // A process of its own for each run: memory freed by one run and reused by the next
      // would hide from the resident set's growth.
      std::fflush(stdout);
      const pid_t child = fork();
      if (child == 0) {
        measure(n, exchange);
        std::fflush(stdout);
        _exit(0);
      }
      waitpid(child, nullptr, 0);
    }
  }
  return 0;
}
