// `kernel-peer`: the other end for trying tapstack by hand, with the kernel's own TCP and
// TCP_MD5SIG, in the spirit of the seed's server.c and client.c.
//
//   kernel-peer server --port P [--ipv6] [--md5 PEER[/PREFIX]=KEY]... [--reply TEXT]
//                      [--timeout S]
//   kernel-peer client --to IP:PORT|[IPV6]:PORT [--md5 PEER[/PREFIX]=KEY]... [--timeout S]
//
// The server accepts one connection, writes what it receives to stdout until the peer shuts
// down its side, then sends --reply and closes. The client sends stdin, shuts down its side
// and writes what comes back to stdout. Both wait at most --timeout seconds for anything
// (default 30), so an example never hangs. Status lines go to stderr as "kernel-peer: ...".
// --md5 takes the same forms as tapstack's, and sets the keys with setsockopt(TCP_MD5SIG)
// (TCP_MD5SIG_EXT for a prefix) before listen() or connect(), as the seed's programs do. The
// client's socket is of --to's family; the server's is AF_INET, or with --ipv6 an AF_INET6 one
// that takes both families (IPV6_V6ONLY=0), as BGP daemons listen.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tools/cli.h"
#include "tools/tcp_md5sig.h"

namespace tapstack::cli {
namespace {

constexpr std::string_view kName = "kernel-peer";

struct PeerOptions {
  bool server = false;
  uint16_t port = 0;        // server: --port
  bool ipv6 = false;        // server: --ipv6
  IpAddress to;             // client: --to
  uint16_t to_port = 0;
  std::string reply;        // server: --reply
  int timeout_ms = 30'000;  // --timeout
  std::vector<Md5KeyOption> md5_keys;
};

template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "{}: {}\n", kName, fmt::format(format, std::forward<Args>(args)...));
}

int failure(std::string_view what) {
  say("{}: {}", what, std::strerror(errno));
  return kExitFailure;
}

void print_help() {
  fmt::print(
      "usage: kernel-peer server --port P [--ipv6] [--md5 PEER[/PREFIX]=KEY]... [--reply TEXT]\n"
      "       kernel-peer client --to IP:PORT|[IPV6]:PORT [--md5 PEER[/PREFIX]=KEY]...\n"
      "\n"
      "The kernel's TCP, as a peer for tapstack: the server accepts one connection on any\n"
      "address, writes what it receives to stdout until the peer shuts down its side, then\n"
      "sends TEXT and closes; the client sends stdin, shuts down its side and writes what\n"
      "comes back to stdout. Keys are set with setsockopt(TCP_MD5SIG) before listen() or\n"
      "connect(), as the seed's server.c and client.c do.\n"
      "Exit status: 0 when the exchange finished, 1 when it failed or timed out, 2 for bad\n"
      "arguments.\n"
      "\n"
      "options:\n"
      "  --port P               server: the port to listen on\n"
      "  --ipv6                 server: listen on an AF_INET6 socket that takes both families\n"
      "                         (IPV6_V6ONLY=0); keys for IPv4 peers go on as ::ffff:A.B.C.D\n"
      "  --to IP:PORT           client: the peer to connect to: 198.18.0.2:6666, or an IPv6\n"
      "                         address in brackets, [2001:db8::2]:6666\n"
      "  --reply TEXT           server: what to send back at the end (default: nothing)\n"
      "  --timeout SECONDS      give up when nothing happens for this long (default 30)\n"
      "  --md5 PEER[/PREFIX]=KEY\n"
      "                         RFC 2385 TCP-MD5 with setsockopt(TCP_MD5SIG) (TCP_MD5SIG_EXT\n"
      "                         for a prefix): the kernel signs every segment to PEER with KEY\n"
      "                         and drops every segment from it not signed with KEY. KEY is\n"
      "                         text, or hex:HEXDIGITS; 1 to 80 bytes. PEER is IPv4 or IPv6\n"
      "                         (2001:db8::1=KEY, 2001:db8::/64=KEY), of a family the socket\n"
      "                         takes (IPv6 keys: a client of an IPv6 --to, a server with\n"
      "                         --ipv6). Repeatable, one key per peer. kernel-peer counts\n"
      "                         nothing itself: the kernel's drops are TcpExtTCPMD5NotFound,\n"
      "                         TcpExtTCPMD5Unexpected and TcpExtTCPMD5Failure in\n"
      "                         `nstat -az`, run in the same namespace\n"
      "  -h, --help             show this help\n"
      "\n"
      "example (as root, in a network namespace of its own; tapstack is\n"
      "bazel-bin/tools/tapstack), the kernel as a signing server and tapstack its client:\n"
      "  unshare -n sh -c 'ip link set lo up\n"
      "    kernel-peer server --port 6666 --md5 198.18.0.2=12345 --reply \"hello, signed\" &\n"
      "    sleep 1; echo hello | tapstack connect --tap tap0 --addr 198.18.0.2/24 \\\n"
      "        --host-addr 198.18.0.1/24 --to 198.18.0.1:6666 --md5 198.18.0.1=12345; wait'\n");
}

