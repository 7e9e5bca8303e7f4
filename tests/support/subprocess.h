// Child processes for tests (ping, the tapstack binary), always with a time limit: a child
// that does not finish in time is killed, and the test sees timed_out.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "stack/error.h"

namespace tapstack::testing {

using std::chrono::milliseconds;

struct ProcessOptions {
  // Drop CAP_NET_ADMIN from the capability bounding set before exec, so that even a root
  // child runs without it.
  bool drop_net_admin = false;
  // A file to give the child as stdin; empty: the child inherits the test's stdin.
  std::string stdin_path = {};
};

struct ProcessResult {
  int exit_code = -1;      // the exit status, or -1 when killed by a signal
  int signal = 0;          // the signal that ended it, 0 if it exited
  bool timed_out = false;  // killed with SIGKILL after the time limit
  std::string out;         // all of its stdout
  std::string err;         // all of its stderr but the line below
  // A non-optimised tapstack's first word on stderr ("this binary is not optimised ..."),
  // kept apart from err; empty for the optimised build and other programs.
  std::string build_warning;

  // "exit 2" / "signal 9 (timed out)", for failure messages.
  std::string describe() const;
};

// Moves a non-optimised tapstack's build warning line out of result.err (see above).
void separate_build_warning(ProcessResult& result);

// A running child with its stdout and stderr captured through pipes.
class ChildProcess {
 public:
  static Result<ChildProcess> start(const std::vector<std::string>& argv,
                                    ProcessOptions options = {});
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();  // kills and reaps a child still running

  pid_t pid() const { return pid_; }
  void send_signal(int signal_number);
  // Reads output until stdout holds needle, the child ends its output, or the time passes.
  bool wait_for_stdout(std::string_view needle, milliseconds timeout);
  // The same for stderr, where `tapstack serve` says it is listening.
  bool wait_for_stderr(std::string_view needle, milliseconds timeout);
  // Until stderr holds needle `count` times.
  bool wait_for_stderr(std::string_view needle, size_t count, milliseconds timeout);
  // Collects output and waits for the exit; SIGKILL after timeout.
  ProcessResult wait(milliseconds timeout);

 private:
  ChildProcess(pid_t pid, int out_fd, int err_fd) : pid_(pid), out_fd_(out_fd), err_fd_(err_fd) {}
  // Moves what the pipes hold into result_; false once both are closed or time is up.
  bool read_output(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  ProcessResult result_;
};

// Starts argv, waits at most timeout, returns what it did.
ProcessResult run_process(const std::vector<std::string>& argv, milliseconds timeout,
                          ProcessOptions options = {});

}  // namespace tapstack::testing
