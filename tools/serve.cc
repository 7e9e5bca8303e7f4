// `tapstack serve`. Each turn of the event loop accepts what the listener holds, then moves
// each connection's data (print: to the output; echo: back to the peer; discard: nowhere) a
// bounded amount per connection, so that one fast sender cannot starve the others, and
// retires the connections that have closed.
#include "tools/serve.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/ranges.h>

#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tools/report.h"
#include "tools/session.h"
#include "tools/stream_io.h"

namespace tapstack::cli {
namespace {

constexpr int kBacklog = 1024;
constexpr size_t kChunk = 64 * 1024;
// Chunks one connection may move per turn before the others get theirs.
constexpr int kChunksPerTurn = 8;
// How soon to look again at an output that could not take more (a slow reader of a pipe).
constexpr Duration kOutputPollInterval = Duration::milliseconds(5);

// One accepted connection as the server sees it.
struct Peer {
  SocketId socket = 0;
  uint64_t number = 0;  // 1, 2, ... in the order of acceptance
  std::string name;     // "198.18.0.1:40312"
  uint32_t send_buffer = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  bool end_of_stream = false;  // the peer's FIN was read
  bool shut_down = false;      // our FIN is queued
  int error = 0;               // what the connection failed with

  bool finished(const Tcp& tcp) const {
    return error != 0 || (shut_down && (tcp.events(socket) & socket_event::kClosed));
  }
  std::string counts() const {
    return fmt::format("{} bytes in, {} bytes out", bytes_in, bytes_out);
  }
};

// How a connection that failed is described in its closing line.
std::string failure_text(int error) {
  switch (error) {
    case ECONNRESET:
      return "reset by peer";
    case ETIMEDOUT:
      return "timed out (the peer stopped answering)";
    default:
      return fmt::format("failed: {}", std::strerror(error));
  }
}

class Server {
 public:
  Server(Tcp& tcp, const ServeOptions& options, OutputStream output, SocketId listener)
      : tcp_(tcp),
        options_(options),
        output_(std::move(output)),
        listener_(listener),
        scratch_(kChunk) {}

  // One turn; nullopt once --once is satisfied or the output failed.
  std::optional<Duration> step(Instant now) {
    accept_new();
    bool more = false;
    output_blocked_ = false;
    for (auto& [socket, peer] : peers_) more = serve(peer, now) || more;
    retire_finished(now);
    if (done_ || output_error_) return std::nullopt;
    if (more) return Duration::zero();
    return output_blocked_ ? kOutputPollInterval : Duration::max();
  }

  // The process is about to exit and take the TAP with it: tell every peer still connected.
  void abort_all(Instant now) {
    for (auto& [socket, peer] : peers_) {
      report("connection {} from {} aborted: {}", peer.number, peer.name, peer.counts());
      tcp_.abort(socket, now);
    }
    peers_.clear();
  }

  // The exit code and its reason, once the loop has stopped.
  int finish() {
    if (output_error_) return runtime_failure(*output_error_);
    if (auto closed = output_.close(); !closed) return runtime_failure(closed.error().message);
    return once_failed_ ? kExitFailure : kExitSuccess;
  }

  std::string totals() const {
    return fmt::format("{} connections, {} bytes in, {} bytes out", accepted_, total_in_,
                       total_out_);
  }

 private:
  void accept_new() {
    for (;;) {
      auto socket = tcp_.accept(listener_);
      if (!socket) return;
      const auto info = tcp_.info(*socket);
      const auto socket_options = tcp_.options(*socket);
      Peer peer;
      peer.socket = *socket;
      peer.number = ++accepted_;
      peer.name = format_endpoint(info->remote_address, info->remote_port);
      peer.send_buffer = socket_options->send_buffer;
      report("connection {} from {} opened", peer.number, peer.name);
      peers_.emplace(*socket, std::move(peer));
    }
  }

  // Moves one connection's data; true when it has more than this turn allowed.
  bool serve(Peer& peer, Instant now) {
    if (peer.finished(tcp_)) return false;
    bool more = false;
    switch (options_.mode) {
      case ServeMode::Print:
        more = move_to_output(peer, now);
        break;
      case ServeMode::Echo:
        more = echo(peer, now);
        break;
      case ServeMode::Discard:
        more = discard(peer, now);
        break;
    }
    if (peer.end_of_stream && !peer.shut_down && peer.error == 0) {
      // Echo mode: the FIN goes after the echoed bytes still in the send buffer.
      tcp_.shutdown(peer.socket, ShutdownHow::Write, now);
      peer.shut_down = true;
    }
    take_error(peer);
    return more;
  }

  // A reset or timeout that moving data did not run into: an echo connection whose peer
  // reads nothing, or any connection while the output is full.
  void take_error(Peer& peer) {
    if (peer.error != 0 || !(tcp_.events(peer.socket) & socket_event::kError)) return;
    const Status pending = tcp_.take_error(peer.socket);
    if (!pending) peer.error = pending.error().code;
  }

