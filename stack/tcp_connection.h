// The transmission control block (RFC 9293 §3.3.1): everything the stack knows of one
// connection or listener. Internal to the TCP code.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "md5opt/key_table.h"
#include "stack/address.h"
#include "stack/byte_ring.h"
#include "stack/seq.h"
#include "stack/tcp.h"
#include "stack/tcp_congestion.h"
#include "stack/tcp_header.h"
#include "stack/time.h"

namespace tapstack {

struct FlowKey {
  uint32_t remote_address;
  uint16_t remote_port;
  uint16_t local_port;
  bool operator==(const FlowKey&) const = default;
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const {
    uint64_t x = (uint64_t{k.remote_address} << 32) ^ (uint64_t{k.remote_port} << 16) ^ k.local_port;
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

struct Connection {
  SocketId id = 0;
  TcpState state = TcpState::Closed;
  Ipv4Address remote_address;
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  SocketOptions options;
  md5opt::KeyTable md5_keys;         // RFC 2385 keys by peer (setsockopt TCP_MD5SIG)
  bool passive = false;              // made by a listener
  std::optional<SocketId> listener;  // while not yet accepted
  bool in_syn_queue = false;  // counted in the listener's half_open
  bool in_accept_queue = false;
  bool user_closed = false;          // the application let go of its handle
  bool read_shutdown = false;
  bool write_shutdown = false;       // FIN queued after the buffered data
  int error = 0;                     // pending errno for the application
  bool was_established = false;

  // Send sequence variables (RFC 9293 §3.3.1)
  Seq iss;
  Seq snd_una;
  Seq snd_nxt;  // the next sequence number to send; after a timeout it goes back to snd_una
  Seq snd_max;  // the highest sequence number sent: RFC 9293's SND.NXT, which never goes back
  Seq snd_wl1;
  Seq snd_wl2;
  uint32_t snd_wnd = 0;
  uint32_t max_snd_wnd = 0;  // for sender silly-window avoidance
  uint16_t mss = 536;        // what we may send per segment (RFC 9293 §3.7.1: 536 by default)
  ByteRing send_buffer;
  Seq send_buffer_seq;       // sequence number of the first byte in send_buffer

  // Receive sequence variables
  Seq irs;
  Seq rcv_nxt;
  Seq rcv_adv;       // right edge of the window we last advertised
  ByteRing receive_buffer;
  std::vector<OutOfOrderSegment> out_of_order;  // sorted, disjoint
  size_t out_of_order_bytes = 0;
  Seq latest_out_of_order;  // a byte of the segment queued last: its SACK block goes first
  // RFC 2883: a duplicate segment to report as the first SACK block of the next ACK.
  std::optional<SackBlock> dsack;
  Seq fin_seq;       // where the peer's FIN is, once seen in order
  bool fin_received = false;

  // RFC 7323 and RFC 2018, as negotiated on the SYNs
  bool peer_offered_window_scale = false;
  bool peer_offered_sack = false;
  bool peer_offered_timestamps = false;
  bool window_scaling = false;  // both sides sent the option: windows are scaled
  uint8_t snd_wscale = 0;       // the peer's shift: applied to windows it sends
  uint8_t rcv_wscale = 0;       // ours: applied to windows we send
  bool timestamps = false;      // every segment carries TSval/TSecr
  uint32_t ts_offset = 0;       // added to our millisecond clock (RFC 7323 §5.4)
  uint32_t ts_recent = 0;       // the peer's TSval to echo (RFC 7323 §4.3)
  Seq last_ack_sent;
  bool sack = false;            // both sides permit SACK

  // Acknowledgment policy (RFC 1122 §4.2.3.2, RFC 5681 §4.2)
  uint32_t rcv_mss = 536;  // the largest segment the peer sent: "full-sized" (Linux: rcv_mss)
  bool ack_now = false;

  // Retransmission (RFC 6298)
  Duration srtt;
  Duration rttvar;
  Duration rto;
  bool have_rtt = false;
  std::optional<Seq> timed_seq;  // a segment being timed (Karn: never a retransmission)
  Instant timed_at;
  int retries = 0;               // consecutive timeouts
  Instant first_retransmit_at;   // for the user timeout
  uint32_t total_retransmits = 0;

  // Congestion control (RFC 5681, RFC 6582, RFC 9438)
  CongestionAlgorithm congestion = CongestionAlgorithm::Cubic;
  CubicState cubic;
  uint32_t cwnd = 0;
  uint32_t ssthresh = 0xffffffff;
  uint32_t dup_acks = 0;
  bool in_recovery = false;
  Seq recover;
  std::vector<SackBlock> scoreboard;  // what the peer SACKed above snd_una: sorted, disjoint
  Seq high_rxt;                       // RFC 6675 HighRxt: the end of what recovery resent
  uint32_t bytes_acked = 0;  // congestion avoidance by bytes (RFC 3465)

  // Timers: one instant each, Instant::never() when not armed.
  Instant retransmit_at = Instant::never();  // RTO, or the zero-window probe (persist)
  bool persist = false;                      // retransmit_at is the persist timer
  bool sws_override = false;                 // the persist timer fired into an open window
  int probes = 0;                            // zero-window probes unanswered
  int persist_backoff = 0;                   // zero-window probes while the window stays shut
  int keepalive_probes = 0;                  // keepalive probes unanswered
  Instant delayed_ack_at = Instant::never();
  Instant keepalive_at = Instant::never();
  Instant state_timer_at = Instant::never();  // TIME-WAIT or FIN-WAIT-2 expiry
  Instant trim_at = Instant::never();         // empty socket buffers give their memory back
  Instant scheduled = Instant::never();       // the key under which the timer set holds it
  Instant last_received;
  Instant last_data_sent = Instant::never();  // Linux: tp->lsndtime

  // Listener
  int backlog = 0;
  std::deque<SocketId> accept_queue;
  size_t half_open = 0;  // connections of this listener in in_syn_queue
  Instant synq_overflow_at = Instant::never();  // the last SYN answered with a cookie

  FlowKey flow() const { return {remote_address.value, remote_port, local_port}; }
  bool synchronized() const {
    return state != TcpState::Closed && state != TcpState::Listen && state != TcpState::SynSent;
  }
  Seq buffered_end() const { return send_buffer_seq + static_cast<uint32_t>(send_buffer.size()); }
  // RFC 5681's FlightSize: sent and not acknowledged (after a timeout, snd_nxt is back at
  // snd_una while all of this is still outstanding).
  uint32_t in_flight() const { return static_cast<uint32_t>(snd_max - snd_una); }
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
