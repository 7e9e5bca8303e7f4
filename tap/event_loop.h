// The event loop that drives a sans-I/O Stack from a TAP device and the monotonic clock:
// run due timers and the caller's hook; sleep in ppoll() until a frame arrives, the stack's
// next deadline comes or someone wakes the loop; drain the TAP; repeat until stopped.
// A multi-queue TAP is read through all its queues (the kernel spreads its frames over them by
// flow), and written through one transmit thread per queue.
#pragma once

#include <poll.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stack/error.h"
#include "stack/stack.h"
#include "stack/time.h"
#include "tap/memory_release.h"
#include "tap/tap_device.h"
#include "tap/transmit_queue.h"

namespace tapstack {

// Seen from the stack: Received came from the kernel side, Sent went to it.
enum class FrameDirection { Received, Sent };

struct EventLoopStats {
  uint64_t wakeups = 0;          // returns from ppoll()
  uint64_t frames_received = 0;  // read from the TAP and given to the stack
  uint64_t frames_sent = 0;      // written to the TAP
  uint64_t send_drops = 0;       // dropped because the TAP's queue was full (EAGAIN)
  uint64_t send_errors = 0;      // dropped because the write failed otherwise
};

struct EventLoopOptions {
  // Frames read per wake-up before timers and the hook get their turn, so that a flood
  // cannot starve them (shared by the queues of a multi-queue TAP). The next ppoll() returns
  // at once if more are waiting.
  size_t read_budget = 1024;
  // The longest run() sleeps with nothing to do; a hook that needs to run periodically sets
  // it. Duration::max(): sleep until a frame, a deadline or a wake-up.
  Duration max_sleep = Duration::max();
  // Frames leave through a transmit thread (tap/transmit_queue.h), one per queue of the TAP,
  // each holding up to this many bytes of them; 0 writes each frame to the TAP on the loop's
  // thread as it is made.
  size_t transmit_queue_bytes = 2 << 20;
  // When socket buffers freed this much, the allocator is asked to give free memory back to
  // the system (malloc_trim), at most once per second; 0: never (tap/memory_release.h).
  size_t release_freed_memory = 1 << 20;
};

class EventLoop {
 public:
  using Hook = std::function<void(Instant now)>;
  using FrameTap = std::function<void(FrameDirection direction, ByteView frame)>;

  // Installs a transmit sink on stack that writes each frame to tap. The tap and the stack
  // must outlive the loop; the sink is removed when the loop is destroyed. The caller calls
  // stack.start() after this, so that the stack's first frames leave through the TAP.
  static Result<std::unique_ptr<EventLoop>> create(TapDevice& tap, Stack& stack,
                                                   EventLoopOptions options = {});
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // Iterates until request_stop(). An Error means the TAP or ppoll() failed for good.
  Status run();
  // One iteration, sleeping at most max_wait (less when the stack has an earlier deadline).
  Status run_once(Duration max_wait);

  // Both are safe from any thread and from a signal handler (an atomic store and a write(2)
  // to an eventfd).
  void request_stop();
  void wake();
  bool stop_requested() const { return stop_.load(std::memory_order_acquire); }

  // Called once per iteration with the current time, before the loop sleeps: the place
  // where application code (sockets, a BGP speaker) runs on the loop's thread.
  void set_iteration_hook(Hook hook) { hook_ = std::move(hook); }
  // Also wakes the loop when fd is ready for events (POLLIN, POLLOUT), so that the hook runs
  // at once instead of at its next deadline: an application's input, say. events 0 stops
  // watching fd. The loop does nothing with fd itself.
  void watch(int fd, short events);
  // Sees every frame read from and written to the TAP, for example to write a pcap file.
  void set_frame_tap(FrameTap tap) { frame_tap_ = std::move(tap); }

  // Counts every frame handed to the loop so far: first waits until the transmit thread has
  // written what it holds.
  EventLoopStats stats() const;
  // The message of the last failed write other than EAGAIN; empty when there was none.
  std::string last_send_error() const;

 private:
  EventLoop(TapDevice& tap, Stack& stack, EventLoopOptions options, int wake_fd);
  void transmit(ByteView frame, const FrameOffload& offload);
  // Reads queue `queue` of the TAP until it is empty or budget frames were read.
  Status drain_tap(size_t queue, size_t& budget);
  void run_due_timers(Instant now);
  void clear_wakeups();

  TapDevice& tap_;
  Stack& stack_;
  EventLoopOptions options_;
  int wake_fd_;
  std::atomic<bool> stop_{false};
  Hook hook_;
  FrameTap frame_tap_;
  EventLoopStats stats_;
  std::string last_send_error_;
  std::vector<uint8_t> read_buffer_;
  std::vector<pollfd> poll_fds_;  // the TAP's queues, then wake_fd_
  size_t first_queue_ = 0;        // the queue drained first on the next wake-up, in turn
  std::unique_ptr<TransmitQueues> transmit_queues_;
  MemoryRelease memory_release_;
};

// While alive, SIGINT, SIGTERM and SIGHUP stop one loop; the previous handlers come back
// afterwards.
// One instance at a time.
class StopOnSignals {
 public:
  explicit StopOnSignals(EventLoop& loop);
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
  ~StopOnSignals();

  // The signal that stopped the loop, 0 if none did.
  int received() const;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
  struct sigaction previous_hup_ {};
};

// While alive, SIGUSR1 and SIGUSR2 are requests to the loop's owner, who carries on running
// (tapstack: SIGUSR1 writes the stats, SIGUSR2 prints the connection table): each sets a flag
// and wakes the loop. The previous handlers come back afterwards. One instance at a time.
class RequestSignals {
 public:
  explicit RequestSignals(EventLoop& loop);
  RequestSignals(const RequestSignals&) = delete;
  RequestSignals& operator=(const RequestSignals&) = delete;
  ~RequestSignals();

  // Whether signal_number (SIGUSR1 or SIGUSR2) came since the last call for it.
  bool take(int signal_number);

 private:
  struct sigaction previous_usr1_ {};
  struct sigaction previous_usr2_ {};
};

}  // namespace tapstack
