// The TCP layer: demultiplexing, the state machine, output and timers, and the socket API
// applications call. A library of its own (//stack/tcp) that knows the stack around it only
// through the TcpContext it is given (stack/tcp/context.h); a Stack makes one and hands it
// out through Stack::tcp().
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "md5opt/key_table.h"
#include "md5opt/signer.h"
#include "md5opt/verdict.h"
#include "stack/counters.h"
#include "stack/error.h"
#include "stack/tcp/connection.h"
#include "stack/tcp/context.h"
#include "stack/tcp/header.h"
#include "stack/tcp/options.h"
#include "stack/tcp/types.h"

namespace tapstack {

// RFC 2385's three drops, each spelled once: the verdict md5opt gives, the drop reason (whose
// row in counters.h gives the nstat counter and the trace words), and what the tools tell the
// user it means.
struct Md5DropCase {
  md5opt::Md5Verdict verdict;
  DropReason reason;
  std::string_view meaning;
};
inline constexpr std::array<Md5DropCase, 3> kMd5DropCases = {{
    {md5opt::Md5Verdict::NotFound, DropReason::Md5NotFound,
     "unsigned, from a peer we have a key for"},
    {md5opt::Md5Verdict::Unexpected, DropReason::Md5Unexpected,
     "signed, from a peer we have no key for"},
    {md5opt::Md5Verdict::Failure, DropReason::Md5Failure, "signed with another key (wrong digest)"},
}};
// The row of a verdict that drops; a digest that could not be checked is a Failure.
constexpr const Md5DropCase& md5_drop_case(md5opt::Md5Verdict verdict) {
  for (const Md5DropCase& row : kMd5DropCases) {
    if (row.verdict == verdict) return row;
  }
  return kMd5DropCases.back();
}

// Which Linux function would have sent a segment, for the trace: a socket's segments go through
// tcp_transmit_skb(); a reset answering a segment (tcp_v4_send_reset()) and a TIME-WAIT ACK
// (tcp_v4_timewait_ack() → tcp_v4_send_ack()) are built apart and signed with
// tcp_v4_md5_hash_hdr(). Tcp::emit() builds them all.
enum class TcpSender : uint8_t { Socket, Reset, TimeWaitAck };

// One segment for Tcp::emit() to build, sign with key (when there is one) and send from
// source to destination.
struct OutgoingSegment {
  IpAddress source{};
  IpAddress destination{};
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  Seq seq{};
  Seq ack{};
  uint8_t flags = 0;
  uint16_t window = 0;
  TcpOptionPlan options{};
  ByteView payload{};
  const md5opt::Md5Key* key = nullptr;
  // > 0: payload is several segments of that size for the link to cut (TSO).
  uint16_t segment_size = 0;
  TcpSender sender = TcpSender::Socket;
};

class Tcp {
 public:
  Tcp(TcpContext context, const TcpConfig& config);
  ~Tcp();

