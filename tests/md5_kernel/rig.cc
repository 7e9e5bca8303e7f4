#include "tests/md5_kernel/rig.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <stdexcept>

#include "md5opt/option.h"
#include "stack/bytes.h"
#include "tap/clock.h"
#include "tap/netlink.h"
#include "tests/md5_kernel/kernel_side.h"
#include "tests/support/netns.h"
#include "tests/support/subprocess.h"

namespace tapstack::md5kernel {
namespace {

constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
constexpr uint8_t kProtocolTcp = 6;

}  // namespace

TapRig::TapRig(TapOffloads offloads, size_t queues, IpFamily family) : family_(family) {
  testing::enter_private_netns_or_skip();
  tap_.emplace(value_or_throw(TapDevice::open(kTapName, offloads, queues), "opening the TAP"));
  auto netlink = value_or_throw(Rtnetlink::open(), "rtnetlink");
  ok_or_throw(netlink.add_ipv4_address(kTapName, kKernelInterface), "kernel address");
  if (family == IpFamily::Ipv6) {
    // nodad: usable at once (the kernel's own DAD would hold it for a second).
    const auto ip = testing::run_process(
        {"/usr/sbin/ip", "-6", "addr", "add", "2001:db8::1/64", "dev", kTapName, "nodad"},
        std::chrono::milliseconds(5'000));
    if (ip.exit_code != 0) throw std::runtime_error("kernel IPv6 address: " + ip.err);
  }
  ok_or_throw(netlink.set_link_up(kTapName), "link up");

  StackConfig config;
  config.mac = kStackMac;
  config.ipv4 = kStackInterface;
  if (family == IpFamily::Ipv6) config.ipv6 = Ipv6Interface{kStack6, 64};
  config.seed = 2385;
  stack_ = std::make_unique<Stack>(config);
  loop_ = value_or_throw(EventLoop::create(*tap_, *stack_), "event loop");
  loop_->set_frame_tap([this](FrameDirection direction, ByteView frame) {
    if (logging_) record(direction, frame);
    if (capture_) capture_(direction, frame);
  });
  stack_->start(monotonic_now());
  if (family == IpFamily::Ipv6 &&
      !pump_until([&] { return stack_->ndisc()->owns(kStack6); }, Duration::seconds(5))) {
    throw std::runtime_error("our IPv6 address did not pass duplicate address detection");
  }
}

TapRig::~TapRig() = default;

IpAddress TapRig::kernel_address() const {
  return family_ == IpFamily::Ipv4 ? IpAddress(kKernel) : kKernel6;
}
IpAddress TapRig::stack_address() const {
  return family_ == IpFamily::Ipv4 ? IpAddress(kStack) : kStack6;
}

bool TapRig::pump_until(const std::function<bool()>& done, Duration limit) {
  const Instant deadline = monotonic_now() + limit;
  while (!done()) {
    if (monotonic_now() >= deadline) return false;
    ok_or_throw(loop_->run_once(Duration::milliseconds(5)), "event loop");
  }
  return true;
}

void TapRig::pump_for(Duration time) {
  pump_until([] { return false; }, time);
}

void TapRig::write_to_kernel(ByteView frame) {
  const uint8_t plain[kVirtioNetHeaderSize] = {};  // no offloads: a frame as it is
  ok_or_throw(tap_->write(tap_->virtio_net_header() ? ByteView(plain) : ByteView(), frame),
              "writing to the TAP");
}

MacAddress TapRig::kernel_mac() const {
  return value_or_throw(tap_->kernel_mac(), "kernel MAC");
}

int TapRig::kernel_ifindex() const {
  auto netlink = value_or_throw(Rtnetlink::open(), "rtnetlink");
  return value_or_throw(netlink.link(kTapName), "link").index;
}

// Ethernet II, IPv4 or IPv6 (no extension headers), TCP; anything else (ARP, neighbour
// discovery) is not logged.
void TapRig::record(FrameDirection direction, ByteView frame) {
  if (frame.size() < 14 + 20) return;
  const uint16_t ethertype = load_be16(&frame[12]);
  const ByteView ip = frame.subspan(14);
  IpAddress source;
  IpAddress destination;
  ByteView tcp;
  if (ethertype == kEthertypeIpv4) {
    const size_t ip_header = (ip[0] & 0x0f) * 4u;
    const size_t total = std::min<size_t>(load_be16(&ip[2]), ip.size());
    if (ip[9] != kProtocolTcp || total < ip_header + 20) return;
    source = Ipv4Address{load_be32(&ip[12])};
    destination = Ipv4Address{load_be32(&ip[16])};
    tcp = ip.subspan(ip_header, total - ip_header);
  } else if (ethertype == kEthertypeIpv6) {
    if (ip.size() < 40 + 20 || ip[6] != kProtocolTcp) return;
    const size_t total = std::min<size_t>(40u + load_be16(&ip[4]), ip.size());
    source = IpAddress::ipv6(std::span<const uint8_t, 16>(&ip[8], 16));
    destination = IpAddress::ipv6(std::span<const uint8_t, 16>(&ip[24], 16));
    tcp = ip.subspan(40, total - 40);
  } else {
    return;
  }
  const size_t tcp_header = (tcp[12] >> 4) * 4u;
  if (tcp_header < 20 || tcp_header > tcp.size()) return;
  log_.push_back({direction, source, destination, load_be16(&tcp[0]), load_be16(&tcp[2]),
                  load_be32(&tcp[4]), load_be32(&tcp[8]), tcp[13],
                  static_cast<uint32_t>(tcp.size() - tcp_header),
                  static_cast<uint8_t>(md5opt::find_md5_option(tcp).value_or(0))});
}

bool all_segments(const std::vector<SegmentRecord>& log, bool signed_segments) {
  return std::all_of(log.begin(), log.end(),
                     [&](const SegmentRecord& s) { return s.md5() == signed_segments; });
}

}  // namespace tapstack::md5kernel
