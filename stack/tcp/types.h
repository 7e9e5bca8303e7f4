// TCP: the socket-like API the stack offers, and its configuration.
//
// RFCs to have read: 9293 (TCP, the state machine of §3.10), 1122 §4.2 (host requirements:
// delayed ACK, keepalive, TIME-WAIT reuse), 6298 (retransmission timer), 5681 and 6582
// (congestion control: Reno and NewReno), 6528 (initial sequence numbers), 6691 (MSS),
// 5961 (blind in-window attacks: challenge ACKs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "stack/address.h"
#include "stack/time.h"

namespace tapstack {

// A socket, as an index the application holds (like a file descriptor).
using SocketId = uint32_t;

// RFC 9293 §3.3.2, all eleven.
enum class TcpState : uint8_t {
  Closed,
  Listen,
  SynSent,
  SynReceived,
  Established,
  FinWait1,
  FinWait2,
  CloseWait,
  Closing,
  LastAck,
  TimeWait,
};
std::string_view tcp_state_name(TcpState state);

// Readiness, as a bit set an event loop waits on.
namespace socket_event {
constexpr uint32_t kReadable = 1;     // data to read, or end of stream, or an error
constexpr uint32_t kWritable = 2;     // room in the send buffer
constexpr uint32_t kConnected = 4;    // the handshake completed
constexpr uint32_t kPeerClosed = 8;   // the peer sent FIN: reading will reach end of stream
constexpr uint32_t kError = 16;       // a pending error (refused, reset, timed out)
constexpr uint32_t kAcceptable = 32;  // a listener has a connection to accept
constexpr uint32_t kClosed = 64;      // the connection is gone (CLOSED or TIME-WAIT)
}  // namespace socket_event

enum class ShutdownHow { Read, Write, Both };

// Per-socket options (setsockopt's TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT, SO_SNDBUF, SO_RCVBUF, TCP_USER_TIMEOUT).
struct SocketOptions {
  Duration keepalive_idle = Duration::seconds(7200);  // RFC 1122 §4.2.3.6: at least 2 h
  Duration keepalive_interval = Duration::seconds(75);
  Duration user_timeout = Duration::zero();  // 0: the retry limit decides (tcp_retries2)
  int keepalive_probes = 9;
  // Big enough for 1 Gbit/s over 10 ms (1.25 MB in flight); memory is taken only as data
  // waits, so an idle connection costs next to nothing.
  uint32_t send_buffer = 4 << 20;
  uint32_t receive_buffer = 4 << 20;
  bool no_delay = false;
  bool keepalive = false;
  bool cubic = true;  // CUBIC (RFC 9438), Linux's default; false: NewReno (TCP_CONGESTION)
  // (Durations first, flags last: every connection holds a copy, 48 bytes rather than 56.)
};

// Stack-wide TCP settings, Linux's defaults unless said otherwise.
struct TcpConfig {
  Duration msl = Duration::seconds(60);  // TIME-WAIT lasts 2·MSL
  Duration min_rto = Duration::milliseconds(200);
  Duration max_rto = Duration::seconds(120);
  Duration initial_rto = Duration::seconds(1);  // RFC 6298 §2.1
  int syn_retries = 6;                          // Linux: tcp_syn_retries
  int synack_retries = 5;                       // Linux: tcp_synack_retries
  int retries2 = 15;                            // Linux: tcp_retries2
  // RFC 6928's initial window, in segments (Linux: TCP_INIT_CWND, `ip route ... initcwnd`);
  // 10 gives RFC 6928's min(10·MSS, max(2·MSS, 14600 bytes)).
  uint32_t initial_window_segments = 10;
  Duration delayed_ack = Duration::milliseconds(40);   // RFC 1122: at most 500 ms; Linux's minimum
  Duration fin_wait2_timeout = Duration::seconds(60);  // Linux: tcp_fin_timeout
  uint32_t max_out_of_order_bytes = 1 << 20;  // per connection, on top of the receive buffer
  size_t max_connections = 65536;
  bool window_scaling = true;  // RFC 7323 §2 (Linux: tcp_window_scaling)
  bool timestamps = true;      // RFC 7323 §3-5 (Linux: tcp_timestamps); never with MD5, as Linux
  bool sack = true;            // RFC 2018 (Linux: tcp_sack)
  // RFC 4987 §3.6: when a listener's queue of half-open connections is full, answer SYNs
  // with a SYN cookie instead of dropping them (Linux: tcp_syncookies = 1, the default).
  bool syn_cookies = true;
  // RFC 5681 §4.1 (RFC 2861): after more than an RTO without sending, the window restarts
  // from the initial window, halved per RTO idle as Linux does (tcp_slow_start_after_idle = 1).
  bool slow_start_after_idle = true;
  SocketOptions defaults;
};

// What one socket holds in memory, part by part: `ss -m`'s socket memory (Linux:
// INET_DIAG_SKMEMINFO) and the control block with what hangs off it. A part that is not in
// use is 0: its state is made when needed and freed afterwards.
struct SocketMemory {
  size_t control_block = 0;    // the transmission control block itself
  size_t send_buffer = 0;      // allocated, used or not
  size_t receive_buffer = 0;   // allocated, used or not
  size_t out_of_order = 0;     // the queue beyond a gap: its bookkeeping and the bytes it holds
  size_t sack_scoreboard = 0;  // what the peer SACKed above snd_una
  size_t congestion = 0;       // CUBIC's state, from its first epoch or loss on
  size_t md5_keys = 0;         // the RFC 2385 key table and its keys
  size_t listener = 0;         // a listener's queues
  size_t total() const {
    return control_block + send_buffer + receive_buffer + out_of_order + sack_scoreboard +
           congestion + md5_keys + listener;
  }
};

// What `ss -ti` shows of one connection.
struct TcpInfo {
  TcpState state = TcpState::Closed;
  IpAddress local_address;
  uint16_t local_port = 0;
  IpAddress remote_address;
  uint16_t remote_port = 0;
  uint32_t send_queue = 0;     // bytes sent and not acknowledged, or not yet sent
  uint32_t receive_queue = 0;  // bytes received and not read
  Duration srtt;
  Duration rto;
  uint32_t cwnd = 0;  // bytes
  uint32_t ssthresh = 0;
  uint16_t mss = 0;      // the MSS the peer announced (or 536)
  uint16_t snd_mss = 0;  // payload per full segment after our options (Linux: tcpi_snd_mss)
  uint32_t retransmits = 0;
  uint32_t unacked = 0;      // bytes sent and not yet acknowledged (snd_max - snd_una)
  uint32_t sacked = 0;       // of those, bytes the peer SACKed
  uint32_t pipe = 0;         // RFC 6675's estimate of what is in flight, in recovery
  bool in_recovery = false;  // fast recovery after a loss
  uint32_t peer_window = 0;
  bool md5 = false;
  bool window_scaling = false;
  uint8_t snd_wscale = 0;
  uint8_t rcv_wscale = 0;
  bool timestamps = false;
  bool sack = false;
};

}  // namespace tapstack
