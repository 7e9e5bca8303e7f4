// TCP output: what may be sent now, building segments, resets.
// RFC 9293 §3.8.6 (window management: Nagle, silly-window avoidance), RFC 6298 (the timer).
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "stack/checksum.h"
#include "stack/tcp/congestion.h"
#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

using namespace tcp_flags;

bool can_send_data(TcpState state) {
  return state == TcpState::Established || state == TcpState::CloseWait ||
         state == TcpState::FinWait1 || state == TcpState::Closing || state == TcpState::LastAck;
}

}  // namespace

// Sends what the windows, Nagle and silly-window avoidance allow, then the FIN when the
// application shut down writing and everything before it went out; in SACK recovery, what
// RFC 6675 says. Then arms the retransmission or persist timer. Linux: tcp_write_xmit()
void Tcp::write_xmit(Connection& c, Instant now) {
  if (!can_send_data(c.state)) return;
  if (c.in_recovery && c.sack) {
    sack_recovery_send(c, now);
  } else {
    send_in_window(c, now);
  }
  if (c.write_shutdown && c.snd_max > c.buffered_end()) {
    if (c.state == TcpState::Established) set_state(c, TcpState::FinWait1, "our FIN sent");
    if (c.state == TcpState::CloseWait) set_state(c, TcpState::LastAck, "our FIN sent");
  }
  if (c.in_flight() > 0) {
    if (c.retransmit_at.is_never() || c.persist) arm_retransmit(c, now);
  } else if ((c.snd_nxt < c.buffered_end() || c.write_shutdown) && c.snd_max <= c.buffered_end()) {
    // Something to send and nothing in flight: the window is shut, or too small for silly-
    // window avoidance to send into. Probe, or override, when the timer fires (RFC 9293
    // §3.8.6.1; RFC 1122 §4.2.3.4). Linux: tcp_check_probe_timer()
    if (!c.persist) {
      c.persist = true;
      c.retransmit_at = now + c.rto;
    }
  } else {
    c.retransmit_at = Instant::never();
    c.persist = false;
  }
}

namespace {
bool resending_any(const Connection& c) {
  return c.snd_nxt < c.snd_max;
}
}  // namespace

// The RFC 5681 send loop: new data, or after a timeout data again from snd_nxt (skipping what
// the peer SACKed), as far as min(cwnd, the peer's window) reaches.
void Tcp::send_in_window(Connection& c, Instant now) {
  const uint32_t mss = send_mss(c);
  const uint32_t largest = offload_segment_limit(c, mss);
  if (config_.slow_start_after_idle && c.in_flight() == 0 && c.snd_nxt < c.buffered_end() &&
      !c.last_data_sent.is_never() && now - c.last_data_sent > c.rto) {
    // Linux: tcp_slow_start_after_idle_check()
    ctx_.trace.step("idle {} ms, longer than the RTO: cwnd restarts",
                    (now - c.last_data_sent).ns() / 1'000'000);
    congestion_after_idle(c, initial_window(c), now - c.last_data_sent);
  }
  for (;;) {
    const Seq end = c.buffered_end();
    // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment out
    // beyond cwnd, so that a small window still gets the third. Linux: tcp_cwnd_test() with
    // the dupack allowance of tcp_fastretrans_alert()
    const uint32_t limited =
        !c.in_recovery && !resending_any(c) ? std::min<uint32_t>(c.dup_acks, 2) * mss : 0;
    const Seq window_end = c.snd_una + std::min(c.snd_wnd, c.cwnd + limited);
    const bool resending = c.snd_nxt < c.snd_max;
    const uint32_t before_sacked = resending ? skip_sacked(c) : UINT32_MAX;
    if (c.snd_nxt < end) {
      const uint32_t available = std::min(static_cast<uint32_t>(end - c.snd_nxt), before_sacked);
      const int32_t room = window_end - c.snd_nxt;
      if (room <= 0) return;
      uint32_t length =
          std::min({resending ? mss : largest, available, static_cast<uint32_t>(room)});
      // A segment for the link to cut ends on a multiple of the MSS unless it takes all
      // there is, so that no runt goes out mid-stream. Linux: tcp_mss_split_point()
      if (length > mss && length < available) length -= length % mss;
      if (!resending && !c.sws_override && length < mss && length < available) {
        // Sender silly-window avoidance: a runt the window forces only if it is worth it.
        if (length < c.max_snd_wnd / 2) return;
      } else if (!resending && length < mss && !c.options.no_delay && c.in_flight() > 0) {
        return;  // Nagle (RFC 896): one small segment unacknowledged at a time
      }
      const bool fin = c.write_shutdown && c.snd_nxt + length == end;
      const uint8_t flags = kAck | (fin ? kFin : 0) | (c.snd_nxt + length == end ? kPsh : 0);
      transmit(c, c.snd_nxt, flags, length, now);
      c.snd_nxt += length + (fin ? 1 : 0);
      c.snd_max = seq_max(c.snd_max, c.snd_nxt);
      continue;
    }
    if (c.write_shutdown && c.snd_nxt == end) {
      transmit(c, c.snd_nxt, kAck | kFin, 0, now);
      c.snd_nxt += 1;
      c.snd_max = seq_max(c.snd_max, c.snd_nxt);
    }
    return;
  }
}

