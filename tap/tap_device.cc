#include "tap/tap_device.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "tap/netlink.h"
#include "tap/system_error.h"

namespace tapstack {
namespace {

constexpr const char* kTunPath = "/dev/net/tun";

Error open_tun_error(int code) {
  switch (code) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return Error{code, fmt::format("{} is missing ({}): load the tun module with `modprobe "
                                     "tun`, or run where {} exists (a container needs "
                                     "`--device /dev/net/tun`)",
                                     kTunPath, errno_text(code), kTunPath)};
    case EACCES:
    case EPERM:
      return Error{code, fmt::format("cannot open {} ({}): run as root, or make it readable "
                                     "and writable and grant the program CAP_NET_ADMIN with "
                                     "`setcap cap_net_admin+ep <program>`",
                                     kTunPath, errno_text(code))};
    default:
      return errno_error(code, fmt::format("opening {}", kTunPath));
  }
}

Error attach_error(int code, std::string_view name) {
  switch (code) {
    case EPERM:
      return Error{code, fmt::format("creating TAP interface '{}' {}", name, kNeedNetAdmin)};
    case EBUSY:
      return Error{code, fmt::format("TAP interface '{}' is busy: another process has it open; "
                                     "stop that process or choose another name",
                                     name)};
    case EINVAL:
      return Error{code, fmt::format("interface '{}' exists and is not a TAP device; choose "
                                     "another name",
                                     name)};
    default:
      return errno_error(code, fmt::format("creating TAP interface '{}'", name));
  }
}

}  // namespace

Status check_interface_name(std::string_view name) {
  if (name.empty()) return Error{EINVAL, "interface name is empty"};
  if (name.size() > kMaxInterfaceNameLength) {
    return Error{ENAMETOOLONG,
                 fmt::format("interface name '{}' is {} characters long; Linux allows at most {} "
                             "(IFNAMSIZ-1)",
                             name, name.size(), kMaxInterfaceNameLength)};
  }
  if (name == "." || name == "..") {
    return Error{EINVAL, fmt::format("'{}' is not a valid interface name", name)};
  }
  for (const char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || c == '\0') {
      return Error{EINVAL, fmt::format("interface name '{}' contains '/', ':' or white space, "
                                       "which Linux does not allow",
                                       name)};
    }
  }
  return Ok{};
}

namespace {

// Attaches fd to the TAP `name` as TUNSETIFF with flags would; false with errno set when the
// kernel refuses.
bool set_interface(int fd, std::string_view name, short flags, std::string& attached_name) {
  ifreq request{};
  request.ifr_flags = flags;
  std::memcpy(request.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &request) != 0) return false;
  attached_name.assign(request.ifr_name, strnlen(request.ifr_name, IFNAMSIZ));
  return true;
}

// Linux's tun_set_iff() answers EINVAL both for an interface that is no TAP and for a TAP
// whose IFF_MULTI_QUEUE differs from the request's. Asking again with the flag flipped tells
// them apart; a probe that attaches is closed at once, which leaves a persistent TAP as it was.
bool multi_queue_differs(std::string_view name, short flags) {
  const int probe = ::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (probe < 0) return false;
  std::string ignored;
  const bool attached =
      set_interface(probe, name, static_cast<short>(flags ^ IFF_MULTI_QUEUE), ignored);
  const int code = errno;
  close(probe);
  return attached || code == EBUSY;
}

Error multi_queue_error(std::string_view name, size_t queues) {
  if (queues > 1) {
    return Error{EINVAL, fmt::format("TAP interface '{}' exists and was made without multi-queue, "
                                     "so it cannot take --tap-queues {}: use --tap-queues 1, or "
                                     "delete it (ip link del {}) and let tapstack create it, or "
                                     "make it with `ip tuntap add dev {} mode tap multi_queue`",
                                     name, queues, name, name)};
  }
  return Error{EINVAL, fmt::format("TAP interface '{}' exists and was made with multi-queue: use "
                                   "--tap-queues 2 or more, or delete it (ip link del {})",
                                   name, name)};
}

}  // namespace

