#include "stack/tcp/congestion.h"

#include <algorithm>
#include <cmath>

#include "stack/tcp/connection.h"

namespace tapstack {
namespace {

constexpr double kCubicC = 0.4;     // RFC 9438 §4.1
constexpr double kCubicBeta = 0.7;  // §4.6: the multiplicative decrease
constexpr double kRenoAlpha = 3 * (1 - kCubicBeta) / (1 + kCubicBeta);  // §4.3

double segments(const Connection& c) {
  return static_cast<double>(c.cwnd) / c.mss;
}

// Made the first time CUBIC needs it, so that a connection that never leaves slow start (most
// of them) does not carry it; all zero then, as it would have been all along.
CubicState& cubic_state(Connection& c) {
  if (!c.cubic) c.cubic = std::make_unique<CubicState>();
  return *c.cubic;
}

// RFC 5681 §3.1 with RFC 3465's byte counting: one MSS per window acknowledged.
void reno_avoidance(Connection& c, uint32_t acked) {
  c.bytes_acked += acked;
  if (c.bytes_acked >= c.cwnd) {
    c.bytes_acked -= c.cwnd;
    c.cwnd += c.mss;
  }
}

// RFC 9438 §4.2-4.5. Linux: cubictcp_cong_avoid(), bictcp_update() (tcp_cubic.c)
void cubic_avoidance(Connection& c, uint32_t acked, Instant now) {
  CubicState& s = cubic_state(c);
  if (!s.in_epoch) {
    s.in_epoch = true;
    s.epoch = now;
    if (s.w_max < segments(c)) {  // no loss yet, or the window already passed w_max
      s.w_max = segments(c);
      s.k = 0;
    } else {
      s.k = std::cbrt(s.w_max * (1 - kCubicBeta) / kCubicC);
    }
    s.w_est = segments(c);
  }
  const double rtt = c.have_rtt ? c.srtt.seconds_f() : 0.0;
  const double t = (now - s.epoch).seconds_f();
  const double target = std::clamp(cubic_window(s, t + rtt), segments(c), 1.5 * segments(c));
  const double acked_segments = static_cast<double>(acked) / c.mss;
  s.w_est += kRenoAlpha * acked_segments / segments(c);
  // Grow by (target - cwnd) / cwnd per acknowledged segment, or follow Reno where it is faster.
  double growth = (target - segments(c)) / segments(c) * acked_segments;
  if (s.w_est > cubic_window(s, t)) growth = std::max(growth, s.w_est - segments(c));
  s.cwnd_fraction += growth;
  if (s.cwnd_fraction >= 1) {
    const double whole = std::floor(s.cwnd_fraction);
    s.cwnd_fraction -= whole;
    c.cwnd += static_cast<uint32_t>(whole) * c.mss;
  }
}

}  // namespace

double cubic_window(const CubicState& s, double t) {
  const double d = t - s.k;
  return kCubicC * d * d * d + s.w_max;
}

uint32_t congestion_ssthresh_after_loss(Connection& c) {
  if (c.congestion == CongestionAlgorithm::NewReno) {
    return std::max(c.in_flight() / 2, 2u * c.mss);  // RFC 5681 equation (4)
  }
  CubicState& s = cubic_state(c);
  const double w = segments(c);
  // §4.7 fast convergence: a flow whose window keeps shrinking releases bandwidth sooner.
  s.w_max = w < s.w_last_max ? w * (1 + kCubicBeta) / 2 : w;
  s.w_last_max = w;
  s.in_epoch = false;
  s.cwnd_fraction = 0;
  return std::max(static_cast<uint32_t>(c.cwnd * kCubicBeta), 2u * c.mss);
}

void congestion_after_idle(Connection& c, uint32_t restart_window, Duration idle) {
  c.ssthresh = std::max(c.ssthresh, c.cwnd / 2 + c.cwnd / 4);  // Linux: tcp_current_ssthresh()
  uint32_t cwnd = c.cwnd;
  for (Duration left = idle - c.rto; left > Duration::zero() && cwnd > restart_window;
       left = left - c.rto) {
    cwnd >>= 1;
  }
  c.cwnd = std::max(cwnd, restart_window);
  if (c.cubic && c.cubic->in_epoch) c.cubic->epoch = c.cubic->epoch + idle;
}

void congestion_on_ack(Connection& c, uint32_t acked, Instant now) {
  if (c.cwnd < c.ssthresh) {
    c.cwnd += std::min<uint32_t>(acked, c.mss);  // slow start, RFC 3465 with L = 1
    return;
  }
  if (c.congestion == CongestionAlgorithm::NewReno) return reno_avoidance(c, acked);
  cubic_avoidance(c, acked, now);
}

}  // namespace tapstack