// The most new data one segment may carry: the MSS, or when the link cuts TCP segments
// itself (a TAP with TSO) as many whole MSS as fit in one IPv4 datagram, for a peer whose
// segments are not signed. RFC 2385 signs each segment on the wire, which the link cannot
// do: Linux turns GSO off for a socket with a key (sk_gso_disable() in tcp_md5_do_add()).
// Linux: tcp_tso_autosize(), tcp_send_mss()
uint32_t Tcp::offload_segment_limit(const Connection& c, uint32_t mss) const {
  if (!ctx_.ip.link_offloads().tcp_segmentation || md5_key(c) || mss == 0) return mss;
  const uint32_t header = kTcpMinHeaderSize + (c.mss - mss);
  const uint32_t room = static_cast<uint32_t>(max_ip_payload(c.remote_address.family())) - header;
  return std::max(mss, room / mss * mss);
}

void Tcp::arm_retransmit(Connection& c, Instant now) {
  c.persist = false;
  c.retransmit_at = now + c.rto;
}

// One segment of the connection: flags, and `length` bytes of the send buffer from seq.
// Linux: tcp_transmit_skb()
void Tcp::transmit(Connection& c, Seq seq, uint8_t flags, uint32_t length, Instant now) {
  const md5opt::Md5Key* key = md5_key(c);
  const TcpOptionPlan options = segment_options(c, flags, key, now);
  const bool retransmission = seq < c.snd_max;
  if (retransmission) {
    ctx_.counters.add(Counter::TcpRetransSegs);
    ++c.total_retransmits;
    if (c.timed_seq && *c.timed_seq >= seq) c.timed_seq.reset();  // Karn's rule
  } else if (!c.timed_seq && (length > 0 || (flags & (kSyn | kFin)))) {
    c.timed_seq = seq;
    c.timed_at = now;
  }
  uint8_t* payload = segment_buffer_.data() + kTcpMaxHeaderSize;
  if (length > 0) {
    c.last_data_sent = now;
    c.send_buffer.copy_out(static_cast<size_t>(seq - c.send_buffer_seq), {payload, length});
  }
  const Seq ack = (flags & kAck) ? c.rcv_nxt : Seq(0);
  if (flags & kAck) {
    c.last_ack_sent = c.rcv_nxt;
    c.delayed_ack_at = Instant::never();
    c.ack_now = false;
  }
  // More than one segment's worth (TSO): the link cuts it into segments that each carry these
  // options, so each takes the MSS less this frame's options (a D-SACK block included).
  const uint32_t per_segment = c.mss - static_cast<uint32_t>(options.size());
  emit({.source = c.local_address,
        .destination = c.remote_address,
        .source_port = c.local_port,
        .destination_port = c.remote_port,
        .seq = seq,
        .ack = ack,
        .flags = flags,
        .window = (flags & kSyn) ? syn_window(c) : advertise_window(c),
        .options = options,
        .payload = {payload, length},
        .key = key,
        .segment_size = length > per_segment ? static_cast<uint16_t>(per_segment) : uint16_t{0},
        .sender = c.state == TcpState::TimeWait ? TcpSender::TimeWaitAck : TcpSender::Socket},
       now);
}

