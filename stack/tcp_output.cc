// TCP output: what may be sent now, building segments, resets.
// RFC 9293 §3.8.6 (window management: Nagle, silly-window avoidance), RFC 6298 (the timer).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "md5opt/option.h"
#include "stack/checksum.h"
#include "stack/stack.h"
#include "stack/tcp_congestion.h"
#include "stack/tcp_layer.h"

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
  } else if ((c.snd_nxt < c.buffered_end() || c.write_shutdown) &&
             c.snd_max <= c.buffered_end()) {
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
bool resending_any(const Connection& c) { return c.snd_nxt < c.snd_max; }
}  // namespace

// The RFC 5681 send loop: new data, or after a timeout data again from snd_nxt (skipping what
// the peer SACKed), as far as min(cwnd, the peer's window) reaches.
void Tcp::send_in_window(Connection& c, Instant now) {
  const uint32_t mss = send_mss(c);
  const uint32_t largest = offload_segment_limit(c, mss);
  if (config_.slow_start_after_idle && c.in_flight() == 0 && c.snd_nxt < c.buffered_end() &&
      !c.last_data_sent.is_never() && now - c.last_data_sent > c.rto) {
    // Linux: tcp_slow_start_after_idle_check()
    stack_.trace_.step("idle {} ms, longer than the RTO: cwnd restarts",
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
  if (!stack_.offloads_.tcp_segmentation || md5_key(c) || mss == 0) return mss;
  const uint32_t header = kTcpMinHeaderSize + (c.mss - mss);
  const uint32_t room = static_cast<uint32_t>(kIpv4MaxDatagramSize - kIpv4MinHeaderSize) - header;
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
  uint8_t options[kTcpMaxHeaderSize - kTcpMinHeaderSize];
  const size_t options_size = (flags & kSyn) ? syn_options(c, key, options, now)
                                             : established_options(c, key, options, now);
  const bool retransmission = seq < c.snd_max;
  if (retransmission) {
    stack_.counters_.add(Counter::TcpRetransSegs);
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
  const uint32_t per_segment = c.mss - static_cast<uint32_t>(options_size);
  emit(c.remote_address, c.local_port, c.remote_port, seq, ack, flags,
       (flags & kSyn) ? syn_window(c) : advertise_window(c), {options, options_size},
       {payload, length}, key, now, length > per_segment ? static_cast<uint16_t>(per_segment) : 0,
       c.state == TcpState::TimeWait ? TcpSender::TimeWaitAck : TcpSender::Socket);
}

namespace {

// Writes the timestamps option (kind 8) at p: TSval, TSecr (RFC 7323 §3.2).
void put_timestamps(uint8_t* p, uint32_t value, uint32_t echo) {
  p[0] = tcp_option::kTimestamps;
  p[1] = 10;
  store_be32(p + 2, value);
  store_be32(p + 6, echo);
}

}  // namespace

// The options of a SYN or SYN-ACK, in Linux's order. A SYN offers what this stack does; a
// SYN-ACK only what the peer offered. With an MD5 key the 20 bytes go first and timestamps are
// left out (a SYN-ACK keeps them only when SACK is not offered), so Linux's SYNs with MD5
// carry NOP NOP MD5, MSS, NOP NOP SACK-permitted, NOP window-scale.
// Linux: tcp_syn_options(), tcp_synack_options()
size_t Tcp::syn_options(Connection& c, const md5opt::Md5Key* key, uint8_t* out, Instant now) {
  const bool active = c.state == TcpState::SynSent;
  const bool offer_scale = config_.window_scaling && (active || c.peer_offered_window_scale);
  const bool offer_sack = config_.sack && (active || c.peer_offered_sack);
  bool offer_timestamps = config_.timestamps && (active || c.peer_offered_timestamps);
  if (key) offer_timestamps = !active && offer_timestamps && !offer_sack;
  size_t n = key ? md5opt::kMd5OptionSpace : 0;  // reserved first, written by emit()
  out[n] = tcp_option::kMss;
  out[n + 1] = 4;
  store_be16(out + n + 2, static_cast<uint16_t>(stack_.config_.mtu - 40));  // RFC 6691
  n += 4;
  if (offer_sack && offer_timestamps) {
    out[n] = tcp_option::kSackPermitted;
    out[n + 1] = 2;
    put_timestamps(out + n + 2, ts_now(c, now), c.ts_recent);
    n += 12;
  } else if (offer_sack) {
    const uint8_t sack_permitted[] = {tcp_option::kNop, tcp_option::kNop, tcp_option::kSackPermitted, 2};
    std::copy(sack_permitted, sack_permitted + 4, out + n);
    n += 4;
  } else if (offer_timestamps) {
    out[n] = out[n + 1] = tcp_option::kNop;
    put_timestamps(out + n + 2, ts_now(c, now), c.ts_recent);
    n += 12;
  }
  if (offer_scale) {
    const uint8_t scale[] = {tcp_option::kNop, tcp_option::kWindowScale, 3, c.rcv_wscale};
    std::copy(scale, scale + 4, out + n);
    n += 4;
  }
  if (!active) {
    // What the SYN-ACK agrees to is what the connection uses.
    c.window_scaling = offer_scale;
    c.timestamps = offer_timestamps;
    c.sack = offer_sack;
    if (!offer_scale) c.snd_wscale = c.rcv_wscale = 0;
  }
  return n;
}

// The options of every other segment: MD5, timestamps, then as many SACK blocks as the space
// left holds. Linux: tcp_established_options()
size_t Tcp::established_options(Connection& c, const md5opt::Md5Key* key, uint8_t* out,
                                Instant now) {
  size_t n = key ? md5opt::kMd5OptionSpace : 0;
  if (c.timestamps) {
    out[n] = out[n + 1] = tcp_option::kNop;
    put_timestamps(out + n + 2, ts_now(c, now), c.ts_recent);
    n += 12;
  }
  const size_t blocks = sack_blocks(c, n);
  if (blocks > 0) {
    out[n] = out[n + 1] = tcp_option::kNop;
    out[n + 2] = tcp_option::kSack;
    out[n + 3] = static_cast<uint8_t>(2 + 8 * blocks);
    n += 4;
    // RFC 2018 §4: first the block holding the segment that arrived last, then the others.
    const auto queue = c.out_of_order_segments();
    const auto latest = std::find_if(queue.begin(), queue.end(), [&](const auto& s) {
      return seq_in_window(c.out_of_order->latest, s.seq, s.end());
    });
    auto put = [&](const OutOfOrderSegment& s) {
      store_be32(out + n, s.seq.value());
      store_be32(out + n + 4, s.end().value());
      n += 8;
    };
    size_t written = 0;
    if (c.dsack) {  // RFC 2883 §4: the duplicate first, reported once
      store_be32(out + n, c.dsack->left.value());
      store_be32(out + n + 4, c.dsack->right.value());
      n += 8;
      ++written;
      c.dsack.reset();
    }
    if (latest != queue.end() && written < blocks) {
      put(*latest);
      ++written;
    }
    for (auto it = queue.begin(); it != queue.end() && written < blocks; ++it) {
      if (it == latest) continue;
      put(*it);
      ++written;
    }
  }
  return n;
}

// How many SACK blocks fit after `used` bytes of other options (RFC 2018 §3: 4 bytes of
// NOP NOP kind length, 8 per block).
size_t Tcp::sack_blocks(const Connection& c, size_t used) const {
  const size_t wanted = c.out_of_order_segments().size() + (c.dsack ? 1 : 0);
  if (!c.sack || wanted == 0) return 0;
  const size_t space = kTcpMaxHeaderSize - kTcpMinHeaderSize - used;
  return space < 12 ? 0 : std::min((space - 4) / 8, wanted);
}

// Our RFC 7323 clock: milliseconds, offset per connection so that TSval reveals no uptime.
uint32_t Tcp::ts_now(const Connection& c, Instant now) const {
  return static_cast<uint32_t>(now.ns() / 1'000'000) + c.ts_offset;
}

// Linux: tcp_v4_md5_lookup()
const md5opt::Md5Key* Tcp::md5_key(const Connection& c) const {
  if (!c.md5_keys) return nullptr;  // the common case costs one branch
  return c.md5_keys->lookup(md5_address(c.remote_address));
}

// Linux: tcp_current_mss() — the options a segment carries now come out of the MSS: 20 bytes
// of MD5 to a peer with a key, 12 of timestamps, and the SACK blocks there are to send.
uint32_t Tcp::send_mss(const Connection& c) const {
  const size_t fixed = (md5_key(c) ? md5opt::kMd5OptionSpace : 0u) + (c.timestamps ? 12u : 0u);
  const size_t blocks = sack_blocks(c, fixed);
  return c.mss - static_cast<uint32_t>(fixed + (blocks > 0 ? 4 + 8 * blocks : 0));
}

// A pure ACK carries the highest sequence number sent (RFC 9293's SND.NXT): after a timeout
// snd_nxt goes back to resend, and an ACK from there would fall left of the peer's window.
void Tcp::send_ack(Connection& c, Instant now) { transmit(c, c.snd_max, kAck, 0, now); }

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
  uint8_t options[kTcpMaxHeaderSize - kTcpMinHeaderSize];
  const size_t size = established_options(c, key, options, now);
  emit(c.remote_address, c.local_port, c.remote_port, c.snd_una - 1, c.rcv_nxt, kAck,
       advertise_window(c), {options, size}, {}, key, now);
}

// RFC 9293 §3.10.7: an abort sends <SEQ=SND.NXT><CTL=RST>. Linux: tcp_send_active_reset()
void Tcp::send_reset(Connection& c, Instant now) {
  stack_.counters_.add(Counter::TcpOutRsts);
  emit(c.remote_address, c.local_port, c.remote_port, c.snd_max, c.rcv_nxt, kRst | kAck, 0, {},
       {}, md5_key(c), now);
}

// The reset answering a segment that belongs to no connection (RFC 9293 §3.10.7.1), signed
// with `key` when one is given (Linux signs with the key of the socket or listener that
// matched). Linux: tcp_v4_send_reset()
void Tcp::send_reset_for(const TcpSegment& seg, Ipv4Address source, const md5opt::Md5Key* key,
                         Instant now) {
  if (seg.has(kRst)) return;
  stack_.counters_.add(Counter::TcpOutRsts);
  if (seg.has(kAck)) {
    emit(source, seg.destination_port, seg.source_port, seg.ack, Seq(0), kRst, 0, {}, {}, key, now,
         0, TcpSender::Reset);
  } else {
    emit(source, seg.destination_port, seg.source_port, Seq(0), seg.seq + seg.length(), kRst | kAck,
         0, {}, {}, key, now, 0, TcpSender::Reset);
  }
}

namespace {

// The Linux functions that would have chosen a segment's options, written them, and signed it.
struct OptionSteps {
  const char* chooser;
  const char* writer;
  const char* hasher;
};

OptionSteps option_steps(uint8_t flags, TcpSender sender) {
  switch (sender) {
    case TcpSender::Reset:
      return {"tcp_v4_send_reset", "tcp_v4_send_reset", "tcp_v4_md5_hash_hdr"};
    case TcpSender::TimeWaitAck:
      return {"tcp_v4_timewait_ack", "tcp_v4_send_ack", "tcp_v4_md5_hash_hdr"};
    case TcpSender::Socket:
      break;
  }
  const char* chooser = !(flags & kSyn)  ? "tcp_established_options"
                        : (flags & kAck) ? "tcp_synack_options"
                                         : "tcp_syn_options";
  return {chooser, "tcp_options_write", "tcp_v4_md5_hash_skb"};
}

// " | options: md5 reserved 20 bytes first, then mss 1460, sack-ok, wscale 7
// (tcp_synack_options) | option written, ... | checksum": the trace of what emit() did with
// the options, named as the Linux functions that would have done it.
std::string options_trace(uint8_t flags, ByteView options, bool md5, TcpSender sender) {
  if (options.empty()) return " | checksum";
  const OptionSteps steps = option_steps(flags, sender);
  std::vector<std::string> names;
  size_t i = md5 ? md5opt::kMd5OptionSpace : 0;
  while (i < options.size()) {
    const uint8_t kind = options[i];
    if (kind == tcp_option::kNop) {
      ++i;
      continue;
    }
    if (kind == tcp_option::kEnd || i + 1 >= options.size() || options[i + 1] < 2) break;
    const uint8_t length = options[i + 1];
    switch (kind) {
      case tcp_option::kMss:
        names.push_back(fmt::format("mss {}", load_be16(options.data() + i + 2)));
        break;
      case tcp_option::kWindowScale:
        names.push_back(fmt::format("wscale {}", options[i + 2]));
        break;
      case tcp_option::kSackPermitted:
        names.emplace_back("sack-ok");
        break;
      case tcp_option::kTimestamps:
        names.emplace_back("timestamps");
        break;
      case tcp_option::kSack:
        names.push_back(fmt::format("sack {} block{}", (length - 2) / 8, length > 10 ? "s" : ""));
        break;
      default:
        names.push_back(fmt::format("kind {}", kind));
    }
    i += length;
  }
  std::string text = " | options: ";
  if (md5) {
    text += fmt::format("md5 reserved {} bytes first{}", md5opt::kMd5OptionSpace,
                        names.empty() ? "" : ", then ");
  }
  text += fmt::format("{} ({})", fmt::join(names, ", "), steps.chooser);
  if (md5) {
    text += fmt::format(" | md5 option written, digest slot at +{} ({}) | digest filled late ({})",
                        kTcpMinHeaderSize + 4, steps.writer, steps.hasher);
  }
  return text + " | checksum";
}

}  // namespace

void Tcp::emit(Ipv4Address destination, uint16_t source_port, uint16_t destination_port, Seq seq,
               Seq ack, uint8_t flags, uint16_t window, ByteView options, ByteView payload,
               const md5opt::Md5Key* key, Instant now, uint16_t segment_size, TcpSender sender) {
  uint8_t md5_options[md5opt::kMd5OptionSpace];
  if (key && options.empty()) options = md5_options;  // resets and probes: the option alone
  const size_t header_length = kTcpMinHeaderSize + options.size();
  uint8_t* header = segment_buffer_.data() + kTcpMaxHeaderSize - header_length;
  store_be16(header, source_port);
  store_be16(header + 2, destination_port);
  store_be32(header + 4, seq.value());
  store_be32(header + 8, ack.value());
  header[12] = static_cast<uint8_t>(header_length / 4 << 4);
  header[13] = flags;
  store_be16(header + 14, window);
  store_be16(header + 16, 0);
  store_be16(header + 18, 0);
  std::copy(options.begin(), options.end(), header + kTcpMinHeaderSize);
  if (payload.data() != header + header_length) {
    std::copy(payload.begin(), payload.end(), header + header_length);
  }
  const MutableByteView segment{header, header_length + payload.size()};
  if (key) {
    // The option written now, its digest filled in last, over the finished segment; then
    // the checksum, which covers the digest. Linux: tcp_options_write(), then
    // tcp_v4_md5_hash_skb() from tcp_transmit_skb()
    const auto digest_at = md5opt::write_md5_option(segment, kTcpMinHeaderSize);
    if (!digest_at ||
        !signer_.sign_in_place(md5_address(stack_.config_.ipv4.address),
                                md5_address(destination), segment, *digest_at, key->bytes())) {
      return;  // an unsigned segment would only be dropped by the peer
    }
  }
  FrameOffload offload;
  if (segment_size > 0) {
    // For the link to cut into segments of segment_size and checksum each (TSO/GSO).
    // Linux: tcp_v4_send_check() leaves the pseudo-header sum for CHECKSUM_PARTIAL
    offload = {.checksum_offloaded = true, .segment_size = segment_size};
    store_be16(header + 16,
               tcp_pseudo_header_sum(segment.size(), stack_.config_.ipv4.address, destination));
    // Linux counts what goes on the wire: tcp_skb_pcount() segments.
    stack_.counters_.add(Counter::TcpOutSegs, (payload.size() + segment_size - 1) / segment_size);
  } else {
    store_be16(header + 16, tcp_checksum(segment, stack_.config_.ipv4.address, destination));
    stack_.counters_.add(Counter::TcpOutSegs);
  }
  if (stack_.trace_.enabled()) {
    stack_.trace_.line("tx {}:{} > {}:{} {} seq={} ack={} win={} len={}{}",
                       stack_.config_.ipv4.address, source_port, destination, destination_port,
                       tcp_flags_text(flags), seq.value(), ack.value(), window, payload.size(),
                       options_trace(flags, options, key != nullptr, sender));
  }
  stack_.ipv4_output(destination, kProtocolTcp, segment, now, offload);
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
  const uint32_t window =
      static_cast<uint32_t>(std::min<size_t>(c.receive_buffer.free(), 65535));
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
  stack_.trace_.begin("window update: {} bytes free", free);
  send_ack(c, now);
}

}  // namespace tapstack
