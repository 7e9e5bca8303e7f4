// Congestion control behind one small interface, chosen per socket: NewReno (RFC 5681,
// RFC 6582) and CUBIC (RFC 9438, the default, as on Linux). Slow start and the recovery
// mechanics (fast retransmit, SACK or NewReno recovery) and the restart after idle (RFC 5681
// §4.1, RFC 2861) are shared; an algorithm decides the window after a loss and how it grows in
// congestion avoidance.
#pragma once

#include <cstdint>

#include "stack/time.h"

namespace tapstack {

struct Connection;

enum class CongestionAlgorithm : uint8_t { NewReno, Cubic };

// RFC 9438 §4: the state of the cubic window function, in segments and seconds.
struct CubicState {
  double w_max = 0;       // the window before the last reduction
  double w_last_max = 0;  // for fast convergence (§4.7)
  double k = 0;           // the time the function takes to climb back to w_max
  double w_est = 0;       // the Reno-friendly estimate (§4.3)
  double cwnd_fraction = 0;
  Instant epoch;  // when the current congestion-avoidance epoch began
  bool in_epoch = false;
};

// The slow-start threshold after a loss (fast retransmit or timeout); also resets the
// algorithm's epoch. Linux: tcp_congestion_ops.ssthresh
uint32_t congestion_ssthresh_after_loss(Connection& c);
// Window growth for `acked` newly acknowledged bytes outside recovery.
// Linux: tcp_congestion_ops.cong_avoid
void congestion_on_ack(Connection& c, uint32_t acked, Instant now);
// The connection sent nothing for `idle` (longer than its RTO) and has nothing in flight:
// the window halves for every RTO that passed, but not below restart_window (the initial
// window); ssthresh remembers three quarters of the old window; CUBIC's epoch moves forward by
// the idle time so that its curve does not jump. RFC 5681 §4.1, RFC 2861 as Linux does it.
// Linux: tcp_cwnd_restart(), bictcp_cwnd_event(CA_EVENT_TX_START)
void congestion_after_idle(Connection& c, uint32_t restart_window, Duration idle);
// RFC 9438's window function W_cubic(t) in segments, t seconds into the epoch.
double cubic_window(const CubicState& s, double t);

}  // namespace tapstack
