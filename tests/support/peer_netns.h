// A second network namespace beside the calling thread's, for a kernel peer that must not
// share its routing table: the far end of a veth pair, or a host behind a bridge. It dies
// with the last descriptor to it (this object's, and those of interfaces moved into it).
#pragma once

#include <string>

#include "stack/error.h"

namespace tapstack::testing {

class PeerNamespace {
 public:
  static Result<PeerNamespace> create();
  PeerNamespace(PeerNamespace&& other) noexcept;
  PeerNamespace& operator=(PeerNamespace&&) = delete;
  PeerNamespace(const PeerNamespace&) = delete;
  PeerNamespace& operator=(const PeerNamespace&) = delete;
  ~PeerNamespace();

  // "/proc/PID/fd/N": what `ip link set DEV netns` and `ip link add ... netns` take.
  std::string path() const;

  // Runs fn with the calling thread in this namespace, then takes the thread back to where
  // it was. Sockets made meanwhile stay in this namespace, whichever thread uses them later;
  // child processes started meanwhile run in it.
  template <typename Fn>
  auto within(Fn fn) const {
    enter();
    struct Home {
      const PeerNamespace* peer;
      ~Home() { peer->leave(); }
    } home{this};
    return fn();
  }

 private:
  PeerNamespace(int peer, int home) : peer_(peer), home_(home) {}
  void enter() const;
  void leave() const;

  int peer_ = -1;
  int home_ = -1;
};

}  // namespace tapstack::testing