// The options of c's next segment with these flags. Sending them commits the connection: what
// a SYN-ACK agrees to is what it uses, and a D-SACK block is reported once (RFC 2883 §4).
TcpOptionPlan Tcp::segment_options(Connection& c, uint8_t flags, const md5opt::Md5Key* key,
                                   Instant now) {
  if (!(flags & kSyn)) {
    const TcpOptionPlan options = established_options(c, key, now);
    if (options.sack_count > 0) c.dsack.reset();  // a D-SACK block goes first when there is one
    return options;
  }
  const TcpOptionPlan options = syn_options(c, key, now);
  if (c.state != TcpState::SynSent) {
    c.window_scaling = options.window_scale.has_value();
    c.timestamps = options.timestamps.has_value();
    c.sack = options.sack_permitted;
    if (!c.window_scaling) c.snd_wscale = c.rcv_wscale = 0;
  }
  return options;
}

// The options of a SYN or SYN-ACK. A SYN offers what this stack does; a SYN-ACK only what the
// peer offered. With an MD5 key timestamps are left out (a SYN-ACK keeps them only when SACK
// is not offered), so Linux's SYNs with MD5 carry NOP NOP MD5, MSS, NOP NOP SACK-permitted,
// NOP window-scale.
// Linux: tcp_syn_options(), tcp_synack_options()
TcpOptionPlan Tcp::syn_options(const Connection& c, const md5opt::Md5Key* key, Instant now) const {
  const bool active = c.state == TcpState::SynSent;
  const bool offer_scale = config_.window_scaling && (active || c.peer_offered_window_scale);
  const bool offer_sack = config_.sack && (active || c.peer_offered_sack);
  bool offer_timestamps = config_.timestamps && (active || c.peer_offered_timestamps);
  if (key) offer_timestamps = !active && offer_timestamps && !offer_sack;
  TcpOptionPlan options{.md5 = key != nullptr, .mss = c.advmss, .sack_permitted = offer_sack};
  if (offer_timestamps) options.timestamps = TcpTimestamps{ts_now(c, now), c.ts_recent};
  if (offer_scale) options.window_scale = c.rcv_wscale;
  return options;
}

// The options of every other segment: MD5, timestamps, then as many SACK blocks as the space
// left holds. Linux: tcp_established_options()
TcpOptionPlan Tcp::established_options(const Connection& c, const md5opt::Md5Key* key, Instant now,
                                       OptionValues values) const {
  TcpOptionPlan options{.md5 = key != nullptr};
  if (c.timestamps) options.timestamps = TcpTimestamps{ts_now(c, now), c.ts_recent};
  if (!c.sack) return options;
  const size_t capacity = options.sack_capacity();
  if (values == OptionValues::SizeOnly) {  // as many blocks as below, without their edges
    const size_t blocks = (c.dsack ? 1 : 0) + c.out_of_order_segments().size();
    options.sack_count = static_cast<uint8_t>(std::min(capacity, blocks));
    return options;
  }
  auto add = [&](Seq left, Seq right) {
    if (options.sack_count < capacity) options.sack[options.sack_count++] = {left, right};
  };
  if (c.dsack) add(c.dsack->left, c.dsack->right);  // RFC 2883 §4: the duplicate first
  // RFC 2018 §4: then the block holding the segment that arrived last, then the others.
  const auto queue = c.out_of_order_segments();
  const auto latest = std::find_if(queue.begin(), queue.end(), [&](const auto& s) {
    return seq_in_window(c.out_of_order->latest, s.seq, s.end());
  });
  if (latest != queue.end()) add(latest->seq, latest->end());
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it != latest) add(it->seq, it->end());
  }
  return options;
}

// Our RFC 7323 clock: milliseconds, offset per connection so that TSval reveals no uptime.
uint32_t Tcp::ts_now(const Connection& c, Instant now) const {
  return static_cast<uint32_t>(now.ns() / 1'000'000) + c.ts_offset;
}

