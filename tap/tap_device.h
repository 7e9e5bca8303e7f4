// A Linux TAP device: the stack's end of a virtual Ethernet link whose other end is the
// kernel's network interface of the same name (drivers/net/tun.c, Documentation/networking/
// tuntap.rst). Reads and writes move whole Ethernet II frames, without packet information
// header (IFF_NO_PI), and never block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
// to 64 KiB whose checksums it did not fill in (TUNSETOFFLOAD: TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6), and
// takes them from the stack too. Kernel to kernel, a socket hands its device 64 KiB at a time
// in the same way (TSO/GSO, GRO); a TAP without offloads costs a system call per segment.
enum class TapOffloads { None, TcpOffloads };

// Linux: struct virtio_net_hdr (include/uapi/linux/virtio_net.h), in the host's byte order.
constexpr size_t kVirtioNetHeaderSize = 10;

// The most queues a TAP is opened with here. Linux allows MAX_TAP_QUEUES (256) per device;
// more queues than cores gain nothing, and each costs a transmit thread.
constexpr size_t kMaxTapQueues = 16;

class TapDevice {
 public:
  // Creates the TAP interface `name` in the calling thread's network namespace, or attaches
  // to it if it exists already (a persistent TAP made with `ip tuntap add mode tap`). An
  // empty name lets the kernel choose one ("tap0", "tap1", ...). Created interfaces vanish
  // when the device is closed. Linux: tun_set_iff().
  // queues > 1 opens that many queues of one multi-queue TAP (IFF_MULTI_QUEUE): each is a
  // file descriptor of its own, and the kernel runs the receive path of a frame written to a
  // queue on the writer's core, and spreads the frames it sends over the queues by flow
  // (tun_select_queue()). queues == 1 opens an ordinary single-queue TAP.
  static Result<TapDevice> open(std::string_view name, TapOffloads offloads = TapOffloads::None,
                                size_t queues = 1);

  TapDevice(TapDevice&& other) noexcept;
  TapDevice& operator=(TapDevice&& other) noexcept;
  TapDevice(const TapDevice&) = delete;
  TapDevice& operator=(const TapDevice&) = delete;
  ~TapDevice();

  // Queue 0's file descriptor: the only one of a single-queue TAP.
  int fd() const { return fds_.front(); }
  int fd(size_t queue) const { return fds_[queue]; }
  size_t queue_count() const { return fds_.size(); }
  const std::string& name() const { return name_; }
  // Frames read and written start with a virtio-net header (TapOffloads::TcpOffloads).
  bool virtio_net_header() const { return virtio_net_header_; }

  // Reads one whole frame from a queue into buffer and returns its size; a frame longer
  // than buffer is cut to fit. Error EAGAIN (is_would_block()) when no frame is waiting.
  Result<size_t> read(MutableByteView buffer) { return read(0, buffer); }
  Result<size_t> read(size_t queue, MutableByteView buffer);
  // Writes one whole frame. Error EAGAIN when the kernel's queue for the device is full.
  Status write(ByteView frame);
  // Writes head and body as one frame (head: the virtio-net header), to queue 0 or `queue`.
  Status write(ByteView head, ByteView body) { return write(0, head, body); }
  Status write(size_t queue, ByteView head, ByteView body);

  // The kernel side's view of the interface, through rtnetlink.
  Result<uint32_t> mtu() const;
  Status set_mtu(uint32_t mtu);
  Result<MacAddress> kernel_mac() const;

 private:
  explicit TapDevice(std::string name) : name_(std::move(name)) {}
  void close_all();

  std::vector<int> fds_;  // one per queue; never empty once open() returned it
  std::string name_;
  bool virtio_net_header_ = false;
};

}  // namespace tapstack
