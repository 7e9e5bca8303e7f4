// Against the running Linux kernel, in a private network namespace: segments it signs now pass
// every check the stored vectors pass, and SYNs signed by Md5Signer are answered by a kernel
// listener holding the key, while a wrong key or no option gets nothing back and is counted
// as TCPMD5Failure or TCPMD5NotFound. Without root this test reports itself skipped.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "md5opt/verdict.h"
#include "tests/md5/kernel_capture.h"
#include "tests/md5/kernel_checks.h"
#include "tests/md5/vector_file.h"

namespace tapstack::md5test {
namespace {

using namespace md5opt;

[[noreturn]] void skip(std::string_view reason) {
  fmt::print("TAPSTACK_SKIPPED: {}\n", reason);
  std::fflush(stdout);
  std::exit(0);
}

// Every test case runs in the one namespace this process makes on first use.
void in_capture_namespace() {
  static const bool entered = [] {
    if (geteuid() != 0) skip("not root: capturing kernel segments needs a network namespace");
    if (auto status = enter_capture_namespace(); !status) {
      if (status.error().code == EPERM) skip(status.error().message);
      FAIL(status.error().message);
    }
    return true;
  }();
  REQUIRE(entered);
}

// The words of the line that starts at `at` in text.
std::vector<std::string_view> words_of_line(std::string_view text, std::size_t at) {
  std::vector<std::string_view> words;
  const std::string_view line = text.substr(at, text.find('\n', at) - at);
  for (std::size_t begin = 0; begin < line.size();) {
    const std::size_t end = std::min(line.find(' ', begin), line.size());
    words.push_back(line.substr(begin, end - begin));
    begin = end + 1;
  }
  return words;
}

// A TcpExt counter of this namespace, from /proc/net/netstat (what `nstat -az` reads): a line
// of names, then a line of values.
long tcp_ext_counter(std::string_view name) {
  const auto text = read_file("/proc/net/netstat");
  REQUIRE(text);
  const std::size_t names_at = text->find("TcpExt:");
  const std::size_t values_at = text->find("TcpExt:", names_at + 1);
  REQUIRE(values_at != std::string::npos);
  const auto names = words_of_line(*text, names_at);
  const auto values = words_of_line(*text, values_at);
  REQUIRE(names.size() == values.size());
  const auto found = std::find(names.begin(), names.end(), name);
  REQUIRE_MESSAGE(found != names.end(), name);
  return std::strtol(std::string(values[found - names.begin()]).c_str(), nullptr, 10);
}

// RFC 9293 §3.1 checksum over the pseudo-header and the segment (RFC 1071 one's complement).
std::uint16_t tcp_checksum(const IpAddress& source, const IpAddress& destination, ByteView tcp) {
  std::uint32_t sum = 6 + static_cast<std::uint32_t>(tcp.size() >> 16) +
                      static_cast<std::uint32_t>(tcp.size() & 0xffff);
  const auto add = [&](ByteView bytes) {
    for (std::size_t i = 0; i < bytes.size(); i += 2) {
      sum += static_cast<std::uint32_t>(bytes[i] << 8 | (i + 1 < bytes.size() ? bytes[i + 1] : 0));
    }
  };
  add(source.bytes());
  add(destination.bytes());
  add(tcp);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

enum class Signing { RightKey, WrongKey, NoOption };

// A SYN built the way the architecture's transmit path does it: header, MD5 option written
// with write_md5_option, the digest filled in late by sign_in_place, the checksum last.
std::vector<std::uint8_t> our_syn(Md5Signer& signer, const Exchange& exchange, Signing signing) {
  std::vector<std::uint8_t> tcp(signing == Signing::NoOption ? 20 : 40, 0);
  store_be16(&tcp[0], exchange.client_port);
  store_be16(&tcp[2], exchange.server_port);
  store_be32(&tcp[4], 0x2385'0000u + exchange.client_port);
  tcp[12] = static_cast<std::uint8_t>(tcp.size() / 4 << 4);
  tcp[13] = kSyn;
  store_be16(&tcp[14], 0xffff);
  if (signing != Signing::NoOption) {
    const auto digest_offset = write_md5_option(tcp, 20);
    REQUIRE(digest_offset);
    const std::string key = signing == Signing::RightKey ? exchange.key : exchange.key + "?";
    const auto status = signer.sign_in_place(exchange.client, exchange.server, tcp, *digest_offset,
                                             text_bytes(key));
    REQUIRE_MESSAGE(status.ok(), status.error().message);
  }
  store_be16(&tcp[16], tcp_checksum(exchange.client, exchange.server, tcp));
  return tcp;
}

// Sends a TCP segment from exchange.client to exchange.server through a raw socket.
void send_raw(const Exchange& exchange, ByteView tcp) {
  const int family = exchange.client.is_ipv4() ? AF_INET : AF_INET6;
  const int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
  REQUIRE_MESSAGE(fd >= 0, std::strerror(errno));
  sockaddr_storage local{}, remote{};
  socklen_t size = 0;
  if (family == AF_INET) {
    size = sizeof(sockaddr_in);
    for (auto [storage, address] :
         {std::pair{&local, exchange.client}, {&remote, exchange.server}}) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(storage);
      v4->sin_family = AF_INET;
      std::memcpy(&v4->sin_addr, address.bytes().data(), 4);
    }
  } else {
    size = sizeof(sockaddr_in6);
    for (auto [storage, address] :
         {std::pair{&local, exchange.client}, {&remote, exchange.server}}) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(storage);
      v6->sin6_family = AF_INET6;
      std::memcpy(&v6->sin6_addr, address.bytes().data(), 16);
    }
  }
  CHECK(bind(fd, reinterpret_cast<sockaddr*>(&local), size) == 0);
  CHECK(sendto(fd, tcp.data(), tcp.size(), 0, reinterpret_cast<sockaddr*>(&remote), size) ==
        static_cast<ssize_t>(tcp.size()));
  close(fd);
}

TEST_CASE("segments the running kernel signs now pass every check") {
  in_capture_namespace();
  Md5Signer signer;
  for (const Exchange& exchange : {ipv4_exchange(), ipv6_exchange()}) {
    const auto packets = capture_exchange(exchange);
    REQUIRE_MESSAGE(packets.ok(), packets.error().message);
    CHECK(packets->size() >= 8);
    const std::vector<std::uint8_t> key(exchange.key.begin(), exchange.key.end());
    for (const auto& packet : *packets) {
      const auto segment = tcp_segment_of(packet);
      REQUIRE(segment);
      check_kernel_segment(signer, {describe(*segment), key, packet});
    }
  }
}

// The kernel's answers, by the client port they went to.
std::map<std::uint16_t, std::vector<TcpSegment>> answers_by_port(const Packets& packets,
                                                                 const Exchange& exchange) {
  std::map<std::uint16_t, std::vector<TcpSegment>> answers;
  for (const auto& packet : packets) {
    const auto segment = tcp_segment_of(packet);
    REQUIRE(segment);
    if (segment->source != exchange.server) continue;
    answers[static_cast<std::uint16_t>(segment->header[2] << 8 | segment->header[3])].push_back(
        *segment);
  }
  return answers;
}

TEST_CASE("a kernel listener answers the SYN we sign, and drops wrong or missing signatures") {
  in_capture_namespace();
  Md5Signer signer;
  for (Exchange exchange : {ipv4_exchange(), ipv6_exchange()}) {
    exchange.server_port = 1179;  // a listener of its own, away from the first test case
    CAPTURE(exchange.server.to_string());
    const long failures = tcp_ext_counter("TCPMD5Failure");
    const long not_found = tcp_ext_counter("TCPMD5NotFound");
    const auto packets = capture_around_listener(exchange, [&](int) {
      for (const auto& [port, signing] : {std::pair{40180, Signing::RightKey},
                                          {40181, Signing::WrongKey},
                                          {40182, Signing::NoOption}}) {
        exchange.client_port = static_cast<std::uint16_t>(port);
        send_raw(exchange, our_syn(signer, exchange, signing));
      }
    });
    REQUIRE_MESSAGE(packets.ok(), packets.error().message);
    const auto answers = answers_by_port(*packets, exchange);

    // Our signature was good: a SYN-ACK, itself signed, acknowledging our sequence number.
    REQUIRE(answers.count(40180) == 1);
    const TcpSegment& syn_ack = answers.at(40180).front();
    CHECK(tcp_flags(syn_ack) == (kSyn | kAck));
    CHECK(syn_ack.header[8] == 0x23);  // acknowledges 0x2385'0000 + 40180 + 1
    KeyTable keys;
    REQUIRE(keys.add(exchange.server, text_bytes(exchange.key)).ok());
    CHECK(inbound_verdict(signer, keys, syn_ack) == Md5Verdict::Ok);

    // A wrong key and a missing option: dropped in silence, and counted.
    CHECK(answers.count(40181) == 0);
    CHECK(answers.count(40182) == 0);
    CHECK(tcp_ext_counter("TCPMD5Failure") == failures + 1);
    CHECK(tcp_ext_counter("TCPMD5NotFound") == not_found + 1);
  }
}

}  // namespace
}  // namespace tapstack::md5test