// Linux: tcp_current_mss() — the options a segment carries now come out of the MSS: 20 bytes
// of MD5 to a peer with a key, 12 of timestamps, and the SACK blocks there are to send. Their
// size does not depend on the clock.
uint32_t Tcp::send_mss(const Connection& c) const {
  return c.mss - static_cast<uint32_t>(
                     established_options(c, md5_key(c), Instant{}, OptionValues::SizeOnly).size());
}

// A pure ACK carries the highest sequence number sent (RFC 9293's SND.NXT): after a timeout
// snd_nxt goes back to resend, and an ACK from there would fall left of the peer's window.
void Tcp::send_ack(Connection& c, Instant now) {
  transmit(c, c.snd_max, kAck, 0, now);
}

void Tcp::send_syn(Connection& c, Instant now) {
  transmit(c, c.iss, c.state == TcpState::SynSent ? kSyn : kSyn | kAck, 0, now);
  c.snd_nxt = c.iss + 1;
  c.snd_max = seq_max(c.snd_max, c.snd_nxt);
  arm_retransmit(c, now);
}

// A segment the peer must answer with an ACK, carrying no new data: an old sequence number.
// Linux: tcp_xmit_probe_skb()
void Tcp::send_probe(Connection& c, Instant now) {
  const md5opt::Md5Key* key = md5_key(c);
  emit({.source = c.local_address,
        .destination = c.remote_address,
        .source_port = c.local_port,
        .destination_port = c.remote_port,
        .seq = c.snd_una - 1,
        .ack = c.rcv_nxt,
        .flags = kAck,
        .window = advertise_window(c),
        .options = segment_options(c, kAck, key, now),
        .key = key},
       now);
}

// RFC 9293 §3.10.7: an abort sends <SEQ=SND.NXT><CTL=RST>. Linux: tcp_send_active_reset()
void Tcp::send_reset(Connection& c, Instant now) {
  ctx_.counters.add(Counter::TcpOutRsts);
  const md5opt::Md5Key* key = md5_key(c);
  emit({.source = c.local_address,
        .destination = c.remote_address,
        .source_port = c.local_port,
        .destination_port = c.remote_port,
        .seq = c.snd_max,
        .ack = c.rcv_nxt,
        .flags = kRst | kAck,
        .options = {.md5 = key != nullptr},
        .key = key},
       now);
}

// The reset answering a segment that belongs to no connection (RFC 9293 §3.10.7.1), signed
// with `key` when one is given (Linux signs with the key of the socket or listener that
// matched). Linux: tcp_v4_send_reset()
void Tcp::send_reset_for(const TcpSegment& seg, const md5opt::Md5Key* key, Instant now) {
  if (seg.has(kRst)) return;
  ctx_.counters.add(Counter::TcpOutRsts);
  OutgoingSegment reset{.source = seg.destination_address,
                        .destination = seg.source_address,
                        .source_port = seg.destination_port,
                        .destination_port = seg.source_port,
                        .flags = kRst,
                        .options = {.md5 = key != nullptr},
                        .key = key,
                        .sender = TcpSender::Reset};
  if (seg.has(kAck)) {
    reset.seq = seg.ack;
  } else {
    reset.ack = seg.seq + seg.length();
    reset.flags |= kAck;
  }
  emit(reset, now);
}

