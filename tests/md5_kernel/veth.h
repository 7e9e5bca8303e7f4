// Two network namespaces joined by a veth pair, for the kernel-to-kernel side of the benchmark:
// `ip link add NAME type veth peer name PEER netns NS`, through rtnetlink.
#pragma once

#include <string_view>

#include "stack/error.h"
#include "tests/md5_kernel/kernel_side.h"

namespace tapstack::md5kernel {

// A new network namespace with lo up, held open by the returned descriptor (the calling
// thread stays where it was).
Result<Fd> new_network_namespace();
// Moves the calling thread into the namespace `netns` refers to. Linux: setns(CLONE_NEWNET)
Status enter_network_namespace(const Fd& netns);
// Creates the pair: `name` in the calling thread's namespace, `peer_name` in netns's.
// Linux: veth_newlink()
Status add_veth_pair(std::string_view name, std::string_view peer_name, const Fd& netns);

}  // namespace tapstack::md5kernel
