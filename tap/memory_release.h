// Hands the memory that socket buffers gave back to the allocator on to the system.
//
// The sans-I/O core frees an idle connection's buffers (after Tcp::kBufferTrimDelay) but
// cannot make a system call. glibc returns freed memory to the system only from the top of
// its heap, and socket buffers are spread all through it, so without help the resident set
// stays at its high-water mark: 10,000 connections that exchanged 1 KiB each way and went
// idle kept 149 MiB of free heap (docs/performance.md, "Memory per idle connection").
// malloc_trim(0) gives back every whole free page in the heap (madvise(MADV_DONTNEED)); it
// walks the heap's free chunks, tens of milliseconds for a large heap, so it runs only when
// enough was freed, and at most once per interval.
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/stack.h"
#include "stack/time.h"

namespace tapstack {

struct MemoryReleaseOptions {
  // Freed buffer bytes that make a release worth its cost; 0 turns releases off.
  size_t threshold = 1 << 20;
  // The shortest time between two releases: a burst of trims costs one walk of the heap.
  Duration min_interval = Duration::seconds(1);
};

class MemoryRelease {
 public:
  explicit MemoryRelease(MemoryReleaseOptions options = {}) : options_(options) {}

  // Takes the stack's count of freed buffer bytes (Tcp::take_freed_buffer_bytes()) and,
  // when they pass the threshold and the interval has passed, calls malloc_trim(0). True when
  // it did.
  bool poll(Stack& stack, Instant now);
  // When a release held back by min_interval becomes due; Instant::never() when none waits.
  // An event loop wakes up for it, or the memory would stay until the next frame.
  Instant next_deadline() const;

  size_t pending_bytes() const { return pending_; }
  uint64_t releases() const { return releases_; }

 private:
  MemoryReleaseOptions options_;
  size_t pending_ = 0;
  Instant last_release_ = Instant::never();
  uint64_t releases_ = 0;
};

}  // namespace tapstack