namespace {

// The Linux functions that would have chosen a segment's options, written them, and signed it.
struct OptionSteps {
  const char* chooser;
  const char* writer;
  const char* hasher;
};

OptionSteps option_steps(uint8_t flags, TcpSender sender, bool ipv4) {
  switch (sender) {
    case TcpSender::Reset:
      return ipv4 ? OptionSteps{"tcp_v4_send_reset", "tcp_v4_send_reset", "tcp_v4_md5_hash_hdr"}
                  : OptionSteps{"tcp_v6_send_reset", "tcp_v6_send_response",
                                "tcp_v6_md5_hash_hdr"};
    case TcpSender::TimeWaitAck:
      return ipv4 ? OptionSteps{"tcp_v4_timewait_ack", "tcp_v4_send_ack", "tcp_v4_md5_hash_hdr"}
                  : OptionSteps{"tcp_v6_timewait_ack", "tcp_v6_send_response",
                                "tcp_v6_md5_hash_hdr"};
    case TcpSender::Socket:
      break;
  }
  const char* chooser = !(flags & kSyn)  ? "tcp_established_options"
                        : (flags & kAck) ? "tcp_synack_options"
                                         : "tcp_syn_options";
  return {chooser, "tcp_options_write", ipv4 ? "tcp_v4_md5_hash_skb" : "tcp_v6_md5_hash_skb"};
}

// " | options: md5 reserved 20 bytes first, then mss 1460, sack-ok, wscale 7
// (tcp_synack_options) | option written, ... | checksum": the trace of what emit() did with
// the options, named as the Linux functions that would have done it.
std::string options_trace(const OutgoingSegment& outgoing, std::optional<size_t> digest_at) {
  const TcpOptionPlan& options = outgoing.options;
  if (options.size() == 0) return " | checksum";
  const OptionSteps steps =
      option_steps(outgoing.flags, outgoing.sender, outgoing.destination.is_ipv4());
  const std::string names = options.describe();
  std::string text = " | options: ";
  if (options.md5) {
    text += fmt::format("md5 reserved {} bytes first{}", md5opt::kMd5OptionSpace,
                        names.empty() ? "" : ", then ");
  }
  text += fmt::format("{} ({})", names, steps.chooser);
  if (digest_at) {
    text += fmt::format(" | md5 option written, digest slot at +{} ({}) | digest filled late ({})",
                        *digest_at, steps.writer, steps.hasher);
  }
  return text + " | checksum";
}

}  // namespace

// Builds the segment, its options written from their plan; signs it when it has a key, then
// checksums it and hands it to the IP layer.
void Tcp::emit(const OutgoingSegment& outgoing, Instant now) {
  const IpAddress& source = outgoing.source;
  const IpAddress& destination = outgoing.destination;
  const ByteView payload = outgoing.payload;
  const size_t header_length = kTcpMinHeaderSize + outgoing.options.size();
  uint8_t* header = segment_buffer_.data() + kTcpMaxHeaderSize - header_length;
  store_be16(header, outgoing.source_port);
  store_be16(header + 2, outgoing.destination_port);
  store_be32(header + 4, outgoing.seq.value());
  store_be32(header + 8, outgoing.ack.value());
  header[12] = static_cast<uint8_t>(header_length / 4 << 4);
  header[13] = outgoing.flags;
  store_be16(header + 14, outgoing.window);
  store_be16(header + 16, 0);
  store_be16(header + 18, 0);
  std::optional<size_t> digest_at = outgoing.options.write(header + kTcpMinHeaderSize);
  if (digest_at) *digest_at += kTcpMinHeaderSize;
  if (payload.data() != header + header_length) {
    std::copy(payload.begin(), payload.end(), header + header_length);
  }
  const MutableByteView segment{header, header_length + payload.size()};
  if (outgoing.key) {
    // The digest filled in last, over the finished segment; then the checksum, which covers
    // it. Linux: tcp_v4_md5_hash_skb() from tcp_transmit_skb()
    if (!digest_at ||
        !signer_.sign_in_place(source, destination, segment, *digest_at, outgoing.key->bytes())) {
      return;  // an unsigned segment would only be dropped by the peer
    }
  }
  FrameOffload offload;
  if (outgoing.segment_size > 0) {
    // For the link to cut into segments of segment_size and checksum each (TSO/GSO).
    // Linux: tcp_v4_send_check() leaves the pseudo-header sum for CHECKSUM_PARTIAL
    offload = {.checksum_offloaded = true, .segment_size = outgoing.segment_size};
    store_be16(header + 16, tcp_pseudo_header_sum(segment.size(), source, destination));
    // Linux counts what goes on the wire: tcp_skb_pcount() segments.
    ctx_.counters.add(Counter::TcpOutSegs,
                      (payload.size() + outgoing.segment_size - 1) / outgoing.segment_size);
  } else {
    store_be16(header + 16, tcp_checksum(segment, source, destination));
    ctx_.counters.add(Counter::TcpOutSegs);
  }
  if (ctx_.trace.enabled()) {
    ctx_.trace.line("tx {} > {} {} seq={} ack={} win={} len={}{}",
                    Endpoint{source, outgoing.source_port},
                    Endpoint{destination, outgoing.destination_port},
                    tcp_flags_text(outgoing.flags), outgoing.seq.value(), outgoing.ack.value(),
                    outgoing.window, payload.size(), options_trace(outgoing, digest_at));
  }
  ctx_.ip.send_segment(source, destination, segment, now, offload);
}

