// `tapstack connect`. The input goes out as fast as the send buffer makes room for it, read
// only while there is room, so memory stays bounded whatever its size; what the peer sends
// goes to the output as fast as the output takes it, read from the socket only then, so a
// slow reader of the output closes the receive window instead of filling memory. At the end
// of the input our side sends FIN; the run ends when the peer's FIN has been read and ours
// acknowledged.
#include "tools/connect.h"

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tools/report.h"
#include "tools/session.h"
#include "tools/stream_io.h"

namespace tapstack::cli {
namespace {

// The handshake's limit, ARP included: shorter than the stack's own SYN retries (about two
// minutes, as Linux's tcp_syn_retries), which a person at a terminal would not wait for.
constexpr Duration kConnectTimeout = Duration::seconds(30);
constexpr size_t kChunk = 256 * 1024;
// Chunks moved each way per turn before the loop reads the TAP again.
constexpr int kChunksPerTurn = 16;
// How soon to look again at an input with nothing ready or an output that is full: the loop
// watches only the TAP, so these are polled.
constexpr Duration kPollInterval = Duration::milliseconds(5);

class Client {
 public:
  Client(Tcp& tcp, const ConnectOptions& options, InputStream input, OutputStream output,
         Instant start)
      : tcp_(tcp),
        peer_(format_endpoint(options.remote, options.remote_port)),
        remote_ipv4_(options.remote.is_ipv4()),
        input_(std::move(input)),
        output_(std::move(output)),
        staged_(kChunk),
        received_(kChunk),
        handshake_limit_(std::min(kConnectTimeout, options.timeout.value_or(Duration::max()))),
        connect_deadline_(start + handshake_limit_),
        run_deadline_(options.timeout ? start + *options.timeout : Instant::never()),
        timeout_(options.timeout) {}

  void start(const ConnectOptions& options, Instant now) {
    auto socket = tcp_.open();
    if (!socket) {
      return fail(fmt::format("cannot connect to {}: {}", peer_, socket.error().message));
    }
    socket_ = *socket;
    // Linux: setsockopt(TCP_MD5SIG) before connect(), as the seed's client.c does, so that
    // the SYN is signed already.
    for (const Md5KeyOption& key : options.md5_keys) {
      const Status set = tcp_.set_md5_key(socket_, key.peer, key.prefix_length, key.key);
      if (!set) {
        return fail(fmt::format("setting the TCP-MD5 key for {}: {}", key.peer_text(),
                                set.error().message));
      }
    }
    signed_ = std::any_of(options.md5_keys.begin(), options.md5_keys.end(),
                          [&](const Md5KeyOption& key) { return key.covers(options.remote); });
    if (const Status connected = tcp_.connect(socket_, options.remote, options.remote_port, now);
        !connected) {
      fail(fmt::format("cannot connect to {}: {}", peer_, connected.error().message));
    }
  }

  // An input that poll() can watch (a pipe, a terminal) wakes the loop when it has more,
  // instead of being polled every kPollInterval: a fast producer is then never kept waiting.
  void watch_input_with(EventLoop& loop) {
    if (input_.pollable()) loop_ = &loop;
  }

  // One turn; nullopt once the connection has finished or failed.
  std::optional<Duration> step(Instant now) {
    waiting_ = waiting_for_input_ = false;
    const bool more = failure_ ? false : advance(now);
    if (loop_) loop_->watch(input_.fd(), waiting_for_input_ && !failure_ ? POLLIN : 0);
    if (failure_ || finished_) return std::nullopt;
    if (more) return Duration::zero();
    const bool poll_soon = waiting_ || (waiting_for_input_ && !loop_);
    return std::min(poll_soon ? kPollInterval : Duration::max(), time_left(now));
  }

  // After the loop stopped: the exit code, with the failure said on stderr.
  int finish(int stopped_by_signal, Instant now) {
    if (!failure_ && socket_ != 0 && stopped_by_signal != 0) {
      fail(fmt::format("interrupted by {} before the connection to {} finished",
                       signal_name(stopped_by_signal), peer_));
    }
    if (socket_ != 0) tcp_.abort(socket_, now);  // the peer hears of it before the TAP goes
    const Status closed = output_.close();
    if (failure_) return runtime_failure(*failure_);
    if (!closed) return runtime_failure(closed.error().message);
    return kExitSuccess;
  }

