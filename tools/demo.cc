// The demo: `bazel run //tools:demo`. In a private network namespace it makes itself, it
// brings the stack up on a TAP device and lets the Linux kernel on the other side of the
// TAP meet it: ARP and ping, then TCP in both directions, RFC 2385 signed and with keys that
// do not match, and one signed exchange over IPv6. It prints what happened with the
// counters of both sides, says where the capture is, and leaves nothing behind.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/tcp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "stack/checksum.h"
#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tap/netlink.h"
#include "tools/session.h"
#include "tools/tcp_md5sig.h"

namespace tapstack::demo {
namespace {

constexpr const char* kTap = "tapdemo0";
constexpr const char* kPcap = "/tmp/tapstack-demo.pcap";
const Ipv4Interface kStackAddress = *Ipv4Interface::parse("198.18.0.2/24");
const Ipv4Interface kKernelAddress = *Ipv4Interface::parse("198.18.0.1/24");
const Ipv6Interface kStackAddress6 = *Ipv6Interface::parse("2001:db8::2/64");
const Ipv6Interface kKernelAddress6 = *Ipv6Interface::parse("2001:db8::1/64");

void heading(std::string_view title) { fmt::print("\n== {} ==\n", title); }

sockaddr_in socket_address(Ipv4Address address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(address.value);
  return sa;
}

// A kernel socket whose blocking calls give up after two seconds.
int kernel_socket(int type, int protocol) {
  const int fd = socket(AF_INET, type, protocol);
  const timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Runs the stack's event loop, calling step() each iteration, until done() or 5 s pass.
bool drive(cli::Session& session, const std::function<void(Instant)>& step,
           const std::function<bool()>& done) {
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > limit) return false;
    if (!session.loop().run_once(Duration::milliseconds(5))) return false;
    step(monotonic_now());
  }
  return true;
}

void show_counters(const Stack& stack, std::initializer_list<Counter> counters) {
  std::string line = "   our counters:";
  for (const Counter c : counters) line += fmt::format(" {}={}", counter_name(c), stack.counters()[c]);
  fmt::print("{}\n", line);
}

// The kernel pings us three times from a raw ICMP socket.
bool ping_screen(cli::Session& session) {
  heading("1. ARP and ping: the kernel pings 198.18.0.2");
  std::atomic<bool> finished{false};
  std::vector<std::string> lines;
  std::thread kernel([&] {
    const int fd = kernel_socket(SOCK_RAW, IPPROTO_ICMP);
    const sockaddr_in to = socket_address(kStackAddress.address, 0);
    for (uint16_t seq = 1; seq <= 3; ++seq) {
      uint8_t request[64] = {ICMP_ECHO, 0, 0, 0, 0x12, 0x34, 0, static_cast<uint8_t>(seq)};
      store_be16(request + 2, internet_checksum(request));
      const auto sent = std::chrono::steady_clock::now();
      sendto(fd, request, sizeof request, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      uint8_t reply[1500];
      const ssize_t n = recv(fd, reply, sizeof reply, 0);  // IP header + ICMP
      const auto rtt = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - sent);
      if (n >= 28 && reply[20] == ICMP_ECHOREPLY) {
        lines.push_back(fmt::format("   64 bytes from 198.18.0.2: icmp_seq={} time={:.0f} us",
                                    seq, rtt.count()));
      } else {
        lines.push_back(fmt::format("   icmp_seq={}: no reply", seq));
      }
    }
    close(fd);
    finished = true;
  });
  drive(session, [](Instant) {}, [&] { return finished.load(); });
  kernel.join();
  for (const auto& line : lines) fmt::print("{}\n", line);
  auto netlink = Rtnetlink::open();
  if (netlink) {
    if (auto neighbours = netlink->ipv4_neighbours(kTap)) {
      for (const auto& n : *neighbours) {
        if (n.address != kStackAddress.address || !n.mac) continue;
        fmt::print("   kernel's ARP table: {} lladdr {} {}\n", n.address, *n.mac, n.state_name());
      }
    }
  }
  show_counters(session.stack(), {Counter::ArpInRequests, Counter::ArpOutReplies,
                                  Counter::IcmpInEchos, Counter::IcmpOutEchoReps});
  fmt::print("   The kernel asked who has 198.18.0.2 (ARP, RFC 826); we answered with our MAC,\n"
             "   then answered each echo request with an echo reply (RFC 792).\n");
  return session.stack().counters()[Counter::IcmpOutEchoReps] == 3;
}

// A kernel client connects to our echo service on port 7.
bool kernel_to_us_screen(cli::Session& session) {
  heading("2. TCP, kernel -> us: a kernel client talks to our echo service on port 7");
  Tcp& tcp = session.stack().tcp();
  const SocketId listener = *tcp.listen(7, 4);
  const std::string message = "hello from the Linux kernel";
  std::string echoed;
  std::atomic<bool> finished{false};
  std::thread kernel([&] {
    const int fd = kernel_socket(SOCK_STREAM, 0);
    const sockaddr_in to = socket_address(kStackAddress.address, 7);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
      send(fd, message.data(), message.size(), 0);
      shutdown(fd, SHUT_WR);
      char buffer[256];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) echoed.append(buffer, n);
    }
    close(fd);
    finished = true;
  });
  SocketId connection = 0;
  std::string received;
  drive(session, [&](Instant now) {
    if (connection == 0) {
      if (auto accepted = tcp.accept(listener)) connection = *accepted;
      return;
    }
    uint8_t buffer[256];
    auto n = tcp.receive(connection, buffer, now);
    if (n && *n > 0) {
      received.append(buffer, buffer + *n);
      tcp.send(connection, {buffer, *n}, now);
    } else if (n && *n == 0 && tcp.info(connection)->state == TcpState::CloseWait) {
      tcp.close(connection, now);
    }
  }, [&] { return finished.load(); });
  kernel.join();
  fmt::print("   kernel sent:     \"{}\"\n   we received:     \"{}\"\n   kernel got back: \"{}\"\n",
             message, received, echoed);
  show_counters(session.stack(), {Counter::TcpPassiveOpens, Counter::TcpInSegs, Counter::TcpOutSegs});
  tcp.close(listener, monotonic_now());
  return echoed == message;
}

