#include "tests/fuzz/fixups.h"

#include <algorithm>

#include "md5opt/option.h"
#include "stack/checksum.h"
#include "stack/frame.h"
#include "stack/ipv4.h"
#include "stack/seq.h"
#include "stack/tcp/header.h"
#include "stack/tcp/tcp.h"

namespace tapstack::fuzz {
namespace {

// The parts of a frame the fix-ups touch, when it is laid out as Ethernet and IPv4.
struct Layout {
  MutableByteView ip_header;
  MutableByteView transport;  // what the IPv4 total length says follows the header
  uint8_t protocol = 0;
  bool fragment = false;
  Ipv4Address source;
  Ipv4Address destination;
};

std::optional<Layout> layout(Bytes& frame) {
  if (frame.size() < kEthernetHeaderSize + 20 || load_be16(frame.data() + 12) != kEtherTypeIpv4) {
    return std::nullopt;
  }
  uint8_t* ip = frame.data() + kEthernetHeaderSize;
  const size_t header_size = (ip[0] & 0x0f) * 4u;
  const size_t available = frame.size() - kEthernetHeaderSize;
  if (header_size < 20 || header_size > available) return std::nullopt;
  const size_t total = std::min<size_t>(load_be16(ip + 2), available);
  Layout l;
  l.ip_header = {ip, header_size};
  l.transport = {ip + header_size, total > header_size ? total - header_size : 0};
  l.protocol = ip[9];
  l.fragment = (load_be16(ip + 6) & 0x3fff) != 0;
  l.source = {load_be32(ip + 12)};
  l.destination = {load_be32(ip + 16)};
  return l;
}

void fix_ipv4_length(Bytes& frame) {
  if (frame.size() < kEthernetHeaderSize + 20 || load_be16(frame.data() + 12) != kEtherTypeIpv4) {
    return;
  }
  store_be16(frame.data() + kEthernetHeaderSize + 2,
             static_cast<uint16_t>(std::min<size_t>(frame.size() - kEthernetHeaderSize, 0xffff)));
}

void rewrite_relative(const Layout& l, const FlowTracker& flows) {
  uint8_t* t = l.transport.data();
  const auto state = flows.state(l.source, load_be16(t), load_be16(t + 2));
  store_be32(t + 4, load_be32(t + 4) + state.rcv_nxt);
  store_be32(t + 8, load_be32(t + 8) + state.snd_max);
}

void sign(const Layout& l, const FixupContext& context) {
  const auto digest_at = md5opt::find_md5_option(l.transport);
  if (!digest_at) return;
  const md5opt::Md5Key* key = context.peer_keys.lookup(IpAddress(l.source));
  const ByteView key_bytes = key ? key->bytes() : md5opt::text_bytes(kStrangerKey);
  store_be16(l.transport.data() + 16, 0);
  (void)context.signer.sign_in_place(IpAddress(l.source), IpAddress(l.destination), l.transport,
                                     *digest_at, key_bytes);
}

void fix_transport_checksum(const Layout& l) {
  uint8_t* t = l.transport.data();
  if (l.protocol == kProtocolTcp && l.transport.size() >= 20) {
    store_be16(t + 16, 0);
    store_be16(t + 16, tcp_checksum(l.transport, l.source, l.destination));
  } else if (l.protocol == kProtocolIcmp && l.transport.size() >= 8) {
    store_be16(t + 2, 0);
    store_be16(t + 2, internet_checksum(l.transport));
  }
}

}  // namespace

void FlowTracker::learn(ByteView frame) {
  if (frame.size() < kEthernetHeaderSize + 40 || load_be16(frame.data() + 12) != kEtherTypeIpv4)
    return;
  const uint8_t* ip = frame.data() + kEthernetHeaderSize;
  const size_t header_size = (ip[0] & 0x0f) * 4u;
  if (ip[9] != kProtocolTcp || frame.size() < kEthernetHeaderSize + header_size + 20) return;
  const uint8_t* t = ip + header_size;
  const uint8_t flags = t[13];
  const size_t headers = header_size + (t[12] >> 4) * 4u;
  const size_t total = load_be16(ip + 2);
  const size_t payload = total > headers ? total - headers : 0;
  State& s = flows_[{load_be32(ip + 16), load_be16(t + 2), load_be16(t)}];
  if (flags & tcp_flags::kAck) {
    s.rcv_nxt = load_be32(t + 8);
    s.acknowledged = true;
  } else if (flags & tcp_flags::kSyn) {
    s = State{};  // an active open: a new flow, nothing acknowledged yet
  }
  const uint32_t end = load_be32(t + 4) + static_cast<uint32_t>(payload) +
                       ((flags & tcp_flags::kSyn) ? 1 : 0) + ((flags & tcp_flags::kFin) ? 1 : 0);
  if ((flags & tcp_flags::kSyn) || Seq(end) > Seq(s.snd_max)) s.snd_max = end;
}

FlowTracker::State FlowTracker::state(Ipv4Address peer, uint16_t peer_port,
                                      uint16_t our_port) const {
  const auto it = flows_.find({peer.value, peer_port, our_port});
  return it == flows_.end() ? State{} : it->second;
}

void apply_fixups(uint8_t fixups, Bytes& frame, const FixupContext& context) {
  if (fixups & fixup::kIpv4) fix_ipv4_length(frame);
  const auto l = layout(frame);
  if (!l) return;
  const bool whole_tcp = l->protocol == kProtocolTcp && !l->fragment && l->transport.size() >= 20;
  if (whole_tcp && (fixups & fixup::kRelative)) rewrite_relative(*l, context.flows);
  if (whole_tcp && (fixups & fixup::kSign)) sign(*l, context);
  if (fixups & fixup::kIpv4) {
    store_be16(l->ip_header.data() + 10, 0);
    store_be16(l->ip_header.data() + 10, internet_checksum(l->ip_header));
  }
  if ((fixups & fixup::kChecksum) && !l->fragment) fix_transport_checksum(*l);
}

}  // namespace tapstack::fuzz
