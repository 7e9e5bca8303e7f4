// Memory per idle TCP connection. Two simulated stacks (tests/sim, virtual time) open N
// connections between them and leave them idle; the figures are the stack's own count of
// socket buffer memory (Tcp::buffer_memory()) and the growth of the process's resident set
// (/proc/self/statm), which also holds the control blocks, the hash tables and the timer set.
// Each connection has two ends, one in each stack: per-end figures are half the per-pair ones.
// Runs for N = 1 and 10,000, fresh from the handshake and after 1 KiB each way, each in a
// process of its own. For N = 1 the resident set moves by whole pages and allocator arenas:
// only the buffer figure means something there.
//
// bazel run //tests/bench:tcp_memory_bench
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "stack/stack.h"
#include "stack/tcp_layer.h"
#include "tests/sim/hosts.h"
#include "tests/sim/network.h"

namespace tapstack {
namespace {

constexpr uint16_t kPort = 5001;
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

struct Pairs {
  std::vector<SocketId> clients;
  std::vector<SocketId> servers;
};

// Opens n connections from client to server and accepts them all.
Pairs open_connections(sim::Network& net, Stack& client, Stack& server, SocketId listener,
                       size_t n) {
  Pairs pairs;
  for (size_t i = 0; i < n; ++i) {
    if (auto socket = client.tcp().connect(sim::host_ip(1), kPort, net.now())) {
      pairs.clients.push_back(*socket);
    }
    if (i % kBatch == kBatch - 1) net.run_for(Duration::milliseconds(1));
  }
  net.run_until(
      [&] {
        while (auto accepted = server.tcp().accept(listener)) pairs.servers.push_back(*accepted);
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

void measure(size_t n, bool exchange) {
  sim::Network net(1);
  const auto segment = net.add_segment();
  Stack& server = net.add_stack(segment, sim::host_config(1));
  Stack& client = net.add_stack(segment, sim::host_config(2));
  const SocketId listener = *server.tcp().listen(kPort, 65535);
  net.run_for(Duration::milliseconds(1));

  const uint64_t rss_before = resident_bytes();
  const Pairs pairs = open_connections(net, client, server, listener, n);
  if (exchange) exchange_a_little(net, client, server, pairs);
  const uint64_t rss_after = resident_bytes();
  const size_t buffers = client.tcp().buffer_memory() + server.tcp().buffer_memory();
  const size_t established = pairs.servers.size();

  const double pairs_count = static_cast<double>(established ? established : 1);
  const double rss_growth = static_cast<double>(rss_after - rss_before);
  fmt::print(
      "{:>6} idle connections{:<24} buffers {:>10} B ({:>7.0f} B per end), "
      "RSS +{:>7.1f} MiB ({:>6.0f} B per end)\n",
      established, exchange ? ", after 1 KiB each way" : ", fresh", buffers,
      static_cast<double>(buffers) / (2 * pairs_count), rss_growth / (1 << 20),
      rss_growth / (2 * pairs_count));
  if (established != n)
    fmt::print("  only {} of {} connections were established\n", established, n);
}

}  // namespace
}  // namespace tapstack

int main() {
  using namespace tapstack;
  fmt::print(
      "Memory of idle TCP connections between two simulated stacks "
      "(each connection: two ends, one per stack)\n\n");
  for (const size_t n : {size_t{1}, size_t{10'000}}) {
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