// We connect to a kernel server on port 8080.
bool us_to_kernel_screen(cli::Session& session) {
  heading("3. TCP, us -> kernel: we connect to a kernel server on 198.18.0.1:8080");
  const int server = kernel_socket(SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in at = socket_address(kKernelAddress.address, 8080);
  bind(server, reinterpret_cast<const sockaddr*>(&at), sizeof at);
  listen(server, 1);
  std::string kernel_received;
  const std::string reply = "hello back from the kernel";
  std::atomic<bool> finished{false};
  std::thread kernel([&] {
    const int fd = accept(server, nullptr, nullptr);
    if (fd >= 0) {
      char buffer[256];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) kernel_received.append(buffer, n);
      send(fd, reply.data(), reply.size(), 0);
      close(fd);
    }
    close(server);
    finished = true;
  });
  Tcp& tcp = session.stack().tcp();
  const std::string message = "hello from tapstack";
  const SocketId id = *tcp.connect(kKernelAddress.address, 8080, monotonic_now());
  bool sent = false;
  bool eof = false;
  std::string received;
  drive(session, [&](Instant now) {
    if (!sent && (tcp.events(id) & socket_event::kConnected)) {
      tcp.send(id, {reinterpret_cast<const uint8_t*>(message.data()), message.size()}, now);
      tcp.shutdown(id, ShutdownHow::Write, now);
      sent = true;
    }
    uint8_t buffer[256];
    auto n = tcp.receive(id, buffer, now);
    if (n && *n > 0) received.append(buffer, buffer + *n);
    if (n && *n == 0) eof = true;
  }, [&] { return finished.load() && eof; });
  kernel.join();
  fmt::print("   we sent:         \"{}\"\n   kernel received: \"{}\"\n   we got back:     \"{}\"\n",
             message, kernel_received, received);
  fmt::print("   our side: {}\n", tcp_state_name(tcp.info(id)->state));
  tcp.close(id, monotonic_now());
  show_counters(session.stack(), {Counter::TcpActiveOpens, Counter::TcpInSegs, Counter::TcpOutSegs,
                                  Counter::TcpRetransSegs});
  return received == reply && kernel_received == message;
}

