// The stack against the Linux kernel over a TAP device, in a private network namespace: the
// kernel's ping gets answers (small and fragmented), its neighbour table learns our MAC, a
// datagram of an unknown protocol draws an ICMP protocol unreachable, and the pcap of the run
// holds what crossed the link. The event loop runs interleaved on the test's thread while
// the kernel-side programs run in child processes, so the stack's counters can be read at
// any time without locks.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "stack/stack.h"
#include "tap/clock.h"
#include "tap/event_loop.h"
#include "tap/netlink.h"
#include "tap/pcap_writer.h"
#include "tap/tap_device.h"
#include "tests/support/netns.h"
#include "tests/support/pcap_frames.h"
#include "tests/support/subprocess.h"
#include "tests/tap/test_paths.h"

namespace tapstack::testing {
namespace {

using std::chrono::steady_clock;

constexpr Ipv4Interface kHostAddress = {Ipv4Address::from_octets(198, 18, 0, 1), 24};
constexpr Ipv4Interface kStackAddress = {Ipv4Address::from_octets(198, 18, 0, 2), 24};
constexpr MacAddress kStackMac = {{0x02, 0x00, 0xc6, 0x12, 0x00, 0x02}};
constexpr uint8_t kUnknownProtocol = 253;  // RFC 3692: for experimentation and testing
constexpr milliseconds kTimeLimit{20'000};

uint64_t count(const Stack& stack, Counter counter) {
  return stack.counters()[counter];
}

// The kernel on one side of tap0 (198.18.0.1/24), the stack on the other (198.18.0.2/24),
// every frame written to a pcap file.
class KernelPeer {
 public:
  KernelPeer() : pcap_path_(temporary_path("kernel_icmp.pcap")) {
    enter_private_netns_or_skip();
    auto tap = TapDevice::open("tap0");
    REQUIRE_MESSAGE(tap, tap.error().message);
    tap_.emplace(std::move(*tap));
    configure_kernel_side();

    StackConfig config;
    config.mac = kStackMac;
    config.ipv4 = kStackAddress;
    config.seed = 2385;
    stack_ = std::make_unique<Stack>(config);
    auto loop = EventLoop::create(*tap_, *stack_);
    REQUIRE_MESSAGE(loop, loop.error().message);
    loop_ = std::move(*loop);

    auto pcap = PcapWriter::open(pcap_path_);
    REQUIRE_MESSAGE(pcap, pcap.error().message);
    pcap_.emplace(std::move(*pcap));
    // CHECK, not REQUIRE: an exception must not unwind through the stack's receive path.
    loop_->set_frame_tap([this](FrameDirection, ByteView frame) { CHECK(pcap_->write(frame)); });
    stack_->start(monotonic_now());
  }

  Stack& stack() { return *stack_; }
  EventLoop& loop() { return *loop_; }

  // Runs the loop on this thread until done() holds; false if the time limit passes first.
  template <typename Done>
  bool pump_until(Done done, milliseconds limit = kTimeLimit) {
    const auto deadline = steady_clock::now() + limit;
    while (!done()) {
      if (steady_clock::now() > deadline) return false;
      const Status status = loop_->run_once(Duration::milliseconds(10));
      REQUIRE_MESSAGE(status, status.error().message);
    }
    return true;
  }

  // Runs a kernel-side program to its end while the loop answers its traffic.
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

  // Closes the pcap file (libpcap buffers) and reads it back with libtins.
  PcapSummary finish_pcap() {
    loop_->set_frame_tap({});
    pcap_.reset();
    auto summary = summarize_pcap(pcap_path_);
    REQUIRE_MESSAGE(summary, summary.error().message);
    return *summary;
  }
  const std::string& pcap_path() const { return pcap_path_; }

 private:
  void configure_kernel_side() {
    auto netlink = Rtnetlink::open();
    REQUIRE_MESSAGE(netlink, netlink.error().message);
    const Status added = netlink->add_ipv4_address("tap0", kHostAddress);
    REQUIRE_MESSAGE(added, added.error().message);
    const Status up = netlink->set_link_up("tap0");
    REQUIRE_MESSAGE(up, up.error().message);
  }

  std::string pcap_path_;
  std::optional<TapDevice> tap_;
  std::optional<PcapWriter> pcap_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<EventLoop> loop_;
};

std::vector<std::string> ping(std::vector<std::string> options) {
  std::vector<std::string> argv = {"/usr/bin/ping"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(kStackAddress.address.to_string());
  return argv;
}

std::optional<Neighbour> kernel_neighbour(Ipv4Address address) {
  auto netlink = Rtnetlink::open();
  REQUIRE(netlink);
  auto neighbours = netlink->ipv4_neighbours("tap0");
  REQUIRE_MESSAGE(neighbours, neighbours.error().message);
  for (const Neighbour& neighbour : *neighbours) {
    if (neighbour.address == address) return neighbour;
  }
  return std::nullopt;
}

sockaddr_in socket_address(Ipv4Address address) {
  sockaddr_in result{};
  result.sin_family = AF_INET;
  result.sin_addr.s_addr = htonl(address.value);
  return result;
}

// An owned socket descriptor.
struct Socket {
  explicit Socket(int fd) : fd(fd) {}
  ~Socket() {
    if (fd >= 0) close(fd);
  }
  int fd;
};

// Whether the next datagram on a raw ICMP socket (IP header included) is a protocol
// unreachable from the stack that quotes our datagram of protocol kUnknownProtocol.
bool is_protocol_unreachable_for_us(ByteView datagram) {
  if (datagram.size() < 20) return false;
  const size_t ip_header = (datagram[0] & 0x0f) * 4u;
  if (datagram.size() < ip_header + 8 + 20) return false;
  const ByteView icmp = datagram.subspan(ip_header);
  const ByteView quoted = icmp.subspan(8);
  return load_be32(&datagram[12]) == kStackAddress.address.value && icmp[0] == 3 && icmp[1] == 2 &&
         quoted[9] == kUnknownProtocol && load_be32(&quoted[16]) == kStackAddress.address.value;
}

bool receive_protocol_unreachable(int fd) {
  uint8_t buffer[2048];
  for (;;) {
    const ssize_t size = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (size < 0) return false;
    if (is_protocol_unreachable_for_us({buffer, static_cast<size_t>(size)})) return true;
  }
}

TEST_CASE_FIXTURE(KernelPeer, "the kernel's ping gets 5 replies and the kernel learns our MAC") {
  const ProcessResult result = run_while_pumping(ping({"-c", "5", "-i", "0.2", "-W", "2"}));
  CAPTURE(result.out);
  CAPTURE(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("5 packets transmitted, 5 received") != std::string::npos);

  const auto neighbour = kernel_neighbour(kStackAddress.address);
  REQUIRE(neighbour);
  CAPTURE(neighbour->state_name());
  CHECK(neighbour->is_valid());
  REQUIRE(neighbour->mac);
  CHECK(*neighbour->mac == kStackMac);

  CHECK(count(stack(), Counter::IcmpInEchos) == 5);
  CHECK(count(stack(), Counter::IcmpOutEchoReps) == 5);
  CHECK(count(stack(), Counter::ArpInRequests) >= 1);
  CHECK(count(stack(), Counter::ArpOutReplies) >= 1);
  CHECK(count(stack(), Counter::IpInHdrErrors) == 0);
  CHECK(loop().stats().send_drops == 0);
  CHECK(loop().stats().send_errors == 0);
}

TEST_CASE_FIXTURE(KernelPeer, "a 4000-byte ping is reassembled, and answered in fragments") {
  const ProcessResult result = run_while_pumping(ping({"-c", "1", "-s", "4000", "-W", "2"}));
  CAPTURE(result.out);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("1 received") != std::string::npos);
  CHECK(result.out.find("4008 bytes from 198.18.0.2") != std::string::npos);

  // 4008 bytes of ICMP at MTU 1500: fragments of 1480, 1480 and 1048 bytes each way.
  CHECK(count(stack(), Counter::IpReasmReqds) == 3);
  CHECK(count(stack(), Counter::IpReasmOKs) == 1);
  CHECK(count(stack(), Counter::IpReasmFails) == 0);
  CHECK(count(stack(), Counter::IpFragOKs) == 1);
  CHECK(count(stack(), Counter::IpFragCreates) == 3);
  CHECK(count(stack(), Counter::IcmpInEchos) == 1);
  CHECK(count(stack(), Counter::IcmpOutEchoReps) == 1);
  CHECK(finish_pcap().ipv4_fragments == 6);
}

TEST_CASE_FIXTURE(KernelPeer, "a datagram of an unknown protocol draws ICMP protocol unreachable") {
  Socket sender(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, kUnknownProtocol));
  Socket icmp(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
  REQUIRE(sender.fd >= 0);
  REQUIRE(icmp.fd >= 0);
  const sockaddr_in stack_address = socket_address(kStackAddress.address);
  const char payload[] = "protocol 253";
  REQUIRE(sendto(sender.fd, payload, sizeof payload, 0,
                 reinterpret_cast<const sockaddr*>(&stack_address),
                 sizeof stack_address) == static_cast<ssize_t>(sizeof payload));

  CHECK(pump_until([&] { return receive_protocol_unreachable(icmp.fd); }, milliseconds(5'000)));
  CHECK(count(stack(), Counter::IpInUnknownProtos) == 1);
  CHECK(stack().counters().drops(DropReason::IpUnknownProtocol) == 1);
  CHECK(count(stack(), Counter::IcmpOutDestUnreachs) == 1);
  CHECK(finish_pcap().protocol_unreachables == 1);
}

TEST_CASE_FIXTURE(KernelPeer, "the pcap holds every frame of the run, ARP and echo included") {
  const ProcessResult result = run_while_pumping(ping({"-c", "2", "-i", "0.2", "-W", "2"}));
  CHECK(result.exit_code == 0);
  const uint64_t frames = loop().stats().frames_received + loop().stats().frames_sent;

  const PcapSummary summary = finish_pcap();
  CHECK(summary.arp_requests >= 1);  // the kernel's who-has (and our announcement)
  CHECK(summary.arp_replies >= 1);   // our answer
  CHECK(summary.echo_requests == 2);
  CHECK(summary.echo_replies == 2);
  auto raw = read_pcap_frames(pcap_path());
  REQUIRE(raw);
  CHECK(raw->size() == frames);
}

TEST_CASE_FIXTURE(KernelPeer, "the stack pings the kernel from the loop's hook") {
  const std::vector<uint8_t> payload(56, 0xab);
  bool sent = false;
  std::optional<EchoReply> reply;
  loop().set_iteration_hook([&](Instant now) {
    if (!sent) {
      CHECK(stack().send_echo_request(kHostAddress.address, 0x7a7a, 1, payload, now));
      sent = true;
    }
    if (!reply) reply = stack().poll_echo_reply();
  });
  CHECK(pump_until([&] { return reply.has_value(); }, milliseconds(5'000)));
  REQUIRE(reply);
  CHECK(reply->from == kHostAddress.address);
  CHECK(reply->id == 0x7a7a);
  CHECK(reply->sequence == 1);
  CHECK(reply->payload_size == payload.size());
  CHECK(count(stack(), Counter::IcmpOutEchos) == 1);
  CHECK(count(stack(), Counter::IcmpInEchoReps) == 1);
}

}  // namespace
}  // namespace tapstack::testing
