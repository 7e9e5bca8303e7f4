#include "tests/fuzz/records.h"

#include <algorithm>

namespace tapstack::fuzz {

Duration advance_of(uint8_t code) {
  if (code <= 100) return Duration::milliseconds(code);
  if (code <= 200) return Duration::milliseconds(100 * (code - 100));
  return Duration::seconds(10 * (code - 200));
}

uint8_t advance_code(Duration d) {
  for (int code = 0; code < 255; ++code) {
    if (advance_of(static_cast<uint8_t>(code)) >= d) return static_cast<uint8_t>(code);
  }
  return 255;
}

std::vector<Record> parse_records(ByteView input) {
  std::vector<Record> records;
  size_t at = 0;
  while (input.size() - at >= kRecordHeaderSize) {
    const size_t length = load_be16(input.data() + at + 2);
    if (input.size() - at - kRecordHeaderSize < length) break;
    const uint8_t* frame = input.data() + at + kRecordHeaderSize;
    records.push_back(Record{input[at], input[at + 1], Bytes(frame, frame + length)});
    at += kRecordHeaderSize + length;
  }
  return records;
}

size_t serialized_size(const Record& record) {
  return kRecordHeaderSize + record.frame.size();
}

Bytes serialize_records(std::span<const Record> records) {
  Bytes out;
  for (const Record& r : records) {
    const size_t length = std::min<size_t>(r.frame.size(), 0xffff);
    const uint8_t header[kRecordHeaderSize] = {
        r.control, r.advance, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)};
    out.insert(out.end(), header, header + kRecordHeaderSize);
    out.insert(out.end(), r.frame.begin(), r.frame.begin() + static_cast<ptrdiff_t>(length));
  }
  return out;
}

}  // namespace tapstack::fuzz
