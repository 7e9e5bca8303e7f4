// Frame buffers: fixed-capacity storage that is allocated once and reused, so that the steady
// state moves frames without touching the heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"

namespace tapstack {

// Largest Ethernet II frame the stack handles: a 9000-byte jumbo MTU plus the 14-byte header.
constexpr size_t kMaxFrameSize = 9014;
constexpr size_t kEthernetHeaderSize = 14;

// What the link says of a frame beyond its bytes: the offloads of a virtio-net header, which
// a TAP opened with IFF_VNET_HDR puts before every frame (Linux: struct virtio_net_hdr,
// include/linux/virtio_net.h). All zero for a plain frame.
struct FrameOffload {
  // Received: the TCP checksum was left for a device to fill (the kernel's own segment,
  // VIRTIO_NET_HDR_F_NEEDS_CSUM) or was verified already (..._F_DATA_VALID): not checked.
  // Sent: the TCP checksum field holds the pseudo-header sum for the kernel to complete.
  bool checksum_offloaded = false;
  // A TCP segment carrying more than one MSS, cut by the kernel into segments of this much
  // payload when it has to be (TSO/GSO; received: GRO or the kernel's TSO). 0: not such.
  uint16_t segment_size = 0;
};

// What the link can take from the stack.
struct LinkOffloads {
  // TCP segments of up to 64 KiB, with FrameOffload::segment_size (Linux: NETIF_F_TSO).
  bool tcp_segmentation = false;
};

// The largest frame a link with TCP segmentation offload carries: an IPv4 datagram of
// 65535 bytes and the Ethernet header.
constexpr size_t kMaxOffloadFrameSize = 65535 + 14;

// Storage for one frame of up to `capacity` bytes (the MTU plus the Ethernet header).
struct FrameBuffer {
  explicit FrameBuffer(size_t capacity = kMaxFrameSize) : bytes(capacity) {}
  std::vector<uint8_t> bytes;
  size_t size = 0;

  ByteView view() const { return {bytes.data(), size}; }
};

// A bounded FIFO of frames waiting to be taken by poll_transmit(); its buffers are allocated
// at construction and reused.
class FrameRing {
 public:
  FrameRing(size_t capacity, size_t frame_size) : frames_(capacity, FrameBuffer(frame_size)) {}

  bool full() const { return count_ == frames_.size(); }
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  // The slot to fill; valid until push() or the next call. Only when !full().
  FrameBuffer& back_slot() { return frames_[(head_ + count_) % frames_.size()]; }
  void push() { ++count_; }
  FrameBuffer& front() { return frames_[head_]; }
  void pop() {
    head_ = (head_ + 1) % frames_.size();
    --count_;
  }

 private:
  std::vector<FrameBuffer> frames_;
  size_t head_ = 0;
  size_t count_ = 0;
};

// Where a layer hands a frame to the link: Ethernet II with our MAC as the source. The Stack
// is the one implementation (Linux: dev_queue_xmit()).
class EthernetOutput {
 public:
  virtual void emit_frame(const MacAddress& dst, uint16_t ethertype, ByteView payload,
                          const FrameOffload& offload) = 0;

 protected:
  ~EthernetOutput() = default;
};

}  // namespace tapstack