// --- RFC 2385 screens ---------------------------------------------------------------

constexpr uint16_t kSeedPort = 6666;
constexpr std::string_view kSeedKey = "12345";  // the seed's server.c and client.c

// setsockopt(TCP_MD5SIG) as the seed's programs call it: one key for one peer address.
bool set_kernel_key(int fd, Ipv4Address peer, std::string_view key) {
  return static_cast<bool>(cli::set_tcp_md5sig(
      fd, peer, 32, ByteView(reinterpret_cast<const uint8_t*>(key.data()), key.size())));
}

// The kernel's TcpExt counters of RFC 2385, as `nstat -az` shows them.
struct Md5Counts {
  uint64_t not_found = 0;
  uint64_t unexpected = 0;
  uint64_t failure = 0;
  Md5Counts operator-(const Md5Counts& o) const {
    return {not_found - o.not_found, unexpected - o.unexpected, failure - o.failure};
  }
};

Md5Counts kernel_md5_counts() {
  std::ifstream in("/proc/net/netstat");
  std::string names;
  std::string values;
  Md5Counts counts;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (!names.starts_with("TcpExt:")) continue;
    std::istringstream n(names);
    std::istringstream v(values);
    std::string name;
    std::string value;
    while (n >> name && v >> value) {
      if (name == "TCPMD5NotFound") counts.not_found = std::stoull(value);
      if (name == "TCPMD5Unexpected") counts.unexpected = std::stoull(value);
      if (name == "TCPMD5Failure") counts.failure = std::stoull(value);
    }
  }
  return counts;
}

Md5Counts our_md5_counts(const Stack& stack) {
  const auto drops = [&](md5opt::Md5Verdict verdict) {
    return stack.counters().drops(md5_drop_case(verdict).reason);
  };
  return {drops(md5opt::Md5Verdict::NotFound), drops(md5opt::Md5Verdict::Unexpected),
          drops(md5opt::Md5Verdict::Failure)};
}

// "TcpExtTCPMD5Failure: signed with another key (wrong digest)", as tapstack's tools say it.
std::string md5_drop_said(md5opt::Md5Verdict verdict) {
  const Md5DropCase& drop = md5_drop_case(verdict);
  return fmt::format("{}: {}", drop_reason_counters(drop.reason), drop.meaning);
}

// Both sides' RFC 2385 drop counters over one screen, side by side.
void show_md5_counters(const Md5Counts& ours, const Md5Counts& kernel) {
  fmt::print("   {:<30} {:>14} {:>16} {:>13}\n", "moved during this screen", "TCPMD5NotFound",
             "TCPMD5Unexpected", "TCPMD5Failure");
  fmt::print("   {:<30} {:>14} {:>16} {:>13}\n", "tapstack (--stats JSON)", ours.not_found,
             ours.unexpected, ours.failure);
  fmt::print("   {:<30} {:>14} {:>16} {:>13}\n", "Linux (nstat, TcpExt)", kernel.not_found,
             kernel.unexpected, kernel.failure);
}

// Counter baselines for one screen.
struct Md5Baseline {
  explicit Md5Baseline(const Stack& stack) : ours(our_md5_counts(stack)), kernel(kernel_md5_counts()) {}
  void show(const Stack& stack) const {
    show_md5_counters(our_md5_counts(stack) - ours, kernel_md5_counts() - kernel);
  }
  Md5Counts ours;
  Md5Counts kernel;
};