// The window to advertise, with receiver silly-window avoidance (RFC 9293 §3.8.6.2.2): the
// right edge moves only by at least min(buffer / 2, MSS), and never moves left. Scaled by our
// shift when the peer agreed to window scaling (RFC 7323 §2.3). Linux: tcp_select_window()
uint16_t Tcp::advertise_window(Connection& c) {
  const uint8_t shift = c.window_scaling ? c.rcv_wscale : 0;
  const uint32_t largest = 65535u << shift;
  uint32_t free = static_cast<uint32_t>(std::min<size_t>(c.receive_buffer.free(), largest));
  free &= ~((1u << shift) - 1);  // what the scaled field can say exactly
  const uint32_t threshold =
      std::min<uint32_t>(static_cast<uint32_t>(c.receive_buffer.limit() / 2), c.mss);
  const Seq edge = c.rcv_nxt + free;
  if (edge - c.rcv_adv >= static_cast<int32_t>(threshold)) c.rcv_adv = edge;
  const int32_t window = std::max<int32_t>(c.rcv_adv - c.rcv_nxt, 0);
  return static_cast<uint16_t>(std::min<uint32_t>(static_cast<uint32_t>(window) >> shift, 65535));
}

// A SYN's window is never scaled (RFC 7323 §2.2).
uint16_t Tcp::syn_window(Connection& c) {
  const uint32_t window = static_cast<uint32_t>(std::min<size_t>(c.receive_buffer.free(), 65535));
  c.rcv_adv = c.rcv_nxt + window;
  return static_cast<uint16_t>(window);
}

// After the application read: tell the peer when the window opened enough to matter, as
// Linux decides it: only when the window the peer knows is at most half the largest we could
// offer, and the one we can offer now is at least twice it. Each update costs the peer a
// receive path (and, over the TAP, the kernel a TCP-MD5 check): a rule of "2 MSS more than
// advertised" sent one after nearly every read of a bulk transfer. Between updates the ACKs
// that data calls for carry the window anyway.
// Linux: tcp_cleanup_rbuf()
void Tcp::after_read(Connection& c, Instant now) {
  if (!c.synchronized() || c.state == TcpState::TimeWait || c.fin_received) return;
  const uint8_t shift = c.window_scaling ? c.rcv_wscale : 0;
  const uint32_t largest =
      static_cast<uint32_t>(std::min<size_t>(c.receive_buffer.limit(), size_t{65535} << shift));
  const uint32_t advertised = static_cast<uint32_t>(std::max<int32_t>(c.rcv_adv - c.rcv_nxt, 0));
  if (2 * static_cast<uint64_t>(advertised) > largest) return;
  uint32_t free = static_cast<uint32_t>(std::min<size_t>(c.receive_buffer.free(), largest));
  free &= ~((1u << shift) - 1);  // what the scaled field can say exactly
  if (free == 0 || free < 2 * static_cast<uint64_t>(advertised)) return;
  // Receiver SWS avoidance (RFC 1122 §4.2.3.3), as advertise_window() applies it: a window that
  // would not move is no update, and the peer would count the ACK as a duplicate.
  if (free - advertised <
      std::min<uint32_t>(static_cast<uint32_t>(c.receive_buffer.limit() / 2), c.mss)) {
    return;
  }
  ctx_.trace.begin("window update: {} bytes free", free);
  send_ack(c, now);
}

}  // namespace tapstack
