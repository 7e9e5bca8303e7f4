// The transmission control block (RFC 9293 §3.3.1): everything the stack knows of one
// connection or listener. Internal to the TCP code.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "md5opt/key_table.h"
#include "stack/address.h"
#include "stack/byte_ring.h"
#include "stack/bytes.h"
#include "stack/seq.h"
#include "stack/tcp/congestion.h"
#include "stack/tcp/header.h"
#include "stack/tcp/types.h"
#include "stack/time.h"

namespace tapstack {

// What a segment is demultiplexed by: both addresses (and so the family) and both ports.
// Linux: the four-tuple __inet_lookup_established() matches (with the family of the table)
struct FlowKey {
  IpAddress remote_address;
  IpAddress local_address;
  uint16_t remote_port = 0;
  uint16_t local_port = 0;
  bool operator==(const FlowKey& other) const {
    return remote_port == other.remote_port && local_port == other.local_port &&
           remote_address == other.remote_address && local_address == other.local_address;
  }
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const {
    const ByteView remote = k.remote_address.bytes();
    const ByteView local = k.local_address.bytes();
    uint64_t x = uint64_t{k.remote_port} << 16 | k.local_port;
    if (remote.size() == 4 && local.size() == 4) {  // IPv4: both addresses in one word
      x ^= (uint64_t{load_be32(remote.data())} << 32 | load_be32(local.data())) *
           0x9e3779b97f4a7c15ULL;
    } else {
      x ^= uint64_t{1} << 32;  // the family
      for (const ByteView bytes : {remote, local}) {
        for (size_t i = 0; i < bytes.size(); i += 4) {
          x = (x ^ load_be32(bytes.data() + i)) * 0x9e3779b97f4a7c15ULL;
          x ^= x >> 29;
        }
      }
    }
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return static_cast<size_t>(x);
  }
};

// Data that arrived beyond rcv_nxt, waiting for the gap before it to fill.
struct OutOfOrderSegment {
  Seq seq;
  std::vector<uint8_t> data;
  bool fin = false;
  Seq end() const { return seq + static_cast<uint32_t>(data.size()); }
};

// What follows is kept out of line, behind a pointer that stays null while a connection does
// not need it: an idle connection pays 8 bytes for each instead of its size (Linux does the
// same with the out-of-order rbtree, the SACK state and the MD5 info hanging off tcp_sock).

// The receive queue beyond rcv_nxt (RFC 9293 §3.10.7.4 lets a receiver keep such data).
// Made for the first segment out of order, freed when the gap is filled.
struct OutOfOrderQueue {
  std::vector<OutOfOrderSegment> segments;  // sorted, disjoint
  size_t bytes = 0;
  Seq latest;  // a byte of the segment queued last: its SACK block goes first (RFC 2018 §4)
};

// What the peer SACKed above snd_una (RFC 2018 §4, RFC 6675): made for the first SACK block
// that tells something, freed when the cumulative ACK has passed every block.
struct SackScoreboard {
  std::vector<SackBlock> blocks;  // sorted, disjoint
};

// A listener's own state (Linux: struct request_sock_queue in inet_connection_sock). Made by
// listen(); a connection never has it.
struct ListenerState {
  int backlog = 0;
  std::deque<SocketId> accept_queue;
  size_t half_open = 0;                         // connections of this listener in in_syn_queue
  Instant synq_overflow_at = Instant::never();  // the last SYN answered with a cookie
};

// The transmission control block. Its fields are grouped as tests/bench/tcp_memory_bench
// reports them (each group begins with the field named there); within a group, narrow fields
// sit together so that padding stays small.
struct Connection {
  // --- Identity and the socket's life ---
  SocketId id = 0;
  IpAddress remote_address;
  IpAddress local_address;  // the address the peer reached us at
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint16_t advmss = 536;  // the MSS we announce: the route's MTU less the headers
  TcpState state = TcpState::Closed;
  bool passive = false;       // made by a listener
  bool in_syn_queue = false;  // counted in the listener's half_open
  bool in_accept_queue = false;
  bool user_closed = false;  // the application let go of its handle
  bool read_shutdown = false;
  bool write_shutdown = false;  // FIN queued after the buffered data
  bool was_established = false;
  bool destroyed = false;            // destroy() unlinked it; freed when the event ends
  int error = 0;                     // pending errno for the application
  std::optional<SocketId> listener;  // while not yet accepted
  SocketOptions options;

  // --- Send sequence variables (RFC 9293 §3.3.1) ---
  Seq iss;
  Seq snd_una;
  Seq snd_nxt;  // the next sequence number to send; after a timeout it goes back to snd_una
  Seq snd_max;  // the highest sequence number sent: RFC 9293's SND.NXT, which never goes back
  Seq snd_wl1;
  Seq snd_wl2;
  uint32_t snd_wnd = 0;
  uint32_t max_snd_wnd = 0;  // for sender silly-window avoidance
  Seq send_buffer_seq;       // sequence number of the first byte in send_buffer
  uint16_t mss = 536;        // what we may send per segment (RFC 9293 §3.7.1: 536 by default)
  uint8_t snd_wscale = 0;    // RFC 7323: the peer's shift, applied to windows it sends
  uint8_t rcv_wscale = 0;    // ours: applied to windows we send
  ByteRing send_buffer;

