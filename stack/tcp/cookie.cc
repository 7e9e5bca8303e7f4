// SYN cookies (RFC 4987 §3.6), in the manner of Linux's net/ipv4/syncookies.c: when a
// listener's queue of half-open connections is full, the SYN-ACK's sequence number carries
// all the listener needs to build the connection later — a keyed hash of the 4-tuple and the
// peer's ISN, a coarse clock, and the peer's MSS as an index into a table — and nothing is
// kept. The ACK that completes the handshake is checked against the hash; a valid one makes
// the connection at once.
//
// Our ISN from a cookie, 32 bits:
//   bits 31..27  the clock: minutes of 64 s, modulo 32
//   bits 26..0   hash(secret, 4-tuple, peer ISN, clock) + MSS index, modulo 2^27
// A cookie is good for two ticks after the one it was made in (two to three minutes), like
// Linux's MAX_SYNCOOKIE_AGE. A blind guess succeeds with probability about 4 / 2^27 per ACK.
//
// What a cookie cannot carry is lost, as in Linux without timestamps: the SYN-ACK offers no
// window scaling, SACK or timestamps, and the connection goes without them. With RFC 2385
// the SYN-ACK is signed with the listener's key for the peer, and the ACK has passed the
// listener's MD5 check before it gets here (Linux: tcp_v4_send_synack() signs with the
// listener's key; tcp_v4_rcv() checks before cookie_v4_check()).
#include <algorithm>

#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

using namespace tcp_flags;

// Linux: msstab[] in syncookies.c — the common MSS values; a cookie says which is the
// largest not above the peer's.
constexpr uint16_t kCookieMss[] = {536, 1300, 1440, 1460};
// Linux: msstab in net/ipv6/syncookies.c — IPv6's minimum MTU and common ones, less 60 bytes.
constexpr uint16_t kCookieMss6[] = {1220, 1420, 1440, 8940};
static_assert(std::size(kCookieMss) == std::size(kCookieMss6));

const uint16_t* cookie_mss_table(const IpAddress& peer) {
  return peer.is_ipv4() ? kCookieMss : kCookieMss6;
}
constexpr Duration kCookieTick = Duration::seconds(64);
constexpr uint32_t kCookieMaxAge = 2;  // ticks
constexpr uint32_t kHashBits = 27;
constexpr uint32_t kHashMask = (uint32_t{1} << kHashBits) - 1;
// Cookies are checked only this long after the last one was sent, so that an idle listener
// does not take ACKs as guesses at all. Linux: TCP_SYNCOOKIE_VALID
constexpr Duration kCookieValid = Duration::seconds(120);

// The window of a cookie's SYN-ACK: unscaled, since the option that would scale it is not
// offered.
uint16_t cookie_window(const Connection& listener) {
  return static_cast<uint16_t>(std::min<uint32_t>(listener.options.receive_buffer, 65535));
}

uint32_t tick_at(Instant now) {
  return static_cast<uint32_t>(now.ns() / kCookieTick.ns());
}

}  // namespace

uint32_t Tcp::cookie_hash(const TcpSegment& seg, Seq peer_isn, uint32_t tick) const {
  const uint64_t first = flow_hash(
      cookie_secret_,
      FlowKey{seg.source_address, seg.destination_address, seg.source_port, seg.destination_port});
  return static_cast<uint32_t>(
      siphash_word(cookie_secret_, first ^ ((uint64_t{tick} << 32) | peer_isn.value())));
}

