#include "tests/md5_kernel/veth.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tap/netlink.h"
#include "tap/system_error.h"

namespace tapstack::md5kernel {
namespace {

// An RTM_NEWLINK request with nested attributes (rtnetlink(7): each attribute and the message
// padded to 4 bytes; a nest is an attribute whose length covers the attributes inside it).
class LinkRequest {
 public:
  LinkRequest() {
    nlmsghdr header{};
    header.nlmsg_type = RTM_NEWLINK;
    header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    append(&header, sizeof header);
    interface_header();
  }
  void interface_header() {
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    append(&info, sizeof info);
  }
  void attribute(uint16_t type, const void* data, size_t size) {
    const rtattr header{static_cast<uint16_t>(RTA_LENGTH(size)), type};
    append(&header, sizeof header);
    append(data, size);
  }
  void name(uint16_t type, std::string_view text) {
    const std::string terminated(text);
    attribute(type, terminated.c_str(), terminated.size() + 1);
  }
  size_t begin_nest(uint16_t type) {
    const size_t at = bytes_.size();
    attribute(type, nullptr, 0);
    return at;
  }
  void end_nest(size_t at) {
    const auto length = static_cast<uint16_t>(bytes_.size() - at);
    std::memcpy(&bytes_[at], &length, sizeof length);
  }
  std::vector<uint8_t>& finish() {
    const auto length = static_cast<uint32_t>(bytes_.size());
    std::memcpy(&bytes_[0], &length, sizeof length);
    return bytes_;
  }

 private:
  void append(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), bytes, bytes + size);
    bytes_.resize(NLMSG_ALIGN(bytes_.size()));
  }
  std::vector<uint8_t> bytes_;
};

Status transact(std::vector<uint8_t>& request) {
  const Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (fd.get() < 0) return errno_error(errno, "netlink socket");
  const timeval timeout{2, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd.get(), request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) < 0) {
    return errno_error(errno, "netlink send");
  }
  alignas(nlmsghdr) uint8_t answer[4096];
  const ssize_t size = recv(fd.get(), answer, sizeof answer, 0);
  if (size < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr)))) {
    return errno_error(size < 0 ? errno : EPROTO, "netlink answer");
  }
  const auto* header = reinterpret_cast<const nlmsghdr*>(answer);
  const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
  if (header->nlmsg_type != NLMSG_ERROR) return Error{EPROTO, "netlink: no acknowledgement"};
  if (error->error != 0) return errno_error(-error->error, "creating the veth pair");
  return Ok{};
}

}  // namespace

Result<Fd> new_network_namespace() {
  Result<Fd> result = Error{EINVAL, "not run"};
  // unshare() moves only the calling thread: a thread of its own makes the namespace.
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      result = errno_error(errno, "unshare(CLONE_NEWNET)");
      return;
    }
    if (auto up = bring_loopback_up(); !up) {
      result = up.error();
      return;
    }
    Fd fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      result = errno_error(errno, "opening the namespace");
      return;
    }
    result = std::move(fd);
  }).join();
  return result;
}

Status enter_network_namespace(const Fd& netns) {
  if (setns(netns.get(), CLONE_NEWNET) != 0) return errno_error(errno, "setns(CLONE_NEWNET)");
  return Ok{};
}

Status add_veth_pair(std::string_view name, std::string_view peer_name, const Fd& netns) {
  LinkRequest request;
  request.name(IFLA_IFNAME, name);
  const size_t link_info = request.begin_nest(IFLA_LINKINFO);
  request.name(IFLA_INFO_KIND, "veth");
  const size_t info_data = request.begin_nest(IFLA_INFO_DATA);
  const size_t peer = request.begin_nest(VETH_INFO_PEER);
  request.interface_header();
  request.name(IFLA_IFNAME, peer_name);
  const uint32_t netns_fd = static_cast<uint32_t>(netns.get());
  request.attribute(IFLA_NET_NS_FD, &netns_fd, sizeof netns_fd);
  request.end_nest(peer);
  request.end_nest(info_data);
  request.end_nest(link_info);
  return transact(request.finish());
}

}  // namespace tapstack::md5kernel