// Screen 4: the seed's client.c against a tapstack listener with the same key.
bool md5_signed_screen(cli::Session& session) {
  heading("4. TCP-MD5 (RFC 2385): the seed's client.c, key \"12345\", to our port 6666");
  Stack& stack = session.stack();
  Tcp& tcp = stack.tcp();
  const Md5Baseline baseline(stack);
  const SocketId listener = *tcp.listen(kSeedPort, 4);
  const auto key = ByteView(reinterpret_cast<const uint8_t*>(kSeedKey.data()), kSeedKey.size());
  tcp.set_md5_key(listener, kKernelAddress.address, 32, key);
  const std::string message = "signed hello from the Linux kernel";
  const std::string reply = "signed reply from tapstack";
  std::string kernel_got;
  std::atomic<bool> finished{false};
  std::thread kernel([&] {
    const int fd = kernel_socket(SOCK_STREAM, 0);
    set_kernel_key(fd, kStackAddress.address, kSeedKey);
    const sockaddr_in to = socket_address(kStackAddress.address, kSeedPort);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
      send(fd, message.data(), message.size(), 0);
      shutdown(fd, SHUT_WR);
      char buffer[256];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) kernel_got.append(buffer, n);
    }
    close(fd);
    finished = true;
  });
  // The path of the first two segments, in the trace's words.
  std::vector<std::string> trace;
  stack.trace().set_sink([&](std::string_view line) {
    if (trace.size() < 2 && line.find("6666") != std::string_view::npos) trace.emplace_back(line);
  });
  SocketId connection = 0;
  std::string received;
  bool replied = false;
  drive(session, [&](Instant now) {
    if (connection == 0) {
      if (auto accepted = tcp.accept(listener)) connection = *accepted;
      return;
    }
    uint8_t buffer[256];
    auto n = tcp.receive(connection, buffer, now);
    if (n && *n > 0) received.append(buffer, buffer + *n);
    if (n && *n == 0 && !replied) {
      tcp.send(connection, {reinterpret_cast<const uint8_t*>(reply.data()), reply.size()}, now);
      tcp.close(connection, now);
      replied = true;
    }
  }, [&] { return finished.load(); });
  kernel.join();
  stack.trace().set_sink(nullptr);
  tcp.close(listener, monotonic_now());
  fmt::print("   kernel sent:     \"{}\"\n   we received:     \"{}\"\n"
             "   we answered:     \"{}\"\n   kernel received: \"{}\"\n",
             message, received, reply, kernel_got);
  fmt::print("   the kernel's SYN and our SYN-ACK, as --trace shows them:\n");
  for (const std::string& line : trace) {
    // One step per line, for the screen.
    std::string text = line;
    for (size_t at = 0; (at = text.find(" | ", at)) != std::string::npos;) {
      text.replace(at, 3, "\n        | ");
      at += 10;
    }
    fmt::print("     {}\n", text);
  }
  baseline.show(stack);
  fmt::print("   Every segment both ways carried NOP NOP 19 18 and a 16-byte MD5 digest over the\n"
             "   pseudo-header, the TCP header, the data and the key (RFC 2385 §2.0); all were\n"
             "   verified, so no drop counter moved on either side.\n");
  return received == message && kernel_got == reply;
}

// A kernel client (with `kernel_key` for us, or none) tries our port 6666 for a little over a
// second (its SYN and one retransmission); we hold `our_key` for it, or none.
void kernel_tries(cli::Session& session, std::string_view kernel_key, std::string_view our_key,
                  uint16_t port) {
  Tcp& tcp = session.stack().tcp();
  const SocketId listener = *tcp.listen(port, 4);
  if (!our_key.empty()) {
    tcp.set_md5_key(listener, kKernelAddress.address, 32,
                    ByteView(reinterpret_cast<const uint8_t*>(our_key.data()), our_key.size()));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (!kernel_key.empty()) set_kernel_key(fd, kStackAddress.address, kernel_key);
  const sockaddr_in to = socket_address(kStackAddress.address, port);
  connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1300);
  drive(session, [](Instant) {}, [&] { return std::chrono::steady_clock::now() > until; });
  const bool accepted = static_cast<bool>(tcp.accept(listener));
  fmt::print("   the kernel's connect(): {}\n",
             accepted ? "connected (unexpected!)" : "no answer, still in SYN-SENT");
  close(fd);
  tcp.close(listener, monotonic_now());
}

