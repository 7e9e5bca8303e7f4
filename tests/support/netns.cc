#include "tests/support/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "tap/netlink.h"
#include "tap/system_error.h"

namespace tapstack::testing {

std::optional<std::string> kernel_tests_unavailable() {
  if (geteuid() != 0) return "not running as root (kernel tests need a private network namespace)";
  const int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return fmt::format("cannot open /dev/net/tun: {}", errno_text(errno));
  close(fd);
  return std::nullopt;
}

void skip_test(std::string_view reason) {
  fmt::print("TAPSTACK_SKIPPED: {}\n", reason);
  std::fflush(stdout);
  std::exit(0);
}

Status enter_private_netns() {
  if (unshare(CLONE_NEWNET) != 0) return errno_error(errno, "unshare(CLONE_NEWNET)");
  return bring_loopback_up();
}

void enter_private_netns_or_skip() {
  if (const auto reason = kernel_tests_unavailable()) skip_test(*reason);
  if (unshare(CLONE_NEWNET) != 0) {
    skip_test(fmt::format("cannot make a private network namespace: unshare(CLONE_NEWNET): {}",
                          errno_text(errno)));
  }
  // Inside our own namespace this cannot lack permission: a failure is a real bug.
  if (auto status = bring_loopback_up(); !status) {
    fmt::print(stderr, "bringing lo up in the private namespace failed: {}\n",
               status.error().message);
    std::exit(1);
  }
}

TapDevice open_tap_in_private_netns(std::string_view name,
                                    std::optional<Ipv4Interface> kernel_address, size_t queues) {
  enter_private_netns_or_skip();
  auto tap = TapDevice::open(name, TapOffloads::None, queues);
  if (!tap) throw std::runtime_error(tap.error().message);
  auto netlink = Rtnetlink::open();
  if (!netlink) throw std::runtime_error(netlink.error().message);
  if (kernel_address) {
    if (auto added = netlink->add_ipv4_address(tap->name(), *kernel_address); !added) {
      throw std::runtime_error(added.error().message);
    }
  }
  if (auto up = netlink->set_link_up(tap->name()); !up)
    throw std::runtime_error(up.error().message);
  return std::move(*tap);
}

}  // namespace tapstack::testing
