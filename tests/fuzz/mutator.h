// The structure-aware mutator of the receive-path target (LLVMFuzzerCustomMutator). It edits
// records, and the header fields of their frames, so that most mutants still pass the checks
// in front of TCP: the record bits make the replay repair lengths and checksums and sign with
// the peer's key (records.h), and sequence and acknowledgment numbers are chosen as small
// offsets from the connection's state, near the window. Byte-level changes go to a byte
// mutator: libFuzzer's LLVMFuzzerMutate in fuzz builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "stack/random.h"
#include "tests/fuzz/frames.h"
#include "tests/fuzz/records.h"

namespace tapstack::fuzz {

class Mutator {
 public:
  // Mutates data[0, size) in place, within max_size; returns the new size.
  using ByteMutator = std::function<size_t(uint8_t* data, size_t size, size_t max_size)>;

  Mutator(uint64_t seed, ByteMutator byte_mutator);

  // libFuzzer's contract: mutates a serialized input in place, returns its new size.
  size_t mutate(uint8_t* data, size_t size, size_t max_size);
  // The first records of a followed by the last ones of b, into out.
  size_t cross_over(ByteView a, ByteView b, uint8_t* out, size_t max_size);

  // New records from the templates: a segment on one of the world's flows, ARP, ping, ...
  std::vector<Record> random_records();
  // One change to one field of a frame (any frame: one that is not TCP gets byte changes).
  void mutate_frame(Bytes& frame);

 private:
  void mutate_records(std::vector<Record>& records);
  void mutate_tcp_field(TcpFrame& f);
  Record tcp_record();
  Bytes random_options(bool syn, bool sign);
  Bytes malformed_options();
  Bytes random_payload();
  uint8_t random_flags();
  uint32_t random_offset();
  uint16_t random_mss();
  uint8_t random_advance();
  void mutate_bytes(Bytes& bytes, size_t max_size);
  size_t pick(size_t n) { return static_cast<size_t>(random_.below(n)); }
  bool chance(double p) { return random_.chance(p); }

  Random random_;
  ByteMutator byte_mutator_;
};

// Fits records into max_size bytes: drops trailing records, then trims the last frame.
Bytes fit(std::vector<Record> records, size_t max_size);

}  // namespace tapstack::fuzz