bool md5_wrong_key_screen(cli::Session& session) {
  heading("5. A wrong key: the kernel signs with \"54321\", we expect \"12345\"");
  const Md5Baseline baseline(session.stack());
  kernel_tries(session, "54321", kSeedKey, 6667);
  baseline.show(session.stack());
  fmt::print(
      "   RFC 2385 §2.0: a segment whose digest does not verify is dropped without a\n"
      "   reply, so a forged RST or SYN cannot touch the connection. The SYN and its\n"
      "   retransmission died at our inbound check (tcp_v4_inbound_md5_hash), counted\n"
      "   as {}.\n",
      md5_drop_said(md5opt::Md5Verdict::Failure));
  const Md5Counts moved = our_md5_counts(session.stack()) - baseline.ours;
  return moved.failure >= 1 && moved.not_found == 0 && moved.unexpected == 0;
}

bool md5_missing_key_screen(cli::Session& session) {
  heading("6. A missing key: the kernel sends no signature, we expect one");
  const Md5Baseline baseline(session.stack());
  kernel_tries(session, "", kSeedKey, 6668);
  baseline.show(session.stack());
  fmt::print(
      "   RFC 2385 §2.0: when a key is configured, an unsigned segment is dropped as if\n"
      "   forged: {}.\n",
      md5_drop_said(md5opt::Md5Verdict::NotFound));
  const Md5Counts moved = our_md5_counts(session.stack()) - baseline.ours;
  return moved.not_found >= 1 && moved.failure == 0 && moved.unexpected == 0;
}

// We connect with a key to a kernel server without one: the kernel drops and counts.
bool md5_unexpected_key_screen(cli::Session& session) {
  heading("7. An unexpected key: we sign, the kernel's server has no key for us");
  const Md5Baseline baseline(session.stack());
  const int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in at = socket_address(kKernelAddress.address, 6669);
  bind(server, reinterpret_cast<const sockaddr*>(&at), sizeof at);
  listen(server, 1);
  Tcp& tcp = session.stack().tcp();
  const SocketId id = *tcp.open();
  tcp.set_md5_key(id, kKernelAddress.address, 32,
                  ByteView(reinterpret_cast<const uint8_t*>(kSeedKey.data()), kSeedKey.size()));
  tcp.connect(id, kKernelAddress.address, 6669, monotonic_now());
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1300);
  drive(session, [](Instant) {}, [&] { return std::chrono::steady_clock::now() > until; });
  fmt::print("   our connect: {}\n", (tcp.events(id) & socket_event::kConnected)
                                        ? "connected (unexpected!)"
                                        : "no answer, still in SYN-SENT");
  tcp.abort(id, monotonic_now());
  close(server);
  baseline.show(session.stack());
  fmt::print("   The same rule on the kernel's side: a signed segment to a socket without a key\n"
             "   is dropped (Linux counts TCPMD5Unexpected), so both ends must agree on keys.\n");
  const Md5Counts moved = kernel_md5_counts() - baseline.kernel;
  return moved.unexpected >= 1 && moved.failure == 0 && moved.not_found == 0;
}

