// A SYN flood at listeners that hold MD5 keys for a whole prefix, on both sides of the TAP:
// SYNs from 200 addresses of 198.18.0.0/24 and as many ports, half without the option and half
// signed with a key the listener does not hold. RFC 2385 §2.0 drops them before anything is
// allocated, so a flood costs a listener a digest per SYN and nothing else: each is counted,
// none answered (no SYN-ACK, no reset, not even the ARP a reply would need), the stack's
// connection count and buffer memory stay where they were, and afterwards the kernel still
// connects to the stack's listener with the right key. The kernel's listener takes the same
// flood, mirrored, as the oracle.
#include <doctest/doctest.h>

#include "stack/tcp/header.h"
#include "tap/clock.h"
#include "tests/md5_kernel/craft.h"
#include "tests/md5_kernel/doctest_print.h"
#include "tests/md5_kernel/peers.h"

namespace tapstack::md5kernel {
namespace {

constexpr int kSyns = 512;
constexpr uint16_t kStackPort = 179;
constexpr uint16_t kKernelPort = 1179;
const Ipv4Address kPrefix = Ipv4Address::from_octets(198, 18, 0, 0);

// SYN i comes from 198.18.0.(10 + i % 200), port 20000 + i; the odd ones signed with a key
// that is not the listener's.
Bytes flood_syn(int i, Ipv4Address to, uint16_t port) {
  const Flow flow{Ipv4Address::from_octets(198, 18, 0, static_cast<uint8_t>(10 + i % 200)),
                  to,
                  static_cast<uint16_t>(20000 + i),
                  port,
                  static_cast<uint32_t>(i) * 2654435761u,
                  0};
  const Bytes tcp = crafted_segment(flow, tcp_flags::kSyn, {},
                                    i % 2 ? Signature::WrongKey : Signature::None, kSeedKey);
  return crafted_frame(kStackMac, kStackMac, flow, tcp);  // MACs set by the caller
}

void set_macs(Bytes& frame, const MacAddress& from, const MacAddress& to) {
  std::copy(to.bytes.begin(), to.bytes.end(), frame.begin());
  std::copy(from.bytes.begin(), from.bytes.end(), frame.begin() + 6);
}

TEST_CASE("a SYN flood at listeners with MD5 keys: counted, unanswered, nothing allocated") {
  TapRig rig;
  Tcp& tcp = rig.tcp();
  const SocketId listener = value_or_throw(tcp.listen(kStackPort, 16), "stack listen");
  set_stack_keys(tcp, listener, {{kPrefix, 24, kSeedKey}});
  const std::vector<PeerKey> kernel_keys = {{kPrefix, 24, kSeedKey}};
  const Fd kernel_listener =
      value_or_throw(kernel_listen(kKernel, kKernelPort, kernel_keys), "kernel listener");
  rig.pump_for(Duration::milliseconds(100));
  rig.clear_log();

  const Counters& counters = rig.stack().counters();
  const Md5Counters stack_before = stack_md5_counters(rig.stack());
  const Md5Counters kernel_before = kernel_md5_counters();
  const uint64_t frames_out = counters[Counter::EthOutFrames];
  const uint64_t passive_opens = counters[Counter::TcpPassiveOpens];
  const size_t connections = tcp.connection_count();
  const size_t memory = tcp.buffer_memory();
  KernelSideWriter writer(rig.kernel_ifindex());
  const MacAddress kernel_mac = rig.kernel_mac();
  for (int i = 0; i < kSyns; ++i) {
    Bytes to_stack = flood_syn(i, kStack, kStackPort);
    set_macs(to_stack, kernel_mac, kStackMac);
    writer.send(to_stack, kStackMac);
    Bytes to_kernel = flood_syn(i, kKernel, kKernelPort);
    set_macs(to_kernel, kStackMac, kernel_mac);
    rig.write_to_kernel(to_kernel);
  }
  rig.pump_for(Duration::milliseconds(500));

  const Md5Counters each_half{.not_found = kSyns / 2, .failure = kSyns / 2};
  CHECK(stack_md5_counters(rig.stack()) - stack_before == each_half);
  CHECK(counters[Counter::EthOutFrames] == frames_out);  // no SYN-ACK, no reset, no ARP
  CHECK(counters[Counter::TcpPassiveOpens] == passive_opens);
  CHECK(tcp.connection_count() == connections);
  CHECK(tcp.buffer_memory() == memory);
  CHECK(kernel_md5_counters() - kernel_before == each_half);
  // Every TCP segment on the link was one of the stack's SYNs: the kernel answered none.
  CHECK(rig.log().size() == static_cast<size_t>(kSyns));

  // The listener still takes the peer that holds the key.
  Fd client = value_or_throw(kernel_start_connect(kKernel, kStack, kStackPort,
                                                  std::vector<PeerKey>{{kStack, 32, kSeedKey}}),
                             "kernel connect");
  std::optional<SocketId> accepted;
  CHECK(rig.pump_until(
      [&] {
        if (!accepted) {
          if (auto id = tcp.accept(listener)) accepted = *id;
        }
        return accepted && connect_result(client.get()) == 0;
      },
      Duration::seconds(5)));
  if (accepted) tcp.close(*accepted, monotonic_now());
  tcp.close(listener, monotonic_now());
  client.reset();
  rig.pump_for(Duration::milliseconds(50));
}

}  // namespace
}  // namespace tapstack::md5kernel
