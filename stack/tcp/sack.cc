// SACK on the sending side: the scoreboard of what the peer holds (RFC 2018 §4) and loss
// recovery driven by it (RFC 6675): during recovery, the estimate of what is in flight (pipe)
// decides how much may be sent, the holes the scoreboard shows lost are retransmitted first,
// then new data.
#include <algorithm>
#include <cstdint>

#include "stack/tcp/tcp.h"

namespace tapstack {
namespace {

using namespace tcp_flags;

// RFC 6675 §2: DupThresh.
constexpr uint32_t kDupThresh = 3;

}  // namespace

// Takes the SACK blocks of an ACK into the scoreboard; true when they told something new.
// Blocks outside (snd_una, snd_max] are ignored (RFC 2883's D-SACK, or lies).
// Linux: tcp_sacktag_write_queue()
bool Tcp::update_scoreboard(Connection& c, const TcpSegment& seg) {
  bool news = false;
  // RFC 2883 §4.1: a first block below the cumulative ACK, or inside the second block, reports
  // a duplicate the peer received: nothing to mark. (Linux also undoes a needless window
  // reduction with it, tcp_check_dsack(); we only count it.)
  if (seg.options.sack_count > 0) {
    const SackBlock& first = seg.options.sack[0];
    const bool below = first.right <= seg.ack;
    const bool inside = seg.options.sack_count > 1 && seg.options.sack[1].left <= first.left &&
                        first.right <= seg.options.sack[1].right;
    if (below || inside) ctx_.counters.add(Counter::TcpExtTCPDSACKRecv);
  }
  for (size_t i = 0; i < seg.options.sack_count; ++i) {
    SackBlock block = seg.options.sack[i];
    if (!(block.left < block.right) || block.right > c.snd_max || block.right <= c.snd_una)
      continue;
    block.left = seq_max(block.left, c.snd_una);
    if (!c.scoreboard) c.scoreboard = std::make_unique<SackScoreboard>();
    auto& board = c.scoreboard->blocks;
    // Merge with every range it touches, so the board stays sorted and disjoint.
    auto first = std::find_if(board.begin(), board.end(),
                              [&](const SackBlock& b) { return b.right >= block.left; });
    auto last = first;
    while (last != board.end() && last->left <= block.right) ++last;
    SackBlock merged = block;
    uint32_t covered = 0;
    for (auto it = first; it != last; ++it) {
      merged.left = seq_min(merged.left, it->left);
      merged.right = seq_max(merged.right, it->right);
      covered += static_cast<uint32_t>(it->right - it->left);
    }
    news = news || static_cast<uint32_t>(merged.right - merged.left) > covered;
    board.insert(board.erase(first, last), merged);
  }
  return news;
}

// Forgets what the cumulative ACK now covers; an emptied scoreboard is freed.
void Tcp::prune_scoreboard(Connection& c) {
  if (!c.scoreboard) return;
  auto& board = c.scoreboard->blocks;
  while (!board.empty() && board.front().right <= c.snd_una) board.erase(board.begin());
  if (board.empty()) return c.scoreboard.reset();
  board.front().left = seq_max(board.front().left, c.snd_una);
}

// RFC 6675 §4 IsLost(): DupThresh SACKed ranges above s, or more than (DupThresh - 1)·MSS
// SACKed bytes above it.
bool Tcp::is_lost(const Connection& c, Seq s) const {
  uint32_t ranges = 0;
  uint32_t bytes = 0;
  for (const SackBlock& b : c.sacked()) {
    if (b.right <= s) continue;
    ++ranges;
    bytes += static_cast<uint32_t>(b.right - seq_max(b.left, s));
  }
  return ranges >= kDupThresh || bytes > (kDupThresh - 1) * c.mss;
}

// Calls visit(begin, end) for each range between snd_una and snd_max the peer has not SACKed.
template <typename Visit>
void for_each_hole(const Connection& c, Visit visit) {
  Seq at = c.snd_una;
  for (const SackBlock& b : c.sacked()) {
    if (at < b.left) visit(at, b.left);
    at = seq_max(at, b.right);
  }
  if (at < c.snd_max) visit(at, c.snd_max);
}

// RFC 6675 §4 SetPipe(): bytes not SACKed that are either not lost or were retransmitted.
uint32_t Tcp::pipe(const Connection& c) const {
  uint32_t pipe = 0;
  for_each_hole(c, [&](Seq begin, Seq end) {
    const Seq resent_end = seq_min(end, seq_max(begin, c.high_rxt));
    pipe += static_cast<uint32_t>(resent_end - begin);
    if (resent_end < end && !is_lost(c, resent_end))
      pipe += static_cast<uint32_t>(end - resent_end);
  });
  return pipe;
}

// RFC 6675 §5 (steps C.1-C.5): while the window has room beyond the pipe, retransmit the
// first hole the scoreboard shows lost (NextSeg rule 1), else send new data (rule 2).
// Linux: tcp_xmit_retransmit_queue() during TCP_CA_Recovery
void Tcp::sack_recovery_send(Connection& c, Instant now) {
  const uint32_t mss = send_mss(c);
  for (int sent = 0; sent < 1024; ++sent) {
    const uint32_t in_flight = pipe(c);
    if (c.cwnd <= in_flight || c.cwnd - in_flight < mss) return;
    std::optional<std::pair<Seq, Seq>> lost;
    for_each_hole(c, [&](Seq begin, Seq end) {
      begin = seq_max(begin, c.high_rxt);
      if (!lost && begin < end && is_lost(c, begin)) lost.emplace(begin, end);
    });
    if (lost) {
      const Seq data_end = seq_min(lost->second, c.buffered_end());
      const uint32_t length = static_cast<uint32_t>(std::max<int32_t>(
          std::min<int32_t>(static_cast<int32_t>(mss), data_end - lost->first), 0));
      const bool fin = c.write_shutdown && lost->first + length == c.buffered_end() &&
                       lost->second > c.buffered_end();
      transmit(c, lost->first, kAck | (fin ? kFin : 0), length, now);
      c.high_rxt = lost->first + length + (fin ? 1 : 0);
      continue;
    }
    const Seq end = c.buffered_end();
    const int32_t room = (c.snd_una + c.snd_wnd) - c.snd_nxt;
    if (c.snd_nxt < end && room > 0) {
      const uint32_t length =
          std::min({mss, static_cast<uint32_t>(end - c.snd_nxt), static_cast<uint32_t>(room)});
      const bool fin = c.write_shutdown && c.snd_nxt + length == end;
      transmit(c, c.snd_nxt, kAck | (fin ? kFin : 0), length, now);
      c.snd_nxt += length + (fin ? 1 : 0);
      c.snd_max = seq_max(c.snd_max, c.snd_nxt);
      continue;
    }
    return;
  }
}

// After a timeout snd_nxt goes back; what the peer SACKed need not be sent again. Moves
// snd_nxt past a SACKed range it stands in and returns how far it may send before the next.
uint32_t Tcp::skip_sacked(Connection& c) const {
  uint32_t limit = UINT32_MAX;
  for (const SackBlock& b : c.sacked()) {
    if (seq_in_window(c.snd_nxt, b.left, b.right)) c.snd_nxt = b.right;
    if (c.snd_nxt < b.left) {
      limit = static_cast<uint32_t>(b.left - c.snd_nxt);
      break;
    }
  }
  return limit;
}

}  // namespace tapstack