// Screen 8: screen 4 again over IPv6: the seed's client.c on an AF_INET6 socket, its
// TCP_MD5SIG key given as a sockaddr_in6, against our listener (the same port takes both
// families), keyed for the kernel's IPv6 address.
bool md5_ipv6_screen(cli::Session& session) {
  heading("8. TCP-MD5 over IPv6: the seed's client.c on AF_INET6, to [2001:db8::2]:6666");
  Stack& stack = session.stack();
  Tcp& tcp = stack.tcp();
  const Md5Baseline baseline(stack);
  const SocketId listener = *tcp.listen(kSeedPort, 4);
  const auto key = ByteView(reinterpret_cast<const uint8_t*>(kSeedKey.data()), kSeedKey.size());
  tcp.set_md5_key(listener, kKernelAddress6.address, 128, key);
  const std::string message = "signed hello over IPv6 from the Linux kernel";
  const std::string reply = "signed reply over IPv6 from tapstack";
  std::string kernel_got;
  std::atomic<bool> finished{false};
  std::thread kernel([&] {
    const int fd = socket(AF_INET6, SOCK_STREAM, 0);
    const timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    cli::set_tcp_md5sig(fd, kStackAddress6.address, 128, key);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(kSeedPort);
    std::memcpy(&to.sin6_addr, kStackAddress6.address.bytes().data(), 16);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
      send(fd, message.data(), message.size(), 0);
      shutdown(fd, SHUT_WR);
      char buffer[256];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) kernel_got.append(buffer, n);
    }
    close(fd);
    finished = true;
  });
  std::vector<std::string> trace;
  stack.trace().set_sink([&](std::string_view line) {
    if (trace.empty() && line.find("tcp_v6_rcv") != std::string_view::npos) {
      trace.emplace_back(line);
    }
  });
  SocketId connection = 0;
  std::string received;
  bool replied = false;
  drive(session, [&](Instant now) {
    if (connection == 0) {
      if (auto accepted = tcp.accept(listener)) connection = *accepted;
      return;
    }
    uint8_t buffer[256];
    auto n = tcp.receive(connection, buffer, now);
    if (n && *n > 0) received.append(buffer, buffer + *n);
    if (n && *n == 0 && !replied) {
      tcp.send(connection, {reinterpret_cast<const uint8_t*>(reply.data()), reply.size()}, now);
      tcp.close(connection, now);
      replied = true;
    }
  }, [&] { return finished.load(); });
  kernel.join();
  stack.trace().set_sink(nullptr);
  tcp.close(listener, monotonic_now());
  fmt::print("   kernel sent:     \"{}\"\n   we received:     \"{}\"\n"
             "   we answered:     \"{}\"\n   kernel received: \"{}\"\n",
             message, received, reply, kernel_got);
  fmt::print("   the kernel's SYN, as --trace shows it:\n");
  for (const std::string& line : trace) {
    std::string text = line;
    for (size_t at = 0; (at = text.find(" | ", at)) != std::string::npos;) {
      text.replace(at, 3, "\n        | ");
      at += 10;
    }
    fmt::print("     {}\n", text);
  }
  baseline.show(stack);
  fmt::print("   The digest now covers the IPv6 pseudo-header (RFC 8200 §8.1: both 16-byte\n"
             "   addresses, a 32-bit length, next header 6) where IPv4's has 12 bytes; the rest\n"
             "   is RFC 2385 unchanged, and the kernel checked ours in tcp_v6_inbound_md5_hash.\n");
  return received == message && kernel_got == reply;
}

int run() {
  if (geteuid() != 0) {
    fmt::print(stderr, "demo: run as root: it makes a network namespace and a TAP device "
                       "(sudo bazel run //tools:demo)\n");
    return 1;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    fmt::print(stderr, "demo: cannot make a private network namespace: {}\n", std::strerror(errno));
    return 1;
  }
  if (auto up = bring_loopback_up(); !up) {
    fmt::print(stderr, "demo: {}\n", up.error().message);
    return 1;
  }
  cli::CommonOptions options;
  options.tap = kTap;
  options.addr = kStackAddress;
  options.host_addr = kKernelAddress;
  options.addr6 = kStackAddress6;
  options.host_addr6 = kKernelAddress6;
  options.pcap_path = kPcap;
  auto session = cli::Session::open(options);
  if (!session) {
    fmt::print(stderr, "demo: {}\n", session.error().message);
    return 1;
  }
  fmt::print("tapstack demo, in a private network namespace made for it\n");
  fmt::print("  us:     {}\n", (*session)->describe());
  const bool ok = ping_screen(**session) && kernel_to_us_screen(**session) &&
                  us_to_kernel_screen(**session) && md5_signed_screen(**session) &&
                  md5_wrong_key_screen(**session) && md5_missing_key_screen(**session) &&
                  md5_unexpected_key_screen(**session) && md5_ipv6_screen(**session);
  const auto finished = (*session)->finish();
  heading("capture");
  fmt::print("   every frame in and out is in {}\n   open it with: tshark -r {}  (or Wireshark)\n",
             kPcap, kPcap);
  if (!finished) {
    fmt::print(stderr, "demo: {}\n", finished.error().message);
    return 1;
  }
  fmt::print("\n{}\n", ok ? "demo finished: all exchanges completed" : "demo FAILED: see above");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tapstack::demo

int main() { return tapstack::demo::run(); }