 private:
  void check_handshake() {
    const uint32_t events = tcp_.events(socket_);
    if (events & socket_event::kConnected) {
      connected_ = true;
    } else if (events & socket_event::kError) {
      fail(connection_failure(take_error()));
    }
  }

  // Moves the connection on; true when there is more to do than this turn allowed.
  bool advance(Instant now) {
    if (!connected_) check_handshake();
    bool more = false;
    if (connected_ && !failure_) {
      more = send_input(now);
      more = receive_output(now) || more;
      check_error();
    }
    if (!failure_ && connected_ && both_directions_closed()) {
      tcp_.close(socket_, now);
      socket_ = 0;
      finished_ = true;
      return false;
    }
    if (!failure_) check_deadlines(now);
    return more;
  }

  // Moves input into the send buffer; true when there is more than this turn allowed.
  bool send_input(Instant now) {
    for (int i = 0; i < kChunksPerTurn; ++i) {
      if (staged_begin_ == staged_end_ && !stage_input(now)) return false;
      auto sent = tcp_.send(
          socket_, ByteView(staged_).subspan(staged_begin_, staged_end_ - staged_begin_), now);
      if (!sent) {
        if (sent.error().code != EAGAIN) fail(connection_failure(sent.error().code));
        return false;
      }
      staged_begin_ += *sent;
      if (staged_begin_ != staged_end_) return false;  // the send buffer is full
    }
    return true;
  }

  // Reads the next chunk of input while the socket has room for it; at the end of the input,
  // shuts down our sending side. False when there is nothing to send now.
  bool stage_input(Instant now) {
    if (input_.at_end()) {
      if (!shut_down_) {
        shut_down_ = static_cast<bool>(tcp_.shutdown(socket_, ShutdownHow::Write, now));
      }
      return false;
    }
    if (!(tcp_.events(socket_) & socket_event::kWritable)) return false;
    auto size = input_.read(staged_);
    if (!size) {
      if (size.error().code == EAGAIN) {
        waiting_for_input_ = true;
      } else {
        fail(size.error().message);
      }
      return false;
    }
    staged_begin_ = 0;
    staged_end_ = *size;
    if (*size == 0) return stage_input(now);  // the end: shut down now, not a turn later
    return true;
  }

  // Moves what the peer sent to the output; true when there is more than this turn allowed.
  bool receive_output(Instant now) {
    for (int i = 0; i < kChunksPerTurn && !end_of_stream_; ++i) {
      const size_t room = output_.writable_now();
      if (room == 0) {
        waiting_ = (tcp_.events(socket_) & socket_event::kReadable) != 0;
        return false;
      }
      auto size =
          tcp_.receive(socket_, MutableByteView(received_).first(std::min(room, kChunk)), now);
      if (!size) {
        if (size.error().code != EAGAIN) fail(connection_failure(size.error().code));
        return false;
      }
      end_of_stream_ = *size == 0;
      if (auto written = output_.write(ByteView(received_).first(*size)); !written) {
        fail(written.error().message);
        return false;
      }
    }
    return !end_of_stream_;
  }

  // A reset or timeout that neither direction ran into (both idle, or the output full).
  void check_error() {
    if (!failure_ && (tcp_.events(socket_) & socket_event::kError)) {
      fail(connection_failure(take_error()));
    }
  }

  bool both_directions_closed() const {
    return end_of_stream_ && shut_down_ && (tcp_.events(socket_) & socket_event::kClosed);
  }

  void check_deadlines(Instant now) {
    if (!connected_ && now >= connect_deadline_) {
      fail(fmt::format("connecting to {} timed out after {}{}", peer_,
                       seconds_text(handshake_limit_), unanswered_hint()));
    } else if (connected_ && now >= run_deadline_) {
      fail(fmt::format("connection to {} did not finish within --timeout {}", peer_,
                       seconds_text(*timeout_)));
    }
  }

