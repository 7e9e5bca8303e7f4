#include "tap/pcap_writer.h"

#include <cerrno>
#include <cstdio>
#include <exception>
#include <utility>

#include <fmt/format.h>
#include <tins/data_link_type.h>
#include <tins/ethernetII.h>
#include <tins/exceptions.h>
#include <tins/packet.h>
#include <tins/packet_writer.h>
#include <tins/rawpdu.h>

#include "tap/system_error.h"

namespace tapstack {

Result<PcapWriter> PcapWriter::open(const std::string& path) {
  // libtins 4.0 reads libpcap's error text after freeing it when the file cannot be opened
  // (a use after free), so the usual failures are caught here first, in errno's words.
  std::FILE* probe = std::fopen(path.c_str(), "wb");
  if (!probe) {
    return errno_error(errno, fmt::format("cannot open pcap file '{}' for writing (check that "
                                          "the directory exists and is writable)",
                                          path));
  }
  std::fclose(probe);
  try {
    auto writer =
        std::make_unique<Tins::PacketWriter>(path, Tins::DataLinkType<Tins::EthernetII>());
    return PcapWriter(std::move(writer), path);
  } catch (const std::exception& e) {
    return Error{EIO, fmt::format("cannot open pcap file '{}' for writing: {}", path, e.what())};
  }
}

PcapWriter::PcapWriter(std::unique_ptr<Tins::PacketWriter> writer, std::string path)
    : writer_(std::move(writer)), path_(std::move(path)) {}

PcapWriter::PcapWriter(PcapWriter&&) noexcept = default;
PcapWriter& PcapWriter::operator=(PcapWriter&&) noexcept = default;
PcapWriter::~PcapWriter() = default;

Status PcapWriter::write(ByteView frame) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return write(frame, std::chrono::duration_cast<std::chrono::microseconds>(now));
}

Status PcapWriter::write(ByteView frame, std::chrono::microseconds since_epoch) {
  try {
    // A RawPDU serializes to exactly the bytes it holds, whatever they are.
    const Tins::RawPDU raw(frame.data(), static_cast<uint32_t>(frame.size()));
    Tins::Packet packet(raw, Tins::Timestamp(since_epoch));
    writer_->write(packet);
    return Ok{};
  } catch (const std::exception& e) {
    return Error{EIO, fmt::format("writing to pcap file '{}': {}", path_, e.what())};
  }
}

}  // namespace tapstack
