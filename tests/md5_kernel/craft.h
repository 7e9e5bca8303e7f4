// Segments made by hand, as an attacker on the link would make them: any 4-tuple, sequence
// numbers and flags, and an RFC 2385 option that is missing, wrong or malformed in the ways
// the adversarial tests need. Written into the link from the kernel's side of the TAP with an
// AF_PACKET socket (to the stack), or into the TAP (to the kernel).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stack/address.h"
#include "stack/bytes.h"
#include "tests/md5_kernel/kernel_side.h"

namespace tapstack::md5kernel {

using Bytes = std::vector<uint8_t>;

// Where a crafted segment goes and the numbers it carries.
struct Flow {
  Ipv4Address from;
  Ipv4Address to;
  uint16_t from_port = 0;
  uint16_t to_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
};

// How the crafted segment's MD5 option looks. Every option but None takes 20 bytes of options
// (NOP NOP and the 18-byte option unless said otherwise), CutShort 16.
enum class Signature {
  None,             // no option at all
  Right,            // the right digest with the right key
  FlippedBit,       // the right digest with one bit flipped
  WrongKey,         // a well-formed option, signed with another key
  OtherTuple,       // the right key, but the digest of another connection's 4-tuple
  Length17,         // the right digest in an option of length 17
  Oversized,        // the right digest in an option of length 20 (no NOPs)
  CutShort,         // length 18, but the header ends 4 bytes into the digest
  OverlapsPayload,  // signed, then the data offset moved 8 bytes into the payload
};

// Header, option as `signature` says (with `key`; WrongKey signs with another), payload; the
// checksum last. Never the bytes of a real stack's or kernel's segment.
Bytes crafted_segment(const Flow& flow, uint8_t flags, ByteView payload, Signature signature,
                      const std::string& key);

// Ethernet II and IPv4 (RFC 791) around a segment.
Bytes crafted_frame(const MacAddress& from, const MacAddress& to, const Flow& flow, ByteView tcp);

// An AF_PACKET socket on the kernel's side of the TAP: what it sends the TAP hands to its
// reader, the stack. Linux: packet_sendmsg() → dev_queue_xmit() → tun_net_xmit().
class KernelSideWriter {
 public:
  explicit KernelSideWriter(int ifindex);
  // Throws std::runtime_error when the frame does not go out whole.
  void send(ByteView frame, const MacAddress& to);

 private:
  Fd fd_;
  int ifindex_;
};

}  // namespace tapstack::md5kernel