  // Up to max bytes the peer sent, or nothing (none yet, end of stream, or an error, each
  // recorded in peer).
  std::optional<ByteView> receive(Peer& peer, size_t max, Instant now) {
    if (peer.end_of_stream || peer.error != 0) return std::nullopt;
    auto size = tcp_.receive(peer.socket, MutableByteView(scratch_).first(max), now);
    if (!size) {
      if (size.error().code != EAGAIN) peer.error = size.error().code;
      return std::nullopt;
    }
    if (*size == 0) {
      peer.end_of_stream = true;
      return std::nullopt;
    }
    peer.bytes_in += *size;
    total_in_ += *size;
    return ByteView(scratch_).first(*size);
  }

  bool move_to_output(Peer& peer, Instant now) {
    for (int i = 0; i < kChunksPerTurn; ++i) {
      const size_t room = output_.writable_now();
      if (room == 0) {
        output_blocked_ = true;
        return false;
      }
      const auto data = receive(peer, std::min(room, kChunk), now);
      if (!data) return false;
      if (auto written = output_.write(*data); !written) {
        output_error_ = written.error().message;
        return false;
      }
    }
    return true;
  }

  // Takes from the receive buffer only what the send buffer has room for, so that nothing
  // waits in between.
  bool echo(Peer& peer, Instant now) {
    for (int i = 0; i < kChunksPerTurn; ++i) {
      const size_t room = send_room(peer);
      if (room == 0) return false;
      const auto data = receive(peer, std::min(room, kChunk), now);
      if (!data) return false;
      auto sent = tcp_.send(peer.socket, *data, now);
      if (!sent) {
        peer.error = sent.error().code;
        return false;
      }
      peer.bytes_out += *sent;
      total_out_ += *sent;
    }
    return true;
  }

  bool discard(Peer& peer, Instant now) {
    for (int i = 0; i < kChunksPerTurn; ++i) {
      if (!receive(peer, kChunk, now)) return false;
    }
    return true;
  }

  size_t send_room(const Peer& peer) const {
    if (!(tcp_.events(peer.socket) & socket_event::kWritable)) return 0;
    const auto info = tcp_.info(peer.socket);
    return info ? peer.send_buffer - std::min(peer.send_buffer, info->send_queue) : 0;
  }

  void retire_finished(Instant now) {
    for (auto it = peers_.begin(); it != peers_.end();) {
      Peer& peer = it->second;
      if (!peer.finished(tcp_)) {
        ++it;
        continue;
      }
      const std::string how = peer.error ? failure_text(peer.error) : "closed";
      report("connection {} from {} {}: {}", peer.number, peer.name, how, peer.counts());
      tcp_.close(peer.socket, now);
      if (options_.once && !done_) {
        done_ = true;
        once_failed_ = peer.error != 0;
      }
      it = peers_.erase(it);
    }
  }

  Tcp& tcp_;
  const ServeOptions& options_;
  OutputStream output_;
  SocketId listener_;
  std::vector<uint8_t> scratch_;
  std::map<SocketId, Peer> peers_;
  uint64_t accepted_ = 0;
  uint64_t total_in_ = 0;
  uint64_t total_out_ = 0;
  bool output_blocked_ = false;
  bool done_ = false;
  bool once_failed_ = false;
  std::optional<std::string> output_error_;
};

}  // namespace

int run_serve(const ServeOptions& options) {
  // A reader of stdout that goes away is an error to report, not a reason to die silently.
  signal(SIGPIPE, SIG_IGN);
  auto output = OutputStream::open(options.output_path);
  if (!output) return runtime_failure(output.error().message);
  auto opened = Session::open(options.common);
  if (!opened) return runtime_failure(opened.error().message);
  Session& session = **opened;
  auto listener = session.stack().tcp().listen(options.port, kBacklog);
  if (!listener) return runtime_failure(listener.error().message);
  // Linux: setsockopt(TCP_MD5SIG) on the listening socket, as the seed's server.c does; each
  // accepted connection takes the key for its peer.
  for (const Md5KeyOption& key : options.md5_keys) {
    const Status set =
        session.stack().tcp().set_md5_key(*listener, key.peer, key.prefix_length, key.key);
    if (!set) {
      return runtime_failure(
          fmt::format("setting the TCP-MD5 key for {}: {}", key.peer_text(), set.error().message));
    }
  }

  report("{}", session.describe());
  // One listener takes both families, as a Linux AF_INET6 listener with IPV6_V6ONLY=0 does.
  std::vector<std::string> endpoints;
  if (options.common.has_ipv4()) {
    endpoints.push_back(format_endpoint(options.common.addr.address, options.port));
  }
  if (options.common.has_ipv6()) {
    endpoints.push_back(format_endpoint(options.common.addr6->address, options.port));
  }
  report("listening on {} ({}){}; stop with Ctrl-C", fmt::join(endpoints, " and "),
         serve_mode_name(options.mode), md5_keys_text(options.md5_keys));
  Server server(session.stack().tcp(), options, std::move(*output), *listener);
  const Status run = session.run([&](Instant now) { return server.step(now); });
  server.abort_all(monotonic_now());
  report("{}; {}", session.summary(), server.totals());
  const int code = server.finish();
  const Status finished = session.finish();
  if (!run) return runtime_failure(run.error().message);
  if (!finished) return runtime_failure(finished.error().message);
  return code;
}

}  // namespace tapstack::cli
