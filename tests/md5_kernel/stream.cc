#include "tests/md5_kernel/stream.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::md5kernel {
namespace {

constexpr size_t kChunk = 64 * 1024;

}  // namespace

bool StreamEnd::reached(const Goal& goal) const {
  if (!error_.empty() || sent_ < goal.send) return false;
  return goal.finish ? shut_ && end_of_stream_ : received_ >= goal.receive;
}

bool StreamEnd::received_exactly(uint64_t peer_seed, uint64_t size) {
  return received_ == size && sha_.finish() == pattern_digest(peer_seed, size);
}

ByteView StreamEnd::next_out(uint64_t limit) {
  if (sent_ < out_offset_ || sent_ >= out_offset_ + out_.size()) {
    out_.resize(kChunk);
    fill_pattern(seed_, sent_, out_);
    out_offset_ = sent_;
  }
  const size_t begin = static_cast<size_t>(sent_ - out_offset_);
  return ByteView(out_).subspan(begin, std::min<uint64_t>(out_.size() - begin, limit));
}

void StreamEnd::on_received(ByteView data) {
  sha_.update(data);
  received_ += data.size();
}

bool KernelStream::run(const Goal& goal, Deadline deadline,
                       const std::function<void()>& each_turn) {
  for (;;) {
    if (each_turn) each_turn();
    if (!error_.empty()) return false;
    if (reached(goal)) return true;
    if (std::chrono::steady_clock::now() >= deadline) {
      error_ = fmt::format("kernel stream timed out: sent {} of {}, received {}", sent_, goal.send,
                           received_);
      return false;
    }
    const bool wants_out = sent_ < goal.send || (goal.finish && !shut_);
    pollfd entry{fd_, static_cast<short>((end_of_stream_ ? 0 : POLLIN) | (wants_out ? POLLOUT : 0)),
                 0};
    if (poll(&entry, 1, 10) <= 0) continue;
    if (entry.revents & (POLLIN | POLLERR | POLLHUP)) receive_some();
    if (error_.empty() && (entry.revents & POLLOUT)) send_some(goal);
  }
}

void KernelStream::send_some(const Goal& goal) {
  if (sent_ == goal.send) {
    if (goal.finish && ::shutdown(fd_, SHUT_WR) != 0) error_ = "shutdown: " + errno_text(errno);
    shut_ = goal.finish;
    return;
  }
  const ByteView data = next_out(goal.send - sent_);
  const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n > 0) on_sent(static_cast<size_t>(n));
  if (n < 0 && errno != EAGAIN && errno != EINTR) error_ = "send: " + errno_text(errno);
}

void KernelStream::receive_some() {
  const ssize_t n = ::recv(fd_, in_.data(), in_.size(), MSG_DONTWAIT);
  if (n < 0 && errno != EAGAIN && errno != EINTR) error_ = "recv: " + errno_text(errno);
  if (n == 0) end_of_stream_ = true;
  if (n > 0) on_received(ByteView(in_).first(static_cast<size_t>(n)));
}

void StackStream::pump(Instant now) {
  while (error_.empty() && sent_ < goal_.send) {
    const auto n = tcp_.send(id_, next_out(goal_.send - sent_), now);
    if (!n) {
      if (n.error().code != EAGAIN) error_ = "stack send: " + n.error().message;
      break;
    }
    on_sent(*n);
  }
  if (error_.empty() && goal_.finish && sent_ == goal_.send && !shut_) {
    if (const Status shut = tcp_.shutdown(id_, ShutdownHow::Write, now); !shut) {
      error_ = "stack shutdown: " + shut.error().message;
    }
    shut_ = true;
  }
  while (error_.empty() && !end_of_stream_) {
    const auto n = tcp_.receive(id_, in_, now);
    if (!n) {
      if (n.error().code != EAGAIN) error_ = "stack receive: " + n.error().message;
      break;
    }
    if (*n == 0) end_of_stream_ = true;
    on_received(ByteView(in_).first(*n));
  }
}

}  // namespace tapstack::md5kernel
