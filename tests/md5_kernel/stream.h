// Byte-exact streams between a kernel socket and a stack socket. Byte i of stream `seed` is a
// function of (seed, i), so each end can send megabytes without storing them and the receiver's
// SHA-256 says whether what arrived is what was sent. Both ends move towards a Goal, which a
// test may raise in phases (send some, pause, send more) on the same connection.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stack/bytes.h"
#include "stack/tcp/tcp.h"
#include "stack/time.h"
#include "tests/support/byte_pattern.h"

namespace tapstack::md5kernel {

using Deadline = std::chrono::steady_clock::time_point;

inline Deadline deadline_in(Duration time) {
  return std::chrono::steady_clock::now() + std::chrono::nanoseconds(time.ns());
}

// The byte patterns and SHA-256 of tests/support, shared with the other kernel tests.
using testing::Digest;
using testing::fill_pattern;
using testing::hex;
using testing::pattern_digest;
using testing::Sha256;

// Where one end of a stream is to get: `send` bytes sent in all and `receive` received in all;
// with finish, it then shuts down writing and reads until the peer's end of stream.
struct Goal {
  uint64_t send = 0;
  uint64_t receive = 0;
  bool finish = false;
};

// What both kinds of end have in common: the pattern going out, the digest of what came in.
class StreamEnd {
 public:
  explicit StreamEnd(uint64_t seed) : seed_(seed) {}
  uint64_t sent() const { return sent_; }
  uint64_t received() const { return received_; }
  bool end_of_stream() const { return end_of_stream_; }
  const std::string& error() const { return error_; }
  bool reached(const Goal& goal) const;
  // Whether the bytes received are exactly the first `size` bytes of stream peer_seed. Call
  // once, at the end.
  bool received_exactly(uint64_t peer_seed, uint64_t size);

 protected:
  // The next bytes to send, at most `limit` of them (never more than 64 KiB).
  ByteView next_out(uint64_t limit);
  void on_sent(size_t n) { sent_ += n; }
  void on_received(ByteView data);

  uint64_t seed_;
  uint64_t sent_ = 0;
  uint64_t out_offset_ = 0;  // where out_ starts in the stream
  uint64_t received_ = 0;
  bool end_of_stream_ = false;
  bool shut_ = false;
  std::string error_;
  Sha256 sha_;
  std::vector<uint8_t> out_;
  std::vector<uint8_t> in_ = std::vector<uint8_t>(64 * 1024);
};

// A kernel socket's end, run on a thread of its own (the kernel peer).
class KernelStream : public StreamEnd {
 public:
  KernelStream(int fd, uint64_t seed) : StreamEnd(seed), fd_(fd) {}
  // Moves bytes until goal is reached (true), an error, or the deadline. each_turn runs at
  // least every 10 ms, on this thread.
  bool run(const Goal& goal, Deadline deadline, const std::function<void()>& each_turn = {});

 private:
  void send_some(const Goal& goal);
  void receive_some();
  int fd_;
};

// A stack socket's end, pumped from the event loop's hook on the loop's thread.
class StackStream : public StreamEnd {
 public:
  StackStream(Tcp& tcp, SocketId id, uint64_t seed) : StreamEnd(seed), tcp_(tcp), id_(id) {}
  void set_goal(const Goal& goal) { goal_ = goal; }
  bool reached() const { return StreamEnd::reached(goal_); }
  // Moves as many bytes in and out as the socket takes and gives now.
  void pump(Instant now);

 private:
  Tcp& tcp_;
  SocketId id_;
  Goal goal_;
};

}  // namespace tapstack::md5kernel