  // --- Receive sequence variables, and what the SYNs negotiated (RFC 7323, RFC 2018) ---
  Seq irs;
  Seq rcv_nxt;
  Seq rcv_adv;  // right edge of the window we last advertised
  Seq fin_seq;  // where the peer's FIN is, once seen in order
  Seq last_ack_sent;
  // Acknowledgment policy (RFC 1122 §4.2.3.2, RFC 5681 §4.2)
  uint32_t rcv_mss = 536;  // the largest segment the peer sent: "full-sized" (Linux: rcv_mss)
  uint32_t ts_offset = 0;  // added to our millisecond clock (RFC 7323 §5.4)
  uint32_t ts_recent = 0;  // the peer's TSval to echo (RFC 7323 §4.3)
  // RFC 2883: a duplicate segment to report as the first SACK block of the next ACK.
  std::optional<SackBlock> dsack;
  bool fin_received = false;
  bool ack_now = false;
  bool peer_offered_window_scale = false;
  bool peer_offered_sack = false;
  bool peer_offered_timestamps = false;
  bool window_scaling = false;  // both sides sent the option: windows are scaled
  bool timestamps = false;      // every segment carries TSval/TSecr
  bool sack = false;            // both sides permit SACK
  ByteRing receive_buffer;

  // --- Retransmission (RFC 6298) ---
  Duration srtt;
  Duration rttvar;
  Duration rto;
  Instant timed_at;
  Instant first_retransmit_at;   // for the user timeout
  std::optional<Seq> timed_seq;  // a segment being timed (Karn: never a retransmission)
  int retries = 0;               // consecutive timeouts
  uint32_t total_retransmits = 0;
  bool have_rtt = false;

  // --- Congestion control (RFC 5681, RFC 6582, RFC 9438) ---
  CongestionAlgorithm congestion = CongestionAlgorithm::Cubic;
  bool in_recovery = false;
  uint32_t cwnd = 0;
  uint32_t ssthresh = 0xffffffff;
  uint32_t dup_acks = 0;
  uint32_t bytes_acked = 0;  // congestion avoidance by bytes (RFC 3465)
  Seq recover;
  Seq high_rxt;  // RFC 6675 HighRxt: the end of what recovery resent

  // --- Timers: one instant each, Instant::never() when not armed ---
  Instant retransmit_at = Instant::never();  // RTO, or the zero-window probe (persist)
  Instant delayed_ack_at = Instant::never();
  Instant keepalive_at = Instant::never();
  Instant state_timer_at = Instant::never();  // TIME-WAIT or FIN-WAIT-2 expiry
  Instant trim_at = Instant::never();         // empty socket buffers give their memory back
  Instant scheduled = Instant::never();       // the key under which the timer set holds it
  Instant last_received;
  Instant last_data_sent = Instant::never();  // Linux: tp->lsndtime
  int probes = 0;                             // zero-window probes unanswered
  int persist_backoff = 0;                    // zero-window probes while the window stays shut
  int keepalive_probes = 0;                   // keepalive probes unanswered
  bool persist = false;                       // retransmit_at is the persist timer
  bool sws_override = false;                  // the persist timer fired into an open window

  // --- Out of line, null until needed ---
  std::unique_ptr<ListenerState> listen;          // listeners only
  std::unique_ptr<OutOfOrderQueue> out_of_order;  // data beyond a gap
  std::unique_ptr<SackScoreboard> scoreboard;     // the peer SACKed data above snd_una
  std::unique_ptr<CubicState> cubic;              // from CUBIC's first epoch or first loss on
  std::unique_ptr<md5opt::KeyTable> md5_keys;     // RFC 2385 keys by peer (TCP_MD5SIG)

  FlowKey flow() const { return {remote_address, local_address, remote_port, local_port}; }
  bool synchronized() const {
    return state != TcpState::Closed && state != TcpState::Listen && state != TcpState::SynSent;
  }
  Seq buffered_end() const { return send_buffer_seq + static_cast<uint32_t>(send_buffer.size()); }
  // RFC 5681's FlightSize: sent and not acknowledged (after a timeout, snd_nxt is back at
  // snd_una while all of this is still outstanding).
  uint32_t in_flight() const { return static_cast<uint32_t>(snd_max - snd_una); }
  std::span<const SackBlock> sacked() const {
    return scoreboard ? std::span<const SackBlock>(scoreboard->blocks)
                      : std::span<const SackBlock>();
  }
  std::span<const OutOfOrderSegment> out_of_order_segments() const {
    return out_of_order ? std::span<const OutOfOrderSegment>(out_of_order->segments)
                        : std::span<const OutOfOrderSegment>();
  }
  size_t out_of_order_bytes() const { return out_of_order ? out_of_order->bytes : 0; }
  Instant next_deadline() const {
    Instant t = retransmit_at;
    if (delayed_ack_at < t) t = delayed_ack_at;
    if (keepalive_at < t) t = keepalive_at;
    if (state_timer_at < t) t = state_timer_at;
    if (trim_at < t) t = trim_at;
    return t;
  }
};

}  // namespace tapstack
