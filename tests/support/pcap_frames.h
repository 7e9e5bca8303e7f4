// Reading back the pcap files the stack's tools write: raw frames through libpcap (verbatim,
// malformed ones included), and a summary through libtins, an independent decoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stack/error.h"

namespace tapstack::testing {

// Every record of a pcap file, byte for byte.
Result<std::vector<std::vector<uint8_t>>> read_pcap_frames(const std::string& path);

// What libtins (Tins::FileSniffer) finds in a pcap file of Ethernet frames.
struct PcapSummary {
  size_t frames = 0;  // all frames libtins could decode
  size_t arp_requests = 0;
  size_t arp_replies = 0;
  size_t echo_requests = 0;          // ICMP type 8, in unfragmented or first-fragment datagrams
  size_t echo_replies = 0;           // ICMP type 0, likewise
  size_t protocol_unreachables = 0;  // ICMP type 3 code 2
  size_t ipv4_fragments = 0;         // IPv4 frames with MF set or a non-zero offset
};
Result<PcapSummary> summarize_pcap(const std::string& path);

}  // namespace tapstack::testing