std::optional<PeerOptions> parse(std::span<const std::string_view> args, int& exit_code) {
  PeerOptions options;
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    print_help();
    exit_code = args.empty() ? kExitUsage : kExitSuccess;
    return std::nullopt;
  }
  if (args[0] != "server" && args[0] != "client") {
    say("unknown mode '{}': expected server or client (see kernel-peer --help)", args[0]);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  options.server = args[0] == "server";
  CommandLine line(args.subspan(1));
  while (line.next()) {
    if (line.is_help()) {
      print_help();
      exit_code = kExitSuccess;
      return std::nullopt;
    }
    if (options.server && line.is("--port")) {
      const std::string_view text = line.value();
      const auto port = parse_port_number(text);
      if (!port) line.fail(fmt::format("bad --port '{}': expected a number from 1 to 65535", text));
      options.port = port.value_or(0);
    } else if (options.server && line.is("--ipv6")) {
      line.flag();
      options.ipv6 = true;
    } else if (!options.server && line.is("--to")) {
      if (const auto to = parse_endpoint(line, "--to", line.value())) {
        options.to = to->address;
        options.to_port = to->port;
      }
    } else if (options.server && line.is("--reply")) {
      options.reply = std::string(line.value());
    } else if (line.is("--timeout")) {
      const std::string text(line.value());
      double seconds = 0;
      char extra = 0;
      if (std::sscanf(text.c_str(), "%lf%c", &seconds, &extra) != 1 || !(seconds > 0) ||
          seconds > 86400) {
        line.fail(fmt::format("bad --timeout '{}': expected seconds above 0, up to 86400", text));
      }
      options.timeout_ms = static_cast<int>(seconds * 1000);
    } else if (line.is_repeatable("--md5")) {
      parse_md5_option(line, line.value(), options.md5_keys);
    } else {
      line.reject();
    }
  }
  if (!line.error() && options.server && !line.seen("--port")) line.fail("missing --port P");
  if (!line.error() && !options.server && !line.seen("--to")) line.fail("missing --to IP:PORT");
  // An AF_INET socket takes IPv4 keys only (tcp_v4_parse_md5_keys()).
  const bool ipv6_socket = options.server ? options.ipv6 : !options.to.is_ipv4();
  for (const Md5KeyOption& key : options.md5_keys) {
    if (line.error() || key.peer.is_ipv4() || ipv6_socket) continue;
    line.fail(fmt::format("--md5 {} is an IPv6 key, and the socket is IPv4; {}", key.peer_text(),
                          options.server ? "add --ipv6" : "connect to an IPv6 --to"));
  }
  if (line.error()) {
    say("{} (see kernel-peer --help)", line.error()->message);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  return options;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// address:port as a sockaddr of family (AF_INET6 takes an IPv4 address as ::ffff:A.B.C.D).
sockaddr_storage socket_address(int family, const IpAddress& address, uint16_t port,
                                socklen_t& length) {
  sockaddr_storage storage{};
  const ByteView bytes = address.bytes();
  if (family == AF_INET6) {
    sockaddr_in6 result{};
    result.sin6_family = AF_INET6;
    result.sin6_port = htons(port);
    if (address.is_ipv4()) {
      result.sin6_addr.s6_addr[10] = result.sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(&result.sin6_addr.s6_addr[12], bytes.data(), 4);
    } else {
      std::memcpy(&result.sin6_addr, bytes.data(), 16);
    }
    std::memcpy(&storage, &result, sizeof result);
    length = sizeof result;
  } else {
    sockaddr_in result{};
    result.sin_family = AF_INET;
    result.sin_port = htons(port);
    std::memcpy(&result.sin_addr, bytes.data(), 4);
    std::memcpy(&storage, &result, sizeof result);
    length = sizeof result;
  }
  return storage;
}

// "198.18.0.2:40000" or "[2001:db8::2]:40000" of an accepted peer; a v4-mapped one as IPv4.
std::string peer_text(const sockaddr_storage& storage) {
  if (storage.ss_family == AF_INET) {
    sockaddr_in from{};
    std::memcpy(&from, &storage, sizeof from);
    return format_endpoint(Ipv4Address{ntohl(from.sin_addr.s_addr)}, ntohs(from.sin_port));
  }
  sockaddr_in6 from{};
  std::memcpy(&from, &storage, sizeof from);
  const uint8_t* b = from.sin6_addr.s6_addr;
  const bool mapped =
      std::all_of(b, b + 10, [](uint8_t x) { return x == 0; }) && b[10] == 0xff && b[11] == 0xff;
  const IpAddress address = mapped ? IpAddress(Ipv4Address::from_octets(b[12], b[13], b[14], b[15]))
                                   : IpAddress::ipv6(std::span<const uint8_t, 16>(b, 16));
  return format_endpoint(address, ntohs(from.sin6_port));
}

bool set_keys(int fd, const std::vector<Md5KeyOption>& keys) {
  for (const Md5KeyOption& key : keys) {
    if (const Status set = set_tcp_md5sig(fd, key.peer, key.prefix_length, key.key); !set) {
      say("{}", set.error().message);
      return false;
    }
  }
  return true;
}

// Waits for fd to be ready for events; false (with errno ETIMEDOUT) when the timeout passed.
bool wait_for(int fd, short events, int timeout_ms) {
  pollfd entry{fd, events, 0};
  for (;;) {
    const int ready = ::poll(&entry, 1, timeout_ms);
    if (ready > 0) return true;
    if (ready == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (errno != EINTR) return false;
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Copies from the connection to stdout until the peer's FIN; false on error or timeout.
bool receive_to_stdout(int fd, int timeout_ms, uint64_t& total) {
  char buffer[65536];
  for (;;) {
    if (!wait_for(fd, POLLIN, timeout_ms)) return false;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    total += static_cast<uint64_t>(n);
    if (!write_all(STDOUT_FILENO, std::string_view(buffer, static_cast<size_t>(n)))) return false;
  }
}

int run_server(const PeerOptions& options) {
  const int family = options.ipv6 ? AF_INET6 : AF_INET;
  Fd listener(::socket(family, SOCK_STREAM, 0));
  if (listener.get() < 0) return failure("socket");
  const int on = 1;
  const int off = 0;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (options.ipv6 &&
      setsockopt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
    return failure("setsockopt(IPV6_V6ONLY, 0)");
  }
  socklen_t any_length = 0;
  const sockaddr_storage any = socket_address(
      family, options.ipv6 ? IpAddress::ipv6(std::array<uint8_t, 16>{}) : IpAddress(Ipv4Address{}),
      options.port, any_length);
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&any), any_length) != 0) {
    return failure(fmt::format("bind to port {}", options.port));
  }
  if (!set_keys(listener.get(), options.md5_keys)) return kExitFailure;
  if (::listen(listener.get(), 10) != 0) return failure("listen");
  say("listening on port {}{}{}", options.port, options.ipv6 ? " (IPv6 and IPv4)" : "",
      md5_keys_text(options.md5_keys));
  if (!wait_for(listener.get(), POLLIN, options.timeout_ms)) {
    return failure(fmt::format("waiting for a connection on port {}", options.port));
  }
  sockaddr_storage from{};
  socklen_t length = sizeof from;
  Fd connection(::accept(listener.get(), reinterpret_cast<sockaddr*>(&from), &length));
  if (connection.get() < 0) return failure("accept");
  const std::string peer = peer_text(from);
  say("connection from {}", peer);
  uint64_t received = 0;
  if (!receive_to_stdout(connection.get(), options.timeout_ms, received)) {
    return failure(fmt::format("receiving from {}", peer));
  }
  if (!write_all(connection.get(), options.reply)) {
    return failure(fmt::format("sending to {}", peer));
  }
  say("{} bytes from {}, {} bytes back; closed", received, peer, options.reply.size());
  return kExitSuccess;
}

int run_client(const PeerOptions& options) {
  const int family = options.to.is_ipv4() ? AF_INET : AF_INET6;
  Fd socket(::socket(family, SOCK_STREAM, 0));
  if (socket.get() < 0) return failure("socket");
  if (!set_keys(socket.get(), options.md5_keys)) return kExitFailure;
  const std::string peer = format_endpoint(options.to, options.to_port);
  // connect() with the timeout: non-blocking, then wait for writability.
  const timeval limit{options.timeout_ms / 1000, (options.timeout_ms % 1000) * 1000};
  setsockopt(socket.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  socklen_t to_length = 0;
  const sockaddr_storage to = socket_address(family, options.to, options.to_port, to_length);
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&to), to_length) != 0) {
    if (errno == EINPROGRESS || errno == EAGAIN) errno = ETIMEDOUT;
    return failure(fmt::format("connecting to {}", peer));
  }
  say("connected to {}{}", peer, md5_keys_text(options.md5_keys));
  char buffer[65536];
  uint64_t sent = 0;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failure("reading stdin");
    if (n == 0) break;
    if (!write_all(socket.get(), std::string_view(buffer, static_cast<size_t>(n)))) {
      return failure(fmt::format("sending to {}", peer));
    }
    sent += static_cast<uint64_t>(n);
  }
  ::shutdown(socket.get(), SHUT_WR);
  uint64_t received = 0;
  if (!receive_to_stdout(socket.get(), options.timeout_ms, received)) {
    return failure(fmt::format("receiving from {}", peer));
  }
  say("{} bytes to {}, {} bytes back; closed", sent, peer, received);
  return kExitSuccess;
}

}  // namespace
}  // namespace tapstack::cli

int main(int argc, char** argv) {
  using namespace tapstack::cli;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  int exit_code = kExitSuccess;
  const auto options = parse(args, exit_code);
  if (!options) return exit_code;
  return options->server ? run_server(*options) : run_client(*options);
}
