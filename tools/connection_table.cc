#include "tools/connection_table.h"

#include <fmt/format.h>

#include "tools/cli.h"

namespace tapstack::cli {
namespace {

// As ss prints them: 198.18.0.2:179, [2001:db8::2]:179, and *:* for a peer not yet known.
std::string endpoint(const IpAddress& address, uint16_t port) {
  if (port == 0) return "*:*";
  return format_endpoint(address, port);
}

std::string milliseconds(Duration duration) {
  return fmt::format("{:.3f}", static_cast<double>(duration.ns()) / 1e6);
}

}  // namespace

std::string connection_table(const Tcp& tcp) {
  std::string table = fmt::format("{:<12} {:>8} {:>8} {:<21} {:<21} {}\n", "State", "Recv-Q",
                                  "Send-Q", "Local Address:Port", "Peer Address:Port",
                                  "details (as ss -ti)");
  for (const SocketId id : tcp.sockets()) {
    const auto info = tcp.info(id);
    if (!info) continue;
    std::string details;
    if (info->state != TcpState::Listen && info->state != TcpState::Closed) {
      const uint32_t mss = info->snd_mss == 0 ? 1 : info->snd_mss;
      details = fmt::format(
          "rtt:{} rto:{} mss:{} cwnd:{} ssthresh:{} unacked:{} retrans:{} snd_wnd:{}",
          milliseconds(info->srtt), milliseconds(info->rto), info->snd_mss, info->cwnd / mss,
          info->ssthresh >= (1u << 30) ? std::string("-") : std::to_string(info->ssthresh / mss),
          info->unacked, info->retransmits, info->peer_window);
      if (info->window_scaling) {
        details += fmt::format(" wscale:{},{}", info->snd_wscale, info->rcv_wscale);
      }
      if (info->timestamps) details += " ts";
      if (info->sack) details += " sack";
      if (info->in_recovery) details += " recovery";
    }
    details += info->md5 ? " md5:yes" : " md5:no";
    table += fmt::format("{:<12} {:>8} {:>8} {:<21} {:<21} {}\n", tcp_state_name(info->state),
                         info->receive_queue, info->send_queue,
                         endpoint(info->local_address, info->local_port),
                         endpoint(info->remote_address, info->remote_port),
                         details.starts_with(' ') ? details.substr(1) : details);
  }
  return table;
}

}  // namespace tapstack::cli
