// Writes Ethernet frames to a pcap file (link type EN10MB) through libtins, byte for byte as
// they crossed the TAP device: malformed frames are written verbatim, not re-encoded.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "stack/bytes.h"
#include "stack/error.h"

namespace Tins {
class PacketWriter;
}

namespace tapstack {

class PcapWriter {
 public:
  // Creates (or truncates) the file at path.
  static Result<PcapWriter> open(const std::string& path);

  PcapWriter(PcapWriter&&) noexcept;
  PcapWriter& operator=(PcapWriter&&) noexcept;
  ~PcapWriter();  // flushes and closes the file

  // Stamped with the wall clock (CLOCK_REALTIME), as tcpdump stamps what it captures.
  Status write(ByteView frame);
  Status write(ByteView frame, std::chrono::microseconds since_epoch);

  const std::string& path() const { return path_; }

 private:
  PcapWriter(std::unique_ptr<Tins::PacketWriter> writer, std::string path);

  std::unique_ptr<Tins::PacketWriter> writer_;
  std::string path_;
};

}  // namespace tapstack
