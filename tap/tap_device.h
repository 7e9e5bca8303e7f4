// A Linux TAP device: the stack's end of a virtual Ethernet link whose other end is the
// kernel's network interface of the same name (drivers/net/tun.c, Documentation/networking/
// tuntap.rst). Reads and writes move whole Ethernet II frames, without packet information
// header (IFF_NO_PI), and never block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "stack/address.h"
#include "stack/bytes.h"
#include "stack/error.h"

namespace tapstack {

// Linux allows interface names of at most IFNAMSIZ - 1 = 15 bytes.
constexpr size_t kMaxInterfaceNameLength = 15;

// Whether Linux would accept name for an interface (Linux: dev_valid_name()); the Error says
// what is wrong with it.
Status check_interface_name(std::string_view name);

// What a TAP is opened for. With TcpOffloads every frame read and written starts with a
// virtio-net header (IFF_VNET_HDR), and the kernel is told the stack takes TCP segments of up
// to 64 KiB whose checksums it did not fill in (TUNSETOFFLOAD: TUN_F_CSUM, TUN_F_TSO4), and
// takes them from the stack too. Kernel to kernel, a socket hands its device 64 KiB at a time
// in the same way (TSO/GSO, GRO); a TAP without offloads costs a system call per segment.
enum class TapOffloads { None, TcpOffloads };

// Linux: struct virtio_net_hdr (include/uapi/linux/virtio_net.h), in the host's byte order.
constexpr size_t kVirtioNetHeaderSize = 10;

class TapDevice {
 public:
  // Creates the TAP interface `name` in the calling thread's network namespace, or attaches
  // to it if it exists already (a persistent TAP made with `ip tuntap add mode tap`). An
  // empty name lets the kernel choose one ("tap0", "tap1", ...). Created interfaces vanish
  // when the device is closed. Linux: tun_set_iff().
  static Result<TapDevice> open(std::string_view name, TapOffloads offloads = TapOffloads::None);

  TapDevice(TapDevice&& other) noexcept;
  TapDevice& operator=(TapDevice&& other) noexcept;
  TapDevice(const TapDevice&) = delete;
  TapDevice& operator=(const TapDevice&) = delete;
  ~TapDevice();

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  // Frames read and written start with a virtio-net header (TapOffloads::TcpOffloads).
  bool virtio_net_header() const { return virtio_net_header_; }

  // Reads one whole frame into buffer and returns its size; a frame longer than buffer is
  // cut to fit. Error EAGAIN (is_would_block()) when no frame is waiting.
  Result<size_t> read(MutableByteView buffer);
  // Writes one whole frame. Error EAGAIN when the kernel's queue for the device is full.
  Status write(ByteView frame);
  // Writes head and body as one frame (head: the virtio-net header).
  Status write(ByteView head, ByteView body);

  // The kernel side's view of the interface, through rtnetlink.
  Result<uint32_t> mtu() const;
  Status set_mtu(uint32_t mtu);
  Result<MacAddress> kernel_mac() const;

 private:
  TapDevice(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  int fd_ = -1;
  std::string name_;
  bool virtio_net_header_ = false;
};

}  // namespace tapstack
