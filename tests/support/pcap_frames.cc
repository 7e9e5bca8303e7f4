#include "tests/support/pcap_frames.h"

#include <pcap/pcap.h>

#include <cerrno>
#include <exception>
#include <memory>

#include <fmt/format.h>
#include <tins/arp.h>
#include <tins/ethernetII.h>
#include <tins/icmp.h>
#include <tins/ip.h>
#include <tins/sniffer.h>

namespace tapstack::testing {
namespace {

void count_frame(const Tins::PDU& pdu, PcapSummary& summary) {
  ++summary.frames;
  if (const auto* arp = pdu.find_pdu<Tins::ARP>()) {
    if (arp->opcode() == Tins::ARP::REQUEST) ++summary.arp_requests;
    if (arp->opcode() == Tins::ARP::REPLY) ++summary.arp_replies;
  }
  const auto* ip = pdu.find_pdu<Tins::IP>();
  if (!ip) return;
  if (ip->is_fragmented()) ++summary.ipv4_fragments;
  const auto* icmp = pdu.find_pdu<Tins::ICMP>();
  if (!icmp) return;
  if (icmp->type() == Tins::ICMP::ECHO_REQUEST) ++summary.echo_requests;
  if (icmp->type() == Tins::ICMP::ECHO_REPLY) ++summary.echo_replies;
  if (icmp->type() == Tins::ICMP::DEST_UNREACHABLE && icmp->code() == 2) {
    ++summary.protocol_unreachables;
  }
}

}  // namespace

Result<std::vector<std::vector<uint8_t>>> read_pcap_frames(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, decltype(&pcap_close)> pcap(pcap_open_offline(path.c_str(), error),
                                                      &pcap_close);
  if (!pcap) return Error{EIO, fmt::format("reading pcap '{}': {}", path, error)};
  std::vector<std::vector<uint8_t>> frames;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(pcap.get(), &header, &data) == 1) {
    frames.emplace_back(data, data + header->caplen);
  }
  return frames;
}

Result<PcapSummary> summarize_pcap(const std::string& path) {
  try {
    Tins::FileSniffer sniffer(path);
    PcapSummary summary;
    sniffer.sniff_loop([&summary](Tins::PDU& pdu) {
      count_frame(pdu, summary);
      return true;
    });
    return summary;
  } catch (const std::exception& e) {
    return Error{EIO, fmt::format("reading pcap '{}' with libtins: {}", path, e.what())};
  }
}

}  // namespace tapstack::testing
