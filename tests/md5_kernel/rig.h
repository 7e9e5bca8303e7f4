// The stage of every test here: in a private network namespace made for the test, a TAP device
// whose kernel side is 198.18.0.1/24 (and 2001:db8::1/64 for IPv6) and whose other side is the
// stack at 198.18.0.2/24 (and 2001:db8::2/64), driven
// by an EventLoop on the calling thread, with a log of every TCP segment that crossed the link.
// Kernel peers run on threads of their own (started after the namespace, so they share it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "stack/address.h"
#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tap/event_loop.h"
#include "tap/tap_device.h"

namespace tapstack::md5kernel {

inline constexpr Ipv4Interface kKernelInterface = {Ipv4Address::from_octets(198, 18, 0, 1), 24};
inline constexpr Ipv4Interface kStackInterface = {Ipv4Address::from_octets(198, 18, 0, 2), 24};
inline constexpr Ipv4Address kKernel = kKernelInterface.address;
inline constexpr Ipv4Address kStack = kStackInterface.address;
// With IpFamily::Ipv6 the rig is dual-stack: these beside the IPv4 addresses.
inline const IpAddress kKernel6 = *IpAddress::parse("2001:db8::1");
inline const IpAddress kStack6 = *IpAddress::parse("2001:db8::2");
inline constexpr MacAddress kStackMac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
inline constexpr const char* kTapName = "tap0";
// The seed's server.c and client.c: port 6666, key "12345".
inline constexpr uint16_t kSeedPort = 6666;
inline constexpr const char* kSeedKey = "12345";

// One TCP segment on the link.
struct SegmentRecord {
  FrameDirection direction;  // Sent: by the stack; Received: by the stack, from the kernel
  IpAddress source;
  IpAddress destination;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint32_t payload_size = 0;
  // Where the MD5 digest starts in the TCP header (md5opt::find_md5_option); 0: no option.
  uint8_t digest_offset = 0;

  bool md5() const { return digest_offset != 0; }
};

class TapRig {
 public:
  // Skips the test (TAPSTACK_SKIPPED) when kernel tests cannot run here; enters a fresh
  // network namespace, so call it while the process has one thread. Throws
  // std::runtime_error when the setup fails.
  // offloads: TcpOffloads for a TAP with virtio-net headers and TSO both ways (the tapstack
  // tool's default); the tests that write raw frames use None. queues > 1: a multi-queue TAP
  // (tapstack --tap-queues). family Ipv6: both sides get their IPv6 address too (the kernel's
  // without DAD), and the constructor waits until ours passed DAD; connections made through
  // peers.h then run over IPv6.
  explicit TapRig(TapOffloads offloads = TapOffloads::None, size_t queues = 1,
                  IpFamily family = IpFamily::Ipv4);
  ~TapRig();
  TapRig(const TapRig&) = delete;
  TapRig& operator=(const TapRig&) = delete;

  Stack& stack() { return *stack_; }
  IpFamily family() const { return family_; }
  // The two ends' addresses of the rig's family.
  IpAddress kernel_address() const;
  IpAddress stack_address() const;
  Tcp& tcp() { return stack_->tcp(); }
  EventLoop& loop() { return *loop_; }
  // The stack side's application: runs once per iteration of the loop, on this thread.
  void set_hook(EventLoop::Hook hook) { loop_->set_iteration_hook(std::move(hook)); }

  // Runs the loop on this thread until done() holds (true) or the limit passes (false).
  bool pump_until(const std::function<bool()>& done, Duration limit);
  void pump_for(Duration time);

  // The segments since the start or the last clear_log(); none while logging is off.
  const std::vector<SegmentRecord>& log() const { return log_; }
  void clear_log() { log_.clear(); }
  void set_logging(bool on) { logging_ = on; }
  // Also hands every frame on the link, whole, to `capture` (for replays); {} stops it.
  void set_capture(std::function<void(FrameDirection, ByteView)> capture) {
    capture_ = std::move(capture);
  }

  // Writes a frame into the TAP as if the stack had sent it, past the stack and the log.
  void write_to_kernel(ByteView frame);
  MacAddress kernel_mac() const;
  size_t queue_count() const { return tap_->queue_count(); }
  int kernel_ifindex() const;

 private:
  void record(FrameDirection direction, ByteView frame);

  IpFamily family_;
  std::optional<TapDevice> tap_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<EventLoop> loop_;
  std::vector<SegmentRecord> log_;
  bool logging_ = true;
  std::function<void(FrameDirection, ByteView)> capture_;
};

// Whether every segment of the log carried the MD5 option (signed) or none did (!signed).
bool all_segments(const std::vector<SegmentRecord>& log, bool signed_segments);

}  // namespace tapstack::md5kernel