  Duration time_left(Instant now) const {
    const Instant deadline = connected_ ? run_deadline_ : connect_deadline_;
    return deadline.is_never() ? Duration::max() : std::max(deadline - now, Duration::zero());
  }

  // The pending error of the socket (and clears it).
  int take_error() {
    const Status pending = tcp_.take_error(socket_);
    return pending ? 0 : pending.error().code;
  }

  std::string connection_failure(int error) const {
    switch (error) {
      case ECONNREFUSED:
        return fmt::format("connection to {} refused", peer_);
      case ECONNRESET:
        return fmt::format("connection to {} reset by peer", peer_);
      case ETIMEDOUT:
        return connected_
                   ? fmt::format("connection to {} timed out: the peer stopped answering", peer_)
                   : fmt::format("connecting to {} timed out: no answer to SYN{}", peer_,
                                 unanswered_hint());
      case EHOSTUNREACH:
        return fmt::format("cannot reach {}: no answer to {} (is the host up, on this link?)",
                           peer_, remote_ipv4_ ? "ARP" : "neighbour solicitation");
      case 0:
        return fmt::format("connection to {} closed before it was established", peer_);
      default:
        return fmt::format("connection to {} failed: {}", peer_, std::strerror(error));
    }
  }

  // RFC 2385 §2.0: a host drops, without a word, a segment that fails its MD5 check, so a
  // key mismatch looks like a peer that is not there.
  std::string unanswered_hint() const {
    return signed_ ? std::string(unanswered_signed_syn_hint()) : "";
  }

  // Records the first failure; the connection, if any, ends with a reset.
  void fail(std::string message) {
    if (!failure_) failure_ = std::move(message);
  }

  Tcp& tcp_;
  std::string peer_;  // "198.18.0.1:5000", "[2001:db8::1]:5000"
  bool remote_ipv4_;
  InputStream input_;
  OutputStream output_;
  SocketId socket_ = 0;
  std::vector<uint8_t> staged_;  // input read and not yet taken by the send buffer
  size_t staged_begin_ = 0;
  size_t staged_end_ = 0;
  std::vector<uint8_t> received_;
  Duration handshake_limit_;
  Instant connect_deadline_;
  Instant run_deadline_;
  std::optional<Duration> timeout_;
  bool connected_ = false;
  bool signed_ = false;  // a --md5 key covers the peer
  bool shut_down_ = false;      // our FIN is queued
  bool end_of_stream_ = false;  // the peer's FIN was read
  bool waiting_ = false;        // on an output that is not ready: poll again soon
  bool waiting_for_input_ = false;  // on an input with nothing ready
  EventLoop* loop_ = nullptr;       // watches the input, when it can be watched
  bool finished_ = false;       // both directions closed cleanly
  std::optional<std::string> failure_;
};

}  // namespace

int run_connect(const ConnectOptions& options) {
  // A reader of stdout that goes away is an error to report, not a reason to die silently.
  signal(SIGPIPE, SIG_IGN);
  auto input = InputStream::open(options.input_path);
  if (!input) return runtime_failure(input.error().message);
  auto output = OutputStream::open(options.output_path);
  if (!output) return runtime_failure(output.error().message);
  auto opened = Session::open(options.common);
  if (!opened) return runtime_failure(opened.error().message);
  Session& session = **opened;

  const Instant start = monotonic_now();
  Client client(session.stack().tcp(), options, std::move(*input), std::move(*output), start);
  client.start(options, start);
  client.watch_input_with(session.loop());
  const Status run = session.run([&](Instant now) { return client.step(now); });
  const int code = client.finish(session.stopped_by_signal(), monotonic_now());
  const Status finished = session.finish();
  if (!run) return runtime_failure(run.error().message);
  if (code != kExitSuccess) return code;
  if (!finished) return runtime_failure(finished.error().message);
  return kExitSuccess;
}

}  // namespace tapstack::cli