  // --- The socket API. Every call is non-blocking; EAGAIN means "not now". ---
  // A listener on port for our address, with an accept queue of backlog connections.
  Result<SocketId> listen(uint16_t port, int backlog);
  // The next established connection of a listener; EAGAIN when none waits.
  Result<SocketId> accept(SocketId listener);
  // A socket not yet connected, to set options and MD5 keys on before connect(id, ...).
  Result<SocketId> open();
  // Active open (SYN-SENT) of a socket from open(). local_port 0 picks an ephemeral port.
  Status connect(SocketId id, const IpAddress& remote, uint16_t port, Instant now,
                 uint16_t local_port = 0);
  // open() and connect() in one.
  Result<SocketId> connect(const IpAddress& remote, uint16_t port, Instant now,
                           uint16_t local_port = 0);
  // RFC 2385: the key for peers in peer/prefix_length (32: that address alone), as
  // setsockopt(TCP_MD5SIG / TCP_MD5SIG_EXT) sets it: on a listener for the connections it will
  // accept, or on a connection (then segments are signed with it from the next one on). Adding
  // again replaces the key; an empty key deletes it (ENOENT when there is none); at most 80
  // bytes (EINVAL).
  Status set_md5_key(SocketId id, const IpAddress& peer, uint8_t prefix_length, ByteView key);
  // Queues data for sending; returns how much fitted (EAGAIN when none did).
  Result<size_t> send(SocketId id, ByteView data, Instant now);
  // Takes received data; 0 means end of stream (the peer closed and all was read). A pending
  // error comes once the data before it is read (an empty buffer: at once).
  Result<size_t> receive(SocketId id, MutableByteView buffer, Instant now);
  // Hands over the error pending on the socket, which a reset or a timeout left (ECONNRESET,
  // ETIMEDOUT, ...), and clears it; Ok when there is none. getsockopt(SO_ERROR).
  // Linux: sock_error()
  Status take_error(SocketId id);
  Status shutdown(SocketId id, ShutdownHow how, Instant now);
  // Lets go of the handle; the connection closes gracefully (FIN), or with a reset when
  // received data was never read (RFC 2525 §2.17, as Linux does).
  Status close(SocketId id, Instant now);
  // Drops the connection at once with a reset.
  Status abort(SocketId id, Instant now);
  uint32_t events(SocketId id) const;
  Result<TcpInfo> info(SocketId id) const;
  Status set_options(SocketId id, const SocketOptions& options);
  Result<SocketOptions> options(SocketId id) const;
  // Every socket the application holds or the stack still runs (TIME-WAIT, closing).
  std::vector<SocketId> sockets() const;
  size_t connection_count() const { return connections_.size(); }
  // Bytes of buffer memory the connections hold now.
  size_t buffer_memory() const;
  // What one socket holds, part by part (like `ss -m`).
  Result<SocketMemory> memory(SocketId id) const;
  // Bytes of socket buffer memory given back to the allocator since the last call: buffers
  // trimmed after kBufferTrimDelay idle, and those of connections that ended. The core cannot
  // make the allocator return memory to the system (that takes a system call); this is the
  // cue for the code around it that can (tap/memory_release.h).
  size_t take_freed_buffer_bytes() { return std::exchange(freed_buffer_bytes_, 0); }
  // What is wrong between the layer's own variables (sequence space, queues, timer set,
  // demultiplexing maps), one sentence each; empty when all holds. For the fuzz harness,
  // which calls it after every step; nothing in the stack does (invariants.cc).
  std::vector<std::string> check_invariants() const;

  // --- Driven by the IP layer below (the Stack). ---
  // Linux: tcp_v4_rcv()
  void input(const TcpArrival& arrival, Instant now);
  void on_timer(Instant now);
  Instant next_deadline() const;
  // A burst of frames read at once (Stack::begin_burst()): ACKs that data calls for wait for
  // its end, as GRO makes Linux acknowledge what one poll of a NIC brought at once.
  void begin_burst();
  void end_burst(Instant now);
  // The neighbour did not answer ARP or neighbour discovery: connections to it still in
  // SYN-SENT fail with EHOSTUNREACH, as Linux's tcp_v4_err()/tcp_v6_err() fail them on the
  // ICMP host unreachable.
  void host_unreachable(const IpAddress& remote);
  // The path to remote carries at most mtu bytes now (an ICMPv6 Packet Too Big, RFC 8201):
  // connections to it send smaller segments, and what was in flight in larger ones is sent
  // again. Linux: tcp_v6_mtu_reduced() → tcp_sync_mss(), tcp_simple_retransmit()
  void path_mtu_reduced(const IpAddress& remote, uint32_t mtu, Instant now);

 private:
  // One event of the layer: a segment, one connection's timers, a socket call, the end of a
  // burst, a neighbour found unreachable. Each entry point opens one; when the outermost ends,
  // the connections it touched get their place in the timer set again, those destroy()ed are
  // freed, and the trace is flushed. So a Connection& stays valid for the whole event, and
  // after any call its `destroyed` says whether the connection ended.
  class Event {
   public:
    explicit Event(Tcp& tcp) : tcp_(tcp) { ++tcp_.event_depth_; }
    ~Event() {
      if (--tcp_.event_depth_ == 0) tcp_.end_event();
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

   private:
    Tcp& tcp_;
  };
  // c is rescheduled when the event ends (its timers may have moved).
  Connection& touch(Connection& c) {
    if (touched_.empty() || touched_.back() != &c) touched_.push_back(&c);  // most events: one
    return c;
  }
  void end_event();