Result<TapDevice> TapDevice::open(std::string_view name, TapOffloads offloads, size_t queues) {
  if (!name.empty()) {
    if (auto valid = check_interface_name(name); !valid) return valid.error();
  }
  if (queues < 1 || queues > kMaxTapQueues) {
    return Error{EINVAL,
                 fmt::format("a TAP is opened with 1 to {} queues, not {}", kMaxTapQueues, queues)};
  }
  TapDevice device{std::string(name)};
  const bool offload = offloads == TapOffloads::TcpOffloads;
  const bool multi_queue = queues > 1;
  const short flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0) |
                                         (multi_queue ? IFF_MULTI_QUEUE : 0));
  for (size_t queue = 0; queue < queues; ++queue) {
    const int fd = ::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return open_tun_error(errno);
    device.fds_.push_back(fd);
    // The first queue creates the interface (or attaches to it), the others attach to the
    // interface by the name it got: Linux's tun_attach() for each.
    const std::string_view attach_to = queue == 0 ? name : std::string_view(device.name_);
    if (!set_interface(fd, attach_to, flags, device.name_)) {
      const int code = errno;
      if (code == EINVAL && !attach_to.empty() && multi_queue_differs(attach_to, flags)) {
        return multi_queue_error(attach_to, queues);
      }
      return attach_error(code, attach_to);
    }
  }
  if (offload) {
    device.virtio_net_header_ = true;
    // Both are settings of the device, not of a queue: set through the first.
    int size = kVirtioNetHeaderSize;
    if (ioctl(device.fd(), TUNSETVNETHDRSZ, &size) != 0) {
      return errno_error(errno,
                         fmt::format("setting the virtio-net header size of '{}'", device.name_));
    }
    // Linux: tun_set_offload() → the device's features gain NETIF_F_HW_CSUM, NETIF_F_TSO
    // and NETIF_F_TSO6.
    if (ioctl(device.fd(), TUNSETOFFLOAD,
              static_cast<unsigned long>(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) != 0) {
      return errno_error(errno, fmt::format("turning on TCP offloads of '{}'", device.name_));
    }
  }
  return device;
}

TapDevice::TapDevice(TapDevice&& other) noexcept
    : fds_(std::exchange(other.fds_, {})),
      name_(std::move(other.name_)),
      virtio_net_header_(other.virtio_net_header_) {}

TapDevice& TapDevice::operator=(TapDevice&& other) noexcept {
  if (this != &other) {
    close_all();
    fds_ = std::exchange(other.fds_, {});
    name_ = std::move(other.name_);
    virtio_net_header_ = other.virtio_net_header_;
  }
  return *this;
}

TapDevice::~TapDevice() {
  close_all();
}

void TapDevice::close_all() {
  for (const int fd : fds_) close(fd);
  fds_.clear();
}

Result<size_t> TapDevice::read(size_t queue, MutableByteView buffer) {
  for (;;) {
    const ssize_t size = ::read(fds_[queue], buffer.data(), buffer.size());
    if (size >= 0) return static_cast<size_t>(size);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return would_block_error();
    return errno_error(errno, fmt::format("reading from TAP interface '{}'", name_));
  }
}

Status TapDevice::write(ByteView frame) {
  return write({}, frame);
}

Status TapDevice::write(size_t queue, ByteView head, ByteView body) {
  iovec parts[2] = {{const_cast<uint8_t*>(head.data()), head.size()},
                    {const_cast<uint8_t*>(body.data()), body.size()}};
  const size_t total = head.size() + body.size();
  for (;;) {
    const ssize_t size = head.empty() ? ::write(fds_[queue], body.data(), body.size())
                                      : ::writev(fds_[queue], parts, 2);
    if (size == static_cast<ssize_t>(total)) return Ok{};
    if (size >= 0) {
      return Error{EIO, fmt::format("writing to TAP interface '{}': {} of {} bytes written", name_,
                                    size, total)};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return would_block_error();
    // Linux: tun_get_user() refuses frames with EIO while the interface is down.
    if (errno == EIO) {
      return errno_error(EIO, fmt::format("writing to TAP interface '{}' (is it up?)", name_));
    }
    return errno_error(errno, fmt::format("writing to TAP interface '{}'", name_));
  }
}

Result<uint32_t> TapDevice::mtu() const {
  auto netlink = Rtnetlink::open();
  if (!netlink) return netlink.error();
  auto link = netlink->link(name_);
  if (!link) return link.error();
  return link->mtu;
}

Status TapDevice::set_mtu(uint32_t mtu) {
  auto netlink = Rtnetlink::open();
  if (!netlink) return netlink.error();
  return netlink->set_mtu(name_, mtu);
}

Result<MacAddress> TapDevice::kernel_mac() const {
  auto netlink = Rtnetlink::open();
  if (!netlink) return netlink.error();
  auto link = netlink->link(name_);
  if (!link) return link.error();
  return link->mac;
}

}  // namespace tapstack
