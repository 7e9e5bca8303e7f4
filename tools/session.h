// What every command that runs the stack over a TAP device sets up from CommonOptions: the
// TAP, the kernel side's address, the stack, the event loop, pcap, stats and trace output.
#pragma once

#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "stack/error.h"
#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tap/event_loop.h"
#include "tap/netlink.h"
#include "tap/pcap_writer.h"
#include "tap/tap_device.h"
#include "tools/cli.h"

namespace tapstack::cli {

class Session {
 public:
  // Opens everything, in an order that fails before touching the host where it can: output
  // files first, then the TAP, then its configuration. The stack is started, and from here
  // on SIGINT and SIGTERM stop the loop instead of killing the process. Without --host-addr,
  // a kernel side that cannot reach the stack (down, or no address on its subnet) is said on
  // stderr at once, as a warning: a script may configure it right after starting us.
  static Result<std::unique_ptr<Session>> open(const CommonOptions& options);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // One line saying what runs where, for the user.
  std::string describe() const;
  // Runs the event loop until SIGINT, SIGTERM or SIGHUP (or a failure of the TAP).
  Status run_until_signal();

  // What a command does on every turn of the loop, on the loop's thread: it moves data
  // between its sockets and its files, then says how long the loop may sleep before the next
  // turn if no frame arrives and no stack timer fires (Duration::max(): no limit), or
  // nullopt when the command is done.
  using Step = std::function<std::optional<Duration>(Instant now)>;
  // Runs the loop and step until step is done, SIGINT, SIGTERM or SIGHUP (stopped_by_signal() then
  // names it), or the TAP fails.
  Status run(const Step& step);
  // The signal that stopped the last run, 0 if none did.
  int stopped_by_signal() const { return stopped_by_; }
  // One line on how the run ended: the signal, frames in and out.
  std::string summary() const;
  // Writes the counters to the --stats file (and, when there are sockets left, prints the
  // connection table on stderr), and reports a pcap write failure if there was one. Call
  // once, after the loop has stopped.
  Status finish();
  // The counters as JSON, to the --stats file (replacing what it held) or, without --stats,
  // to stderr. What SIGUSR1 asks for while the loop runs.
  Status write_stats();

  Stack& stack() { return *stack_; }
  EventLoop& loop() { return *loop_; }
  TapDevice& tap() { return tap_; }

 private:
  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  using File = std::unique_ptr<std::FILE, FileCloser>;

  // The address --host-addr added (not one the interface had), removed when destroyed.
  class AddedHostAddress {
   public:
    AddedHostAddress() = default;
    AddedHostAddress(const AddedHostAddress&) = delete;
    AddedHostAddress& operator=(const AddedHostAddress&) = delete;
    ~AddedHostAddress();
    void set(std::string interface, std::variant<Ipv4Interface, Ipv6Interface> address);

   private:
    std::string interface_;
    std::optional<std::variant<Ipv4Interface, Ipv6Interface>> address_;
  };

  Session(CommonOptions options, File stats_file, std::optional<PcapWriter> pcap, TapDevice tap);
  // With --host-addr: gives the kernel side its addresses and brings it up. For a family
  // without: looks at what it has, for describe() and the warning.
  Status configure_host();
  Status add_host_address(Rtnetlink& netlink, const Ipv4Interface& host);
  Status add_host_address(Rtnetlink& netlink, const Ipv6Interface& host);
  Status check_kernel_side(Rtnetlink& netlink);
  // RFC 2385 drops are silent on the wire by design, so a key that does not match looks like
  // a peer that does not answer: say them on stderr, at most once a second (and what is left
  // when final), as Linux's "MD5 Hash failed" log lines do.
  void report_md5_drops(Instant now, bool final);
  Status create_stack();
  // Runs the loop until our IPv6 addresses passed duplicate address detection (a failure is
  // an error naming who holds the address). Nothing to wait for without IPv6.
  Status wait_for_dad();
  void attach_outputs();
  // SIGUSR1: write the stats; SIGUSR2: the connection table on stderr. Between two turns.
  void handle_requests();

  CommonOptions options_;
  File stats_file_;
  std::optional<PcapWriter> pcap_;
  // Declared before tap_, so removed after the TAP has closed: the peer has taken in our last
  // frames by then, and a TAP that vanishes with us takes the address along.
  AddedHostAddress added_host_addr_;
  AddedHostAddress added_host_addr6_;
  TapDevice tap_;
  MacAddress kernel_mac_;
  std::vector<Ipv4Interface> kernel_addresses_;  // the kernel side's, on the stack's subnet
  std::vector<Ipv6Interface> kernel_addresses6_;  // ... in the stack's IPv6 prefix
  std::string kernel_master_;                    // the bridge the TAP is a port of, if any
  bool kernel_down_ = false;
  std::string start_warning_;
  uint32_t mtu_ = 0;
  int stopped_by_ = 0;
  std::array<uint64_t, kMd5DropCases.size()> md5_drops_reported_{};  // by kMd5DropCases row
  Instant md5_report_time_ = Instant::never();
  std::optional<Error> pcap_error_;
  std::unique_ptr<Stack> stack_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<StopOnSignals> signals_;
  std::unique_ptr<RequestSignals> requests_;
};

}  // namespace tapstack::cli
