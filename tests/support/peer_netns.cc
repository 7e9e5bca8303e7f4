#include "tests/support/peer_netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::testing {
namespace {

int open_thread_netns() {
  return open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
}

}  // namespace

// unshare() moves only the calling thread: a short-lived thread makes the namespace, and the
// descriptor keeps it alive after the thread is gone.
Result<PeerNamespace> PeerNamespace::create() {
  const int home = open_thread_netns();
  if (home < 0) return errno_error(errno, "opening this thread's network namespace");
  int peer = -1;
  int error = 0;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      error = errno;
      return;
    }
    peer = open_thread_netns();
    if (peer < 0) error = errno;
  }).join();
  if (peer < 0) {
    close(home);
    return errno_error(error, "making a second network namespace");
  }
  return PeerNamespace(peer, home);
}

PeerNamespace::PeerNamespace(PeerNamespace&& other) noexcept
    : peer_(std::exchange(other.peer_, -1)), home_(std::exchange(other.home_, -1)) {}

PeerNamespace::~PeerNamespace() {
  if (peer_ >= 0) close(peer_);
  if (home_ >= 0) close(home_);
}

std::string PeerNamespace::path() const {
  return fmt::format("/proc/{}/fd/{}", getpid(), peer_);
}

// Failing to switch would leave the thread in the wrong namespace, where nothing the test
// does afterwards is safe: stop at once.
void PeerNamespace::enter() const {
  if (setns(peer_, CLONE_NEWNET) != 0) std::abort();
}

void PeerNamespace::leave() const {
  if (setns(home_, CLONE_NEWNET) != 0) std::abort();
}

}  // namespace tapstack::testing
