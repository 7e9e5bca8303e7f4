// Kernel tests run inside a network namespace of their own, which dies with the test: no frame
// they make can reach the host's interfaces (see docs on testing over TAP).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "stack/address.h"
#include "stack/error.h"
#include "tap/tap_device.h"

namespace tapstack::testing {

// Why kernel tests cannot run in this environment (not root, no usable /dev/net/tun), or
// nullopt when they can.
std::optional<std::string> kernel_tests_unavailable();

// Prints "TAPSTACK_SKIPPED: <reason>" on stdout and exits 0. CI reads the line and counts the
// test as skipped, never as passed.
[[noreturn]] void skip_test(std::string_view reason);

// Moves the calling thread into a fresh network namespace (unshare(CLONE_NEWNET)) and brings
// its loopback up. Threads and processes started afterwards by this thread inherit it; call
// it while the process has a single thread.
Status enter_private_netns();

// The first line of a kernel test: skips the test (see skip_test) when it cannot run here or
// the namespace cannot be made; otherwise enters a fresh one. Each call makes a new namespace.
void enter_private_netns_or_skip();

// The first lines of most TAP tests: enter_private_netns_or_skip(), then the TAP `name` in the
// new namespace with its kernel side up, and kernel_address on that side when one is given;
// queues > 1: a multi-queue TAP with that many queues. Throws std::runtime_error, saying
// what failed, when the TAP or its setup does.
TapDevice open_tap_in_private_netns(std::string_view name,
                                    std::optional<Ipv4Interface> kernel_address = std::nullopt,
                                    size_t queues = 1);

}  // namespace tapstack::testing
