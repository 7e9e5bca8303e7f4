// IPv6 against the Linux kernel over a TAP device, in a private network namespace: duplicate
// address detection, neighbour discovery both ways, the kernel's ping -6 (small and
// fragmented, to our global and link-local addresses), our ping to the kernel, a neighbour
// that never answers, an address another node holds, TCP both ways over IPv6 and a dual-stack
// listener. The kernel has 2001:db8::1/64 and 198.18.0.1/24 on tap0, the stack
// 2001:db8::2/64 and 198.18.0.2/24. The stack and its event loop run on the test's thread;
// kernel programs run in child processes.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/netlink.h"
#include "tap/tap_device.h"
#include "tests/support/kernel_socket.h"
#include "tests/support/netns.h"
#include "tests/support/subprocess.h"

namespace tapstack::testing {
namespace {

using namespace socket_event;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

const IpAddress kKernel6 = *IpAddress::parse("2001:db8::1");
const IpAddress kStack6 = *IpAddress::parse("2001:db8::2");
constexpr Ipv4Address kKernel4 = Ipv4Address::from_octets(198, 18, 0, 1);
constexpr MacAddress kStackMac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
// fe80::/64 with the modified EUI-64 of kStackMac (RFC 4291 appendix A): the universal/local
// bit of 02 flipped to 00, ff:fe in the middle.
const IpAddress kStackLinkLocal = *IpAddress::parse("fe80::c6ff:fe12:2");
constexpr milliseconds kTimeLimit{20'000};

uint64_t count(const Stack& stack, Counter counter) {
  return stack.counters()[counter];
}

std::string run_ip(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/sbin/ip");
  const ProcessResult result = run_process(args, milliseconds(5'000));
  INFO("ip ", args[1], ": ", result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

class Ipv6Peer {
 public:
  // kernel_holds_our_address: the kernel side has 2001:db8::2 too, so that our DAD fails.
  explicit Ipv6Peer(bool kernel_holds_our_address = false, NdiscConfig ndisc = {}) {
    enter_private_netns_or_skip();
    auto tap = TapDevice::open("tap0");
    REQUIRE_MESSAGE(tap, tap.error().message);
    tap_.emplace(std::move(*tap));
    auto netlink = Rtnetlink::open();
    REQUIRE(netlink);
    REQUIRE(netlink->add_ipv4_address("tap0", *Ipv4Interface::parse("198.18.0.1/24")));
    // nodad: the kernel's address is usable at once (its own DAD would hold it a second).
    run_ip({"-6", "addr", "add", "2001:db8::1/64", "dev", "tap0", "nodad"});
    if (kernel_holds_our_address) {
      run_ip({"-6", "addr", "add", "2001:db8::2/128", "dev", "tap0", "nodad"});
    }
    REQUIRE(netlink->set_link_up("tap0"));
    kernel_mac_ = netlink->link("tap0")->mac;

    StackConfig config;
    config.mac = kStackMac;
    config.ipv4 = *Ipv4Interface::parse("198.18.0.2/24");
    config.ipv6 = Ipv6Interface::parse("2001:db8::2/64");
    config.ndisc = ndisc;
    config.seed = 6;
    stack_ = std::make_unique<Stack>(config);
    auto loop = EventLoop::create(*tap_, *stack_);
    REQUIRE_MESSAGE(loop, loop.error().message);
    loop_ = std::move(*loop);
    stack_->start(monotonic_now());
  }

  Stack& stack() { return *stack_; }
  EventLoop& loop() { return *loop_; }
  Tcp& tcp() { return stack_->tcp(); }
  Instant now() const { return monotonic_now(); }
  const MacAddress& kernel_mac() const { return kernel_mac_; }

  template <typename Done>
  bool pump_until(Done done, milliseconds limit = kTimeLimit) {
    const auto deadline = steady_clock::now() + limit;
    while (!done()) {
      if (steady_clock::now() > deadline) return false;
      const Status status = loop_->run_once(Duration::milliseconds(5));
      REQUIRE_MESSAGE(status, status.error().message);
    }
    return true;
  }

  // Both our addresses passed duplicate address detection.
  void wait_for_dad() {
    REQUIRE(pump_until([&] {
      return stack_->ndisc()->owns(kStack6) && stack_->ndisc()->owns(kStackLinkLocal);
    }));
  }

  ProcessResult run_while_pumping(std::vector<std::string> argv) {
    std::atomic<bool> finished{false};
    ProcessResult result;
    std::thread runner([&] {
      result = run_process(argv, kTimeLimit);
      finished.store(true);
    });
    const bool in_time =
        pump_until([&] { return finished.load(); }, kTimeLimit + milliseconds(5'000));
    runner.join();
    CHECK(in_time);
    return result;
  }

  // Everything our socket receives until `size` bytes, the end of stream or an error.
  std::string receive(SocketId socket, size_t size) {
    std::string data;
    pump_until([&] {
      uint8_t buffer[4096];
      while (data.size() < size) {
        auto n = tcp().receive(socket, buffer, now());
        if (!n || *n == 0) return !n ? n.error().code != EAGAIN : true;
        data.append(reinterpret_cast<const char*>(buffer), *n);
      }
      return true;
    });
    return data;
  }

  void send(SocketId socket, std::string_view text) {
    const auto sent = tcp().send(
        socket, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), now());
    REQUIRE_MESSAGE(sent, sent.error().message);
    REQUIRE(*sent == text.size());
  }

  std::string kernel_receive(const KernelSocket& kernel, size_t size) {
    std::string data;
    pump_until([&] {
      char buffer[4096];
      for (;;) {
        const ssize_t n = recv(kernel.fd(), buffer, sizeof buffer, MSG_DONTWAIT);
        if (n <= 0) break;
        data.append(buffer, static_cast<size_t>(n));
      }
      return data.size() >= size;
    });
    return data;
  }

 private:
  std::optional<TapDevice> tap_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<EventLoop> loop_;
  MacAddress kernel_mac_;
};

class KernelHoldsOurAddress : public Ipv6Peer {
 public:
  KernelHoldsOurAddress() : Ipv6Peer(true) {}
};

// Neighbour entries that go stale after a second and are probed a second after their next use.
class QuickNeighbours : public Ipv6Peer {
 public:
  QuickNeighbours()
      : Ipv6Peer(false, NdiscConfig{.reachable_time = Duration::seconds(1),
                                    .delay_first_probe = Duration::seconds(1)}) {}
};

// An ICMPv6 Packet Too Big (RFC 4443 §3.2) from the kernel's namespace to the stack, as a
// router on the path would send it: MTU `mtu`, quoting the start of a segment we sent on the
// connection local_port → kernel_port. The kernel's raw ICMPv6 socket fills the checksum.
void send_packet_too_big(uint32_t mtu, uint16_t local_port, uint16_t kernel_port) {
  const int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  REQUIRE(fd >= 0);
  uint8_t message[8 + 40 + 20] = {2, 0, 0, 0};
  store_be32(message + 4, mtu);
  uint8_t* quoted = message + 8;
  quoted[0] = 0x60;
  store_be16(quoted + 4, 1400);  // the segment was this long
  quoted[6] = 6;                 // TCP
  quoted[7] = 64;
  std::memcpy(quoted + 8, kStack6.bytes().data(), 16);
  std::memcpy(quoted + 24, kKernel6.bytes().data(), 16);
  store_be16(quoted + 40, local_port);
  store_be16(quoted + 42, kernel_port);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  std::memcpy(&to.sin6_addr, kStack6.bytes().data(), 16);
  CHECK(sendto(fd, message, sizeof message, 0, reinterpret_cast<const sockaddr*>(&to),
               sizeof to) == static_cast<ssize_t>(sizeof message));
  close(fd);
}

void kernel_send(const KernelSocket& kernel, std::string_view text) {
  REQUIRE(::send(kernel.fd(), text.data(), text.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(text.size()));
}

TEST_CASE_FIXTURE(Ipv6Peer, "DAD passes, the kernel's ping -6 gets 5 replies, it learns our MAC") {
  CHECK_FALSE(stack().ndisc()->owns(kStack6));  // tentative at first (RFC 4862 §5.4)
  wait_for_dad();
  CHECK(stack().ndisc()->dad_failures().empty());
  CHECK(count(stack(), Counter::Icmp6OutNeighborSolicits) >= 2);  // a probe for each address

  const ProcessResult result =
      run_while_pumping({"/usr/bin/ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", "2001:db8::2"});
  CAPTURE(result.out);
  CAPTURE(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("5 packets transmitted, 5 received") != std::string::npos);

  const std::string neighbours = run_ip({"-6", "neigh", "show", "dev", "tap0"});
  CAPTURE(neighbours);
  CHECK(neighbours.find("2001:db8::2 lladdr " + kStackMac.to_string()) != std::string::npos);
  CHECK(count(stack(), Counter::Icmp6InEchos) == 5);
  CHECK(count(stack(), Counter::Icmp6OutEchoReplies) == 5);
  CHECK(count(stack(), Counter::Icmp6InNeighborSolicits) >= 1);
  CHECK(count(stack(), Counter::Icmp6OutNeighborAdvertisements) >= 1);
  CHECK(count(stack(), Counter::Ip6InHdrErrors) == 0);
  CHECK(count(stack(), Counter::Icmp6InErrors) == 0);
}

TEST_CASE_FIXTURE(Ipv6Peer, "a 4000-byte ping -6 is reassembled, and answered in fragments") {
  wait_for_dad();
  const ProcessResult result = run_while_pumping(
      {"/usr/bin/ping", "-6", "-c", "1", "-s", "4000", "-W", "2", "2001:db8::2"});
  CAPTURE(result.out);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("4008 bytes from 2001:db8::2") != std::string::npos);
  // 4008 bytes of ICMPv6 at MTU 1500: 1448 bytes a fragment (1500 less the 40-byte header and
  // the 8-byte Fragment header, rounded down to a multiple of 8), so three each way.
  CHECK(count(stack(), Counter::Ip6ReasmReqds) == 3);
  CHECK(count(stack(), Counter::Ip6ReasmOKs) == 1);
  CHECK(count(stack(), Counter::Ip6ReasmFails) == 0);
  CHECK(count(stack(), Counter::Ip6FragOKs) == 1);
  CHECK(count(stack(), Counter::Ip6FragCreates) == 3);
  CHECK(count(stack(), Counter::Icmp6OutEchoReplies) == 1);
}

TEST_CASE_FIXTURE(Ipv6Peer, "the kernel pings our link-local address") {
  wait_for_dad();
  const ProcessResult result = run_while_pumping(
      {"/usr/bin/ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fe80::c6ff:fe12:2%tap0"});
  CAPTURE(result.out);
  CAPTURE(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("2 received") != std::string::npos);
}

TEST_CASE_FIXTURE(Ipv6Peer, "we ping the kernel: we resolve it, and it answers") {
  wait_for_dad();
  const uint8_t payload[] = {'t', 'a', 'p', 's', 't', 'a', 'c', 'k'};
  REQUIRE(stack().send_echo6_request(kKernel6, 0x6006, 1, payload, now()));
  std::optional<Echo6Reply> reply;
  REQUIRE(pump_until([&] { return (reply = stack().poll_echo6_reply()).has_value(); }));
  CHECK(reply->from == kKernel6);
  CHECK(reply->id == 0x6006);
  CHECK(reply->sequence == 1);
  CHECK(reply->payload_size == sizeof payload);
  CHECK(stack().ndisc()->lookup(kKernel6) == kernel_mac());
  CHECK(stack().ndisc()->state(kKernel6) == NeighbourState::Reachable);
  CHECK(count(stack(), Counter::Icmp6OutEchos) == 1);
  CHECK(count(stack(), Counter::Icmp6InEchoReplies) == 1);
}

TEST_CASE_FIXTURE(Ipv6Peer, "a neighbour that never answers fails a connection: EHOSTUNREACH in ~3 s") {
  wait_for_dad();
  const auto started = steady_clock::now();
  auto socket = tcp().connect(*IpAddress::parse("2001:db8::99"), 179, now());
  REQUIRE_MESSAGE(socket, socket.error().message);
  REQUIRE(pump_until([&] { return (tcp().events(*socket) & kError) != 0; }));
  const auto took = steady_clock::now() - started;
  CHECK(took > milliseconds(2'500));  // three solicitations a second apart, as ARP's requests
  CHECK(took < milliseconds(6'000));
  const Status error = tcp().take_error(*socket);
  REQUIRE_FALSE(error);
  CHECK(error.error().code == EHOSTUNREACH);
  CHECK(count(stack(), Counter::NdiscResolveFailures) == 1);
  CHECK(count(stack(), Counter::Icmp6OutNeighborSolicits) >= 3 + 2);  // and the DAD probes
}

TEST_CASE_FIXTURE(KernelHoldsOurAddress, "the kernel holds our address: DAD fails, clearly") {
  REQUIRE(pump_until([&] { return !stack().ndisc()->dad_failures().empty(); }));
  const std::string failure = stack().ndisc()->dad_failures().front();
  CAPTURE(failure);
  CHECK(failure.find("2001:db8::2") != std::string::npos);
  CHECK(failure.find(kernel_mac().to_string()) != std::string::npos);
  CHECK_FALSE(stack().ndisc()->owns(kStack6));
  CHECK(count(stack(), Counter::NdiscDadFailures) == 1);
  // The global address is not ours to send from: a connection to a global address goes out
  // from the link-local one, the only candidate left (RFC 6724 §5 rule 2 only prefers a
  // matching scope; Linux's ipv6_dev_get_saddr() falls back the same way).
  REQUIRE(pump_until([&] { return stack().ndisc()->owns(kStackLinkLocal); }));
  auto socket = tcp().connect(kKernel6, 179, now());
  REQUIRE_MESSAGE(socket, socket.error().message);
  const auto info = tcp().info(*socket);
  REQUIRE(info);
  CHECK(info->local_address == kStackLinkLocal);
}

TEST_CASE_FIXTURE(Ipv6Peer, "TCP over IPv6 both ways with the kernel") {
  wait_for_dad();
  SUBCASE("the kernel connects to our listener") {
    auto listener = tcp().listen(7000, 8);
    REQUIRE(listener);
    auto kernel = KernelSocket::start_connect(kStack6, 7000);
    REQUIRE_MESSAGE(kernel, kernel.error().message);
    std::optional<SocketId> accepted;
    REQUIRE(pump_until([&] {
      if (auto a = tcp().accept(*listener)) accepted = *a;
      return accepted.has_value();
    }));
    const auto info = tcp().info(*accepted);
    REQUIRE(info);
    CHECK(info->remote_address == kKernel6);
    CHECK(info->local_address == kStack6);
    kernel_send(*kernel, "over IPv6");
    CHECK(receive(*accepted, 9) == "over IPv6");
    send(*accepted, "and back");
    CHECK(kernel_receive(*kernel, 8) == "and back");
    // MSS 1440: MTU 1500 less 40 bytes of IPv6 and 20 of TCP.
    CHECK(info->snd_mss <= 1440);
  }
  SUBCASE("we connect to the kernel's listener") {
    auto listener = KernelSocket::listen_on(*IpAddress::parse("::"), 6000);
    REQUIRE_MESSAGE(listener, listener.error().message);
    auto socket = tcp().connect(kKernel6, 6000, now());
    REQUIRE_MESSAGE(socket, socket.error().message);
    std::optional<KernelSocket> accepted;
    REQUIRE(pump_until([&] {
      if (auto a = listener->accept(deadline_in(milliseconds(1)))) accepted.emplace(std::move(*a));
      return accepted && (tcp().events(*socket) & kConnected);
    }));
    send(*socket, "from the stack");
    CHECK(kernel_receive(*accepted, 14) == "from the stack");
    kernel_send(*accepted, "reply");
    CHECK(receive(*socket, 5) == "reply");
    CHECK(count(stack(), Counter::Icmp6OutNeighborSolicits) >= 3);  // we resolved the kernel
  }
}

TEST_CASE_FIXTURE(Ipv6Peer, "one listener takes the kernel's IPv4 and IPv6 connections") {
  wait_for_dad();
  auto listener = tcp().listen(7001, 8);
  REQUIRE(listener);
  auto over4 = KernelSocket::start_connect(Ipv4Address::from_octets(198, 18, 0, 2), 7001);
  auto over6 = KernelSocket::start_connect(kStack6, 7001);
  REQUIRE(over4);
  REQUIRE(over6);
  std::vector<SocketId> accepted;
  REQUIRE(pump_until([&] {
    while (auto a = tcp().accept(*listener)) accepted.push_back(*a);
    return accepted.size() == 2;
  }));
  std::vector<IpAddress> remotes;
  for (SocketId id : accepted) remotes.push_back(tcp().info(id)->remote_address);
  CHECK(std::count(remotes.begin(), remotes.end(), IpAddress(kKernel4)) == 1);
  CHECK(std::count(remotes.begin(), remotes.end(), kKernel6) == 1);
}

TEST_CASE_FIXTURE(Ipv6Peer, "a Packet Too Big lowers the path MTU and the connection's MSS") {
  wait_for_dad();
  auto listener = KernelSocket::listen_on(*IpAddress::parse("::"), 6000);
  REQUIRE(listener);
  auto socket = tcp().connect(kKernel6, 6000, now());
  REQUIRE(socket);
  std::optional<KernelSocket> accepted;
  REQUIRE(pump_until([&] {
    if (auto a = listener->accept(deadline_in(milliseconds(1)))) accepted.emplace(std::move(*a));
    return accepted && (tcp().events(*socket) & kConnected);
  }));
  const auto before = tcp().info(*socket);
  REQUIRE(before);
  CHECK(before->snd_mss > 1220);  // MTU 1500: 1440 less the options
  CHECK(stack().path_mtu(kKernel6, now()) == 1500);

  send_packet_too_big(1280, before->local_port, 6000);
  REQUIRE(pump_until([&] { return count(stack(), Counter::Icmp6InPktTooBigs) == 1; }));
  CHECK(stack().path_mtu(kKernel6, now()) == 1280);
  const auto after = tcp().info(*socket);
  REQUIRE(after);
  CHECK(after->snd_mss <= 1220);  // 1280 less 40 bytes of IPv6 and 20 of TCP, less options

  // Every frame we send from now on fits the path: 1280 bytes of IPv6 at most.
  size_t largest = 0;
  loop().set_frame_tap([&](FrameDirection direction, ByteView frame) {
    if (direction == FrameDirection::Sent) largest = std::max(largest, frame.size() - 14);
  });
  const std::string data(20'000, 'x');
  send(*socket, data);
  CHECK(kernel_receive(*accepted, data.size()).size() == data.size());
  loop().set_frame_tap({});
  CHECK(largest > 1000);
  CHECK(largest <= 1280);
}

TEST_CASE_FIXTURE(QuickNeighbours,
                  "a neighbour entry goes stale, is probed on its next use, and is reachable again") {
  wait_for_dad();
  const uint8_t payload[] = {'n', 'u', 'd'};
  std::optional<Echo6Reply> reply;
  REQUIRE(stack().send_echo6_request(kKernel6, 1, 1, payload, now()));
  REQUIRE(pump_until([&] { return (reply = stack().poll_echo6_reply()).has_value(); }));
  CHECK(stack().ndisc()->state(kKernel6) == NeighbourState::Reachable);
  // REACHABLE_TIME passes without confirmation: STALE (RFC 4861 §7.3.3).
  REQUIRE(pump_until([&] { return stack().ndisc()->state(kKernel6) == NeighbourState::Stale; },
                     milliseconds(5'000)));
  const uint64_t solicits = count(stack(), Counter::Icmp6OutNeighborSolicits);
  // Used while STALE: sent at once to the cached MAC, DELAY, then a unicast probe that the
  // kernel answers.
  REQUIRE(stack().send_echo6_request(kKernel6, 1, 2, payload, now()));
  CHECK(stack().ndisc()->state(kKernel6) == NeighbourState::Delay);
  REQUIRE(pump_until([&] { return (reply = stack().poll_echo6_reply()).has_value(); }));
  CHECK(reply->sequence == 2);
  REQUIRE(pump_until(
      [&] {
        return count(stack(), Counter::Icmp6OutNeighborSolicits) > solicits &&
               stack().ndisc()->state(kKernel6) == NeighbourState::Reachable;
      },
      milliseconds(5'000)));
  CHECK(stack().ndisc()->lookup(kKernel6) == kernel_mac());
  CHECK(count(stack(), Counter::NdiscResolveFailures) == 0);
}

}  // namespace
}  // namespace tapstack::testing
