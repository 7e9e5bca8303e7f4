#include "tests/md5_kernel/craft.h"

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "md5opt/option.h"
#include "md5opt/signer.h"
#include "stack/checksum.h"
#include "stack/tcp/header.h"
#include "stack/tcp/tcp.h"

namespace tapstack::md5kernel {
namespace {

constexpr const char* kOtherKey = "54321";

size_t option_space(Signature signature) {
  switch (signature) {
    case Signature::None:
      return 0;
    case Signature::CutShort:
      return 16;
    default:
      return md5opt::kMd5OptionSpace;
  }
}

// The digest of `tcp` (its options ignored, RFC 2385 §2.0) from flow.from to flow.to.
md5opt::Digest digest_of(const Flow& flow, ByteView tcp, const std::string& key) {
  md5opt::Md5Signer signer;
  const auto segment = md5opt::split_segment(IpAddress(flow.from), IpAddress(flow.to), tcp);
  if (!segment) throw std::runtime_error("crafted segment: no TCP header");
  const auto digest =
      signer.digest(*segment, {reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  if (!digest) throw std::runtime_error("crafted segment: digest");
  return *digest;
}

}  // namespace

Bytes crafted_segment(const Flow& flow, uint8_t flags, ByteView payload, Signature signature,
                      const std::string& key) {
  const size_t options = option_space(signature);
  const size_t header = kTcpMinHeaderSize + options;
  Bytes tcp(header + payload.size());
  store_be16(&tcp[0], flow.from_port);
  store_be16(&tcp[2], flow.to_port);
  store_be32(&tcp[4], flow.seq);
  store_be32(&tcp[8], flow.ack);
  tcp[12] = static_cast<uint8_t>(header / 4 << 4);
  tcp[13] = flags;
  store_be16(&tcp[14], 65535);
  std::copy(payload.begin(), payload.end(), tcp.begin() + static_cast<ptrdiff_t>(header));
  if (options > 0) {
    size_t at = kTcpMinHeaderSize;
    if (signature != Signature::Oversized) {
      tcp[at] = tcp[at + 1] = md5opt::kOptionNop;
      at += 2;
    }
    tcp[at] = md5opt::kOptionMd5;
    tcp[at + 1] = signature == Signature::Oversized ? 20 : md5opt::kMd5OptionLength;
    Bytes signed_as = tcp;
    if (signature == Signature::OtherTuple) store_be16(&signed_as[0], flow.from_port + 1);
    const auto digest =
        digest_of(flow, signed_as, signature == Signature::WrongKey ? kOtherKey : key);
    std::copy_n(digest.begin(), std::min<size_t>(16, header - at - 2), tcp.begin() + at + 2);
  }
  if (signature == Signature::FlippedBit) tcp[24] ^= 0x01;
  if (signature == Signature::Length17) {
    tcp[23] = 17;
    tcp[39] = md5opt::kOptionNop;  // the digest's last byte, outside an option of 17 bytes
  }
  if (signature == Signature::OverlapsPayload)
    tcp[12] = static_cast<uint8_t>((header + 8) / 4 << 4);
  store_be16(&tcp[16], tcp_checksum(tcp, flow.from, flow.to));
  return tcp;
}

Bytes crafted_frame(const MacAddress& from, const MacAddress& to, const Flow& flow, ByteView tcp) {
  Bytes frame(14 + 20 + tcp.size());
  std::copy(to.bytes.begin(), to.bytes.end(), frame.begin());
  std::copy(from.bytes.begin(), from.bytes.end(), frame.begin() + 6);
  store_be16(&frame[12], ETHERTYPE_IP);
  uint8_t* ip = &frame[14];
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<uint16_t>(20 + tcp.size()));
  store_be16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = 6;  // TCP
  store_be32(ip + 12, flow.from.value);
  store_be32(ip + 16, flow.to.value);
  store_be16(ip + 10, internet_checksum({ip, 20}));
  std::copy(tcp.begin(), tcp.end(), frame.begin() + 34);
  return frame;
}

KernelSideWriter::KernelSideWriter(int ifindex)
    : fd_(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)), ifindex_(ifindex) {
  if (fd_.get() < 0) throw std::runtime_error(fmt::format("AF_PACKET: {}", strerror(errno)));
}

void KernelSideWriter::send(ByteView frame, const MacAddress& to) {
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_ifindex = ifindex_;
  address.sll_halen = 6;
  std::memcpy(address.sll_addr, to.bytes.data(), 6);
  if (sendto(fd_.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&address),
             sizeof address) != static_cast<ssize_t>(frame.size())) {
    throw std::runtime_error(fmt::format("AF_PACKET sendto: {}", strerror(errno)));
  }
}

}  // namespace tapstack::md5kernel
