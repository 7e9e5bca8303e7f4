#include "tap/event_loop.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "tap/clock.h"
#include "tap/system_error.h"

namespace tapstack {
namespace {

// Big enough for any frame the kernel hands a TAP: MTU up to 65535 without offloads, a 64 KiB
// TSO frame with them, and the virtio-net header before it.
constexpr size_t kReadBufferSize = kVirtioNetHeaderSize + kMaxOffloadFrameSize;
// Frames up to this size are written on the loop's thread when the transmit queue is idle.
constexpr size_t kDirectWriteMax = 128;

// The fields of struct virtio_net_hdr (include/uapi/linux/virtio_net.h), host byte order.
constexpr uint8_t kVirtioNeedsChecksum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kVirtioDataValid = 2;      // VIRTIO_NET_HDR_F_DATA_VALID
constexpr uint8_t kVirtioGsoNone = 0;        // VIRTIO_NET_HDR_GSO_NONE
constexpr uint8_t kVirtioGsoTcpV4 = 1;       // VIRTIO_NET_HDR_GSO_TCPV4
constexpr uint8_t kVirtioGsoTcpV6 = 4;       // VIRTIO_NET_HDR_GSO_TCPV6
constexpr uint16_t kTcpChecksumOffset = 16;  // where the checksum sits in a TCP header

uint16_t load_host16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}
void store_host16(uint8_t* p, uint16_t value) {
  std::memcpy(p, &value, sizeof value);
}

// What the kernel's header says of a frame it handed us. Linux: virtio_net_hdr_from_skb()
FrameOffload read_virtio_net_header(const uint8_t* header) {
  FrameOffload offload;
  offload.checksum_offloaded = (header[0] & (kVirtioNeedsChecksum | kVirtioDataValid)) != 0;
  if ((header[1] & 0x7f) != kVirtioGsoNone) offload.segment_size = load_host16(header + 4);
  return offload;
}

// The header for a frame of ours; only TCP segments carry offloads (over IPv6 without
// extension headers, as we send them). Linux reads it in virtio_net_hdr_to_skb().
void write_virtio_net_header(uint8_t* header, ByteView frame, const FrameOffload& offload) {
  std::memset(header, 0, kVirtioNetHeaderSize);
  if (!offload.checksum_offloaded) return;
  const bool ipv6 = load_be16(frame.data() + 12) == kEtherTypeIpv6;
  const size_t ip_header = ipv6 ? kIpv6HeaderSize : (frame[kEthernetHeaderSize] & 0x0f) * 4u;
  const size_t tcp_start = kEthernetHeaderSize + ip_header;
  const size_t tcp_header = (frame[tcp_start + 12] >> 4) * 4u;
  header[0] = kVirtioNeedsChecksum;
  if (offload.segment_size > 0) {
    header[1] = ipv6 ? kVirtioGsoTcpV6 : kVirtioGsoTcpV4;
    store_host16(header + 2, static_cast<uint16_t>(tcp_start + tcp_header));  // hdr_len
    store_host16(header + 4, offload.segment_size);                           // gso_size
  }
  store_host16(header + 6, static_cast<uint16_t>(tcp_start));  // csum_start
  store_host16(header + 8, kTcpChecksumOffset);                // csum_offset
}

timespec to_timespec(Duration d) {
  return timespec{static_cast<time_t>(d.ns() / 1'000'000'000),
                  static_cast<long>(d.ns() % 1'000'000'000)};
}

std::atomic<EventLoop*> g_signal_loop{nullptr};
std::atomic<int> g_received_signal{0};
static_assert(std::atomic<EventLoop*>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);

std::atomic<EventLoop*> g_request_loop{nullptr};
std::atomic<bool> g_usr1{false};
std::atomic<bool> g_usr2{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void note_request(int signal_number) {
  (signal_number == SIGUSR1 ? g_usr1 : g_usr2).store(true);
  if (EventLoop* loop = g_request_loop.load()) loop->wake();
}

void stop_on_signal(int signal_number) {
  g_received_signal.store(signal_number);
  if (EventLoop* loop = g_signal_loop.load()) loop->request_stop();
}

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create(TapDevice& tap, Stack& stack,
                                                     EventLoopOptions options) {
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return errno_error(errno, "creating the event loop's eventfd");
  return std::unique_ptr<EventLoop>(new EventLoop(tap, stack, options, wake_fd));
}

EventLoop::EventLoop(TapDevice& tap, Stack& stack, EventLoopOptions options, int wake_fd)
    : tap_(tap),
      stack_(stack),
      options_(options),
      wake_fd_(wake_fd),
      read_buffer_(kReadBufferSize),
      memory_release_(MemoryReleaseOptions{.threshold = options.release_freed_memory}) {
  for (size_t queue = 0; queue < tap_.queue_count(); ++queue) {
    poll_fds_.push_back({tap_.fd(queue), POLLIN, 0});
  }
  poll_fds_.push_back({wake_fd_, POLLIN, 0});
  if (options_.transmit_queue_bytes > 0) {
    transmit_queues_ = std::make_unique<TransmitQueues>(tap_, options_.transmit_queue_bytes);
  }
  stack_.set_transmit_sink(
      [this](ByteView frame, const FrameOffload& offload) { transmit(frame, offload); },
      LinkOffloads{.tcp_segmentation = tap_.virtio_net_header()});
}

EventLoop::~EventLoop() {
  stack_.set_transmit_sink({});
  transmit_queues_.reset();  // writes what they hold
  close(wake_fd_);
}

Status EventLoop::run() {
  while (!stop_requested()) {
    if (auto status = run_once(options_.max_sleep); !status) return status;
  }
  return Ok{};
}

// Timers and the hook run first, so that what they send leaves at once and the deadlines
// they arm bound this iteration's sleep; frames read at the end are the stack's to answer
// right away, and the next iteration's hook sees their effects.
Status EventLoop::run_once(Duration max_wait) {
  const Instant now = monotonic_now();
  run_due_timers(now);
  if (hook_) hook_(now);
  memory_release_.poll(stack_, now);

  const Instant deadline = std::min(stack_.next_deadline(), memory_release_.next_deadline());
  Duration sleep = max_wait;
  if (!deadline.is_never()) {
    sleep = std::clamp(deadline - monotonic_now(), Duration::zero(), max_wait);
  }
  const timespec timeout = to_timespec(sleep);

  const size_t queues = tap_.queue_count();
  const int ready = ppoll(poll_fds_.data(), poll_fds_.size(),
                          sleep == Duration::max() ? nullptr : &timeout, nullptr);
  if (ready < 0 && errno != EINTR) return errno_error(errno, "waiting in ppoll()");
  ++stats_.wakeups;
  if (ready <= 0) return Ok{};

  if (poll_fds_[queues].revents & POLLIN) clear_wakeups();
  for (size_t queue = 0; queue < queues; ++queue) {
    if (poll_fds_[queue].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      return Error{EIO, fmt::format("TAP interface '{}' failed or was removed", tap_.name())};
    }
  }
  // Each wake-up starts at the next queue, so that a flood on one cannot starve the others.
  size_t budget = options_.read_budget;
  const size_t first = first_queue_;
  first_queue_ = (first_queue_ + 1) % queues;
  // One burst for the stack: what this wake-up reads is acknowledged once, at its end (as GRO
  // makes Linux acknowledge one NIC poll), which saves the kernel a receive path per ACK.
  stack_.begin_burst();
  Status status = Ok{};
  for (size_t i = 0; i < queues && status; ++i) {
    const size_t queue = (first + i) % queues;
    if (poll_fds_[queue].revents & POLLIN) status = drain_tap(queue, budget);
  }
  stack_.end_burst(monotonic_now());
  return status;
}

void EventLoop::watch(int fd, short events) {
  // poll_fds_: the TAP's queues, the wake-up eventfd, then the watched descriptors.
  const auto watched = poll_fds_.begin() + static_cast<std::ptrdiff_t>(tap_.queue_count() + 1);
  const auto it =
      std::find_if(watched, poll_fds_.end(), [fd](const pollfd& entry) { return entry.fd == fd; });
  if (events == 0) {
    if (it != poll_fds_.end()) poll_fds_.erase(it);
  } else if (it != poll_fds_.end()) {
    it->events = events;
  } else {
    poll_fds_.push_back({fd, events, 0});
  }
}

void EventLoop::request_stop() {
  stop_.store(true, std::memory_order_release);
  wake();
}

void EventLoop::wake() {
  const uint64_t one = 1;
  // Fails only when the counter is about to overflow, and then the loop is awake anyway.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

void EventLoop::clear_wakeups() {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t size = ::read(wake_fd_, &count, sizeof count);
}

// Reads until the queue has nothing more (or the budget is spent): one wake-up, many frames.
Status EventLoop::drain_tap(size_t queue, size_t& budget) {
  for (; budget > 0; --budget) {
    auto size = tap_.read(queue, read_buffer_);
    if (!size) return is_would_block(size.error()) ? Status(Ok{}) : Status(size.error());
    ByteView frame(read_buffer_.data(), *size);
    FrameOffload offload;
    if (tap_.virtio_net_header()) {
      if (frame.size() < kVirtioNetHeaderSize) continue;
      offload = read_virtio_net_header(frame.data());
      frame = frame.subspan(kVirtioNetHeaderSize);
    }
    ++stats_.frames_received;
    if (frame_tap_) frame_tap_(FrameDirection::Received, frame);
    stack_.on_frame(frame, monotonic_now(), offload);
  }
  return Ok{};
}

void EventLoop::run_due_timers(Instant now) {
  if (stack_.next_deadline() <= now) stack_.on_timer(now);
}

// The stack's transmit sink. Through the transmit thread it waits while that thread's ring is
// full; a write the kernel refuses with EAGAIN drops the frame, as a full device queue does in
// Linux (the stack's own retransmission recovers what matters).
void EventLoop::transmit(ByteView frame, const FrameOffload& offload) {
  uint8_t header[kVirtioNetHeaderSize];
  ByteView head;
  if (tap_.virtio_net_header()) {
    write_virtio_net_header(header, frame, offload);
    head = header;
  }
  // A short frame (an ACK, ARP) goes out at once when nothing waits before it on its flow's
  // queue: handing it to a transmit thread would cost a wake-up more than the write itself.
  // Data frames, whose writes carry the kernel's receive work, go through the threads.
  const size_t queue = transmit_queues_ ? transmit_queues_->queue_of(frame) : 0;
  if (transmit_queues_ && (frame.size() > kDirectWriteMax || !(*transmit_queues_)[queue].idle())) {
    if (frame_tap_) frame_tap_(FrameDirection::Sent, frame);
    if (!(*transmit_queues_)[queue].push(head, frame)) ++stats_.send_errors;
    return;
  }
  const auto written = tap_.write(queue, head, frame);
  if (written) {
    ++stats_.frames_sent;
    if (frame_tap_) frame_tap_(FrameDirection::Sent, frame);
  } else if (is_would_block(written.error())) {
    ++stats_.send_drops;
  } else {
    ++stats_.send_errors;
    last_send_error_ = written.error().message;
  }
}

EventLoopStats EventLoop::stats() const {
  EventLoopStats stats = stats_;
  if (transmit_queues_) {
    transmit_queues_->flush();
    const TransmitQueueStats queued = transmit_queues_->stats();
    stats.frames_sent += queued.frames_sent;
    stats.send_drops += queued.send_drops;
    stats.send_errors += queued.send_errors;
  }
  return stats;
}

std::string EventLoop::last_send_error() const {
  if (transmit_queues_) {
    transmit_queues_->flush();
    if (std::string error = transmit_queues_->last_error(); !error.empty()) return error;
  }
  return last_send_error_;
}

StopOnSignals::StopOnSignals(EventLoop& loop) {
  g_received_signal.store(0);
  g_signal_loop.store(&loop);
  struct sigaction action {};
  action.sa_handler = stop_on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
  // A terminal that goes away sends SIGHUP; a daemon takes it as "reload". Either way the
  // program ends cleanly rather than dying, and may say what SIGHUP meant to it.
  sigaction(SIGHUP, &action, &previous_hup_);
}

StopOnSignals::~StopOnSignals() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
  sigaction(SIGHUP, &previous_hup_, nullptr);
  g_signal_loop.store(nullptr);
}

int StopOnSignals::received() const {
  return g_received_signal.load();
}

RequestSignals::RequestSignals(EventLoop& loop) {
  g_usr1.store(false);
  g_usr2.store(false);
  g_request_loop.store(&loop);
  struct sigaction action {};
  action.sa_handler = note_request;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, &previous_usr1_);
  sigaction(SIGUSR2, &action, &previous_usr2_);
}

RequestSignals::~RequestSignals() {
  sigaction(SIGUSR1, &previous_usr1_, nullptr);
  sigaction(SIGUSR2, &previous_usr2_, nullptr);
  g_request_loop.store(nullptr);
}

bool RequestSignals::take(int signal_number) {
  return (signal_number == SIGUSR1 ? g_usr1 : g_usr2).exchange(false);
}

}  // namespace tapstack
