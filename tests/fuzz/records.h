// The input of the receive-path fuzz target: a sequence of records. Each record advances
// virtual time, lets the application act, then delivers one Ethernet frame. Bits in the record
// ask the replay to repair what mutated bytes would break (lengths, checksums, the MD5 digest)
// and to read sequence and acknowledgment numbers relative to the connection, so that inputs
// get past the checks that reject random bytes and land near the receive window.
//
// Wire form, repeated until the input ends:
//   control (1 byte) | advance (1 byte) | frame length (2 bytes, big-endian) | frame
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stack/bytes.h"
#include "stack/time.h"

namespace tapstack::fuzz {

using Bytes = std::vector<uint8_t>;

// The low nibble of Record::control: what the replay repairs or rewrites before delivery.
namespace fixup {
constexpr uint8_t kIpv4 = 0x01;      // IPv4 total length from the frame, then the header checksum
constexpr uint8_t kChecksum = 0x02;  // the TCP or ICMP checksum
constexpr uint8_t kSign = 0x04;      // the MD5 digest, with the key the source address signs with
constexpr uint8_t kRelative = 0x08;  // seq and ack are offsets from what the stack last sent
constexpr uint8_t kValid = kIpv4 | kChecksum;
constexpr uint8_t kAll = 0x0f;
}  // namespace fixup

// The high nibble of Record::control: what the application does before the frame arrives.
enum class AppAction : uint8_t {
  None,
  Accept,               // accept every connection the listener has ready
  Read,                 // read everything every held socket has
  SendSigned,           // 100 bytes on the signed connection
  SendBulkSigned,       // 5000 bytes on the signed connection
  SendUnsigned,         // 100 bytes on the unsigned connection
  ShutdownSigned,       // shutdown(Write) on the signed connection
  ShutdownUnsigned,     // shutdown(Write) on the unsigned connection
  CloseSigned,          // close() the signed connection
  CloseUnsigned,        // close() the unsigned connection
  AbortAccepted,        // abort() the oldest accepted connection
  ConnectSigned,        // open a signed connection to the prefix-keyed peer
  Keepalive,            // keepalive with short timers on every held connection
  ShrinkReceiveBuffer,  // 2 KiB receive buffers on every held connection
  NoDelay,              // TCP_NODELAY on every held connection
  CloseListener,        // close() the listener: its unaccepted connections are reset
};
constexpr size_t kAppActionCount = 16;

struct Record {
  uint8_t control = fixup::kValid;
  uint8_t advance = 0;  // coded: see advance_of()
  Bytes frame;          // empty: nothing arrives; only time passes and the application acts

  uint8_t fixups() const { return control & 0x0f; }
  AppAction action() const { return static_cast<AppAction>(control >> 4); }
  void set_fixups(uint8_t bits) {
    control = static_cast<uint8_t>((control & 0xf0) | (bits & 0x0f));
  }
  void set_action(AppAction a) {
    control = static_cast<uint8_t>((control & 0x0f) | static_cast<uint8_t>(a) << 4);
  }
};

constexpr size_t kRecordHeaderSize = 4;

// Code 0 is no time; 1..100 are milliseconds; 101..200 steps of 100 ms (up to 10 s);
// 201..255 steps of 10 s (up to 550 s): delayed ACKs, RTOs, FIN-WAIT-2 and TIME-WAIT alike.
Duration advance_of(uint8_t code);
// The smallest code whose advance is at least d (255 when none is that long).
uint8_t advance_code(Duration d);

// The records of an input, up to the first that is incomplete.
std::vector<Record> parse_records(ByteView input);
Bytes serialize_records(std::span<const Record> records);
size_t serialized_size(const Record& record);

}  // namespace tapstack::fuzz