  Connection* find(SocketId id) const;
  Result<Connection*> find_or_error(SocketId id) const;
  Connection& create(TcpState state, Instant now);
  void destroy(Connection& c);
  // Every change of a connection's state passes here. Linux: tcp_set_state()
  void set_state(Connection& c, TcpState state, std::string_view cause = {});
  void reschedule(Connection& c);
  Seq initial_sequence(const FlowKey& flow, Instant now) const;
  // A keyed hash of a flow's addresses and ports: ISNs and SYN cookies.
  static uint64_t flow_hash(const uint64_t key[2], const FlowKey& flow);
  // The MSS to announce to remote: its route's MTU less the headers (RFC 6691). Linux: advmss
  uint16_t route_mss(const IpAddress& remote) const;
  Result<uint16_t> ephemeral_port(const IpAddress& remote, const IpAddress& local, uint16_t port);
  void init_connection(Connection& c, Instant now);

  // Input (input.cc)
  // Where a segment meets the RFC 2385 check: at the socket it belongs to (a connection, one
  // in TIME-WAIT, a listener), or, belonging to none, at the rule for signing a reset.
  enum class Md5Check : uint8_t { AtSocket, ForReset };
  bool md5_accepts(const md5opt::Md5Key* key, std::optional<size_t> digest_at,
                   const TcpSegment& seg, Md5Check check = Md5Check::AtSocket);
  void connection_input(Connection& c, const TcpSegment& seg, std::optional<size_t> digest_at,
                        Instant now);
  Connection* reopening_listener(const Connection& c, const TcpSegment& seg);
  void no_socket(const TcpSegment& seg, std::optional<size_t> digest_at, Instant now);
  void listen_input(Connection& listener, const TcpSegment& seg, Instant now);
  void take_syn(Connection& c, const TcpSegment& seg);
  Connection& create_child(const Connection& listener, const TcpSegment& syn,
                           const md5opt::Md5Key* key, Instant now);
  void enter_syn_queue(Connection& listener, Connection& c);
  // SYN cookies (cookie.cc)
  void send_cookie_synack(Connection& listener, const TcpSegment& seg, const md5opt::Md5Key* key,
                          Instant now);
  bool cookie_ack(Connection& listener, const TcpSegment& seg, const md5opt::Md5Key* key,
                  Instant now);
  uint32_t cookie_hash(const TcpSegment& seg, Seq peer_isn, uint32_t tick) const;
  void syn_sent_input(Connection& c, const TcpSegment& seg, Instant now);
  void time_wait_input(Connection& c, const TcpSegment& seg, Instant now);
  void synchronized_input(Connection& c, const TcpSegment& seg, Instant now);
  bool sequence_acceptable(const Connection& c, const TcpSegment& seg) const;
  void note_duplicate(Connection& c, const TcpSegment& seg);
  void reset_received(Connection& c);
  bool process_ack(Connection& c, const TcpSegment& seg, Instant now);
  void process_data(Connection& c, TcpSegment seg, Instant now);
  void ack_check(Connection& c, Instant now);
  void queue_out_of_order(Connection& c, Seq seq, ByteView data, bool fin);
  bool drain_out_of_order(Connection& c);
  void fin_received(Connection& c, Instant now);
  void established(Connection& c, Instant now);
  uint32_t initial_window(const Connection& c) const;
  void update_rtt(Connection& c, Duration sample);
  void on_new_ack(Connection& c, uint32_t acked, Instant now);
  void on_duplicate_ack(Connection& c, Instant now);
  void challenge_ack(Connection& c, Instant now);

  // SACK scoreboard and RFC 6675 recovery (sack.cc)
  bool update_scoreboard(Connection& c, const TcpSegment& seg);
  void prune_scoreboard(Connection& c);
  bool is_lost(const Connection& c, Seq s) const;
  uint32_t pipe(const Connection& c) const;
  void sack_recovery_send(Connection& c, Instant now);
  uint32_t skip_sacked(Connection& c) const;
  void connection_failed(Connection& c, int error);
  static std::optional<Error> take_pending_error(Connection& c);