// Linux: cookie_v4_init_sequence() and tcp_v4_send_synack() with no request kept (and their
// IPv6 twins cookie_v6_init_sequence(), tcp_v6_send_synack())
void Tcp::send_cookie_synack(Connection& listener, const TcpSegment& seg, const md5opt::Md5Key* key,
                             Instant now) {
  const uint16_t peer_mss = seg.options.mss.value_or(536);
  const uint16_t* table = cookie_mss_table(seg.source_address);
  uint32_t index = 0;
  while (index + 1 < std::size(kCookieMss) && table[index + 1] <= peer_mss) ++index;
  const uint32_t tick = tick_at(now);
  const uint32_t hash = cookie_hash(seg, seg.seq, tick) + index;
  const Seq cookie((tick % 32) << kHashBits | (hash & kHashMask));

  const uint16_t window = cookie_window(listener);
  listener.listen->synq_overflow_at = now;
  ctx_.counters.add(Counter::TcpExtSyncookiesSent);
  ctx_.trace.step("syn queue full ({} half-open): SYN cookie (cookie_v4_init_sequence)",
                  listener.listen->half_open);
  // What a cookie cannot carry is not offered: MD5 (with a key) and MSS alone.
  emit({.source = seg.destination_address,
        .destination = seg.source_address,
        .source_port = listener.local_port,
        .destination_port = seg.source_port,
        .seq = cookie,
        .ack = seg.seq + 1,
        .flags = kSyn | kAck,
        .window = window,
        .options = {.md5 = key != nullptr, .mss = route_mss(seg.source_address)},
        .key = key},
       now);
}

// Linux: cookie_v4_check(), then tcp_get_cookie_sock() making the connection.
bool Tcp::cookie_ack(Connection& listener, const TcpSegment& seg, const md5opt::Md5Key* key,
                     Instant now) {
  if (!config_.syn_cookies || listener.listen->synq_overflow_at.is_never() ||
      now - listener.listen->synq_overflow_at > kCookieValid) {
    return false;
  }
  const uint32_t cookie = (seg.ack - 1).value();
  const Seq peer_isn = seg.seq - 1;
  const uint32_t tick_now = tick_at(now);
  std::optional<uint32_t> index;
  for (uint32_t age = 0; age <= kCookieMaxAge && age <= tick_now && !index; ++age) {
    const uint32_t tick = tick_now - age;
    if ((cookie >> kHashBits) != tick % 32) continue;
    const uint32_t hash = cookie_hash(seg, peer_isn, tick);
    const uint32_t candidate = ((cookie & kHashMask) - hash) & kHashMask;
    if (candidate < std::size(kCookieMss)) index = candidate;
  }
  if (!index) {
    ctx_.counters.add(Counter::TcpExtSyncookiesFailed);
    ctx_.trace.step("ack to listener: not a valid SYN cookie");
    return false;
  }
  ctx_.counters.add(Counter::TcpExtSyncookiesRecv);
  if (listener.listen->accept_queue.size() >= static_cast<size_t>(listener.listen->backlog) ||
      connections_.size() >= config_.max_connections) {
    ctx_.drop(DropReason::TcpListenOverflow);
    return true;  // dropped without a reset, as Linux does with a full accept queue
  }
  Connection& c = create_child(listener, seg, key, now);
  // The handshake as the cookie remembers it: our SYN-ACK, their SYN, MSS only.
  c.iss = Seq(cookie);
  c.snd_una = c.iss;
  c.snd_nxt = c.iss + 1;
  c.snd_max = c.iss + 1;
  c.send_buffer_seq = c.iss + 1;
  c.irs = peer_isn;
  c.rcv_nxt = seg.seq;
  c.rcv_adv = c.rcv_nxt + cookie_window(listener);
  c.mss = std::min<uint16_t>(cookie_mss_table(seg.source_address)[*index], c.advmss);
  c.snd_wnd = seg.window;
  c.max_snd_wnd = seg.window;
  c.snd_wl1 = peer_isn;
  c.snd_wl2 = c.iss;
  c.window_scaling = false;
  c.snd_wscale = 0;
  c.rcv_wscale = 0;
  c.sack = false;
  c.timestamps = false;
  enter_syn_queue(listener, c);
  ctx_.trace.step("valid SYN cookie (cookie_v4_check) → new connection {}, mss {}", c.id, c.mss);
  synchronized_input(c, seg, now);
  return true;
}

}  // namespace tapstack