  // Output (output.cc)
  void write_xmit(Connection& c, Instant now);
  void send_in_window(Connection& c, Instant now);
  void transmit(Connection& c, Seq seq, uint8_t flags, uint32_t length, Instant now);
  void send_ack(Connection& c, Instant now);
  void send_syn(Connection& c, Instant now);
  void send_probe(Connection& c, Instant now);
  void send_reset(Connection& c, Instant now);
  void send_reset_for(const TcpSegment& seg, const md5opt::Md5Key* key, Instant now);
  void emit(const OutgoingSegment& segment, Instant now);
  // The key to sign segments to the connection's peer with, or nullptr.
  const md5opt::Md5Key* md5_key(const Connection& c) const;
  // What one segment may carry: the peer's MSS less the options every segment carries.
  uint32_t send_mss(const Connection& c) const;
  uint32_t offload_segment_limit(const Connection& c, uint32_t mss) const;
  uint16_t advertise_window(Connection& c);
  uint16_t syn_window(Connection& c);
  TcpOptionPlan segment_options(Connection& c, uint8_t flags, const md5opt::Md5Key* key,
                                Instant now);
  TcpOptionPlan syn_options(const Connection& c, const md5opt::Md5Key* key, Instant now) const;
  // SizeOnly: the plan's options and block count, for its size (send_mss), without the
  // values a segment writes (the SACK blocks' edges).
  enum class OptionValues : uint8_t { All, SizeOnly };
  TcpOptionPlan established_options(const Connection& c, const md5opt::Md5Key* key, Instant now,
                                    OptionValues values = OptionValues::All) const;
  uint32_t ts_now(const Connection& c, Instant now) const;
  void arm_retransmit(Connection& c, Instant now);
  void after_read(Connection& c, Instant now);

  // Timers (timer.cc)
  static constexpr Duration kBufferTrimDelay = Duration::seconds(1);
  void buffers_drained(Connection& c, Instant now);
  void retransmit_timeout(Connection& c, Instant now);
  void persist_timeout(Connection& c, Instant now);
  void keepalive_timeout(Connection& c, Instant now);
  void state_timeout(Connection& c, Instant now);
  void enter_time_wait(Connection& c, Instant now, std::string_view cause);

  TcpContext ctx_;
  TcpConfig config_;
  SocketId next_id_ = 1;
  std::unordered_map<SocketId, std::unique_ptr<Connection>> connections_;
  std::unordered_map<FlowKey, SocketId, FlowKeyHash> flows_;
  std::unordered_map<uint16_t, SocketId> listeners_;
  std::set<std::pair<Instant, SocketId>> timers_;
  uint64_t isn_secret_[2];
  uint64_t cookie_secret_[2];
  uint16_t next_ephemeral_;
  // RFC 5961 §7: challenge ACKs limited per second, for the whole stack (Linux's limit
  // before 6.0, which made it per network namespace and off by default).
  Instant challenge_window_start_;
  uint32_t challenge_acks_in_window_ = 0;
  std::vector<uint8_t> segment_buffer_;
  size_t freed_buffer_bytes_ = 0;  // see take_freed_buffer_bytes()
  // One MD5 context for the stack (Linux: the per-CPU tcp_md5sig_pool).
  md5opt::Md5Signer signer_;
  // Inside a burst (begin_burst()): the connections whose ACK waits for its end. At most
  // kBurstAckLimit bytes wait so, GRO's largest merged segment.
  static constexpr uint32_t kBurstAckLimit = 64 << 10;
  bool in_burst_ = false;
  std::vector<SocketId> acks_after_burst_;
  // The open Event: how deep, the connections to reschedule at its end, and the connections
  // destroyed in it, unlinked from every table but not yet freed.
  int event_depth_ = 0;
  std::vector<Connection*> touched_;
  std::vector<std::unique_ptr<Connection>> destroyed_;
};

// SipHash-2-4 of one 64-bit word under a 128-bit key: ISNs (RFC 6528) and SYN cookies.
uint64_t siphash_word(const uint64_t key[2], uint64_t message);

}  // namespace tapstack
