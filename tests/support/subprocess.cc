#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::testing {
namespace {

using Clock = std::chrono::steady_clock;

// In the child between fork and exec: system calls only. Removes CAP_NET_ADMIN from every
// set that exec could carry it over from (bounding, ambient, inheritable).
void drop_net_admin() {
  prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return;
  data[0].inheritable &= ~(1u << CAP_NET_ADMIN);
  data[0].effective &= ~(1u << CAP_NET_ADMIN);
  data[0].permitted &= ~(1u << CAP_NET_ADMIN);
  syscall(SYS_capset, &header, data);
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string ProcessResult::describe() const {
  if (timed_out) return "killed after its time limit";
  if (signal != 0) return fmt::format("killed by signal {}", signal);
  return fmt::format("exit {}", exit_code);
}

Result<ChildProcess> ChildProcess::start(const std::vector<std::string>& argv,
                                         ProcessOptions options) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return errno_error(errno, "pipe2");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return errno_error(errno, "pipe2");
  }
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);

  int input = -1;
  if (!options.stdin_path.empty()) {
    input = open(options.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (input < 0) {
      const int open_errno = errno;
      for (const int fd : {out[0], out[1], err[0], err[1]}) close(fd);
      return errno_error(open_errno, fmt::format("opening {}", options.stdin_path));
    }
  }

  const pid_t pid = fork();
  if (pid == 0) {
    if (options.drop_net_admin) drop_net_admin();
    if (input >= 0) dup2(input, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  const int fork_errno = errno;
  if (input >= 0) close(input);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return errno_error(fork_errno, "fork");
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  return ChildProcess(pid, out[0], err[0]);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)),
      result_(std::move(other.result_)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  close_fd(out_fd_);
  close_fd(err_fd_);
}

void ChildProcess::send_signal(int signal_number) {
  if (pid_ > 0) kill(pid_, signal_number);
}

bool ChildProcess::read_output(Clock::time_point deadline) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (out_fd_ < 0 && err_fd_ < 0) return false;
  const int ready = poll(fds, 2, remaining_ms(deadline));
  if (ready < 0 && errno != EINTR) return false;
  std::pair<int*, std::string*> pipes[2] = {{&out_fd_, &result_.out}, {&err_fd_, &result_.err}};
  for (auto& [fd, text] : pipes) {
    if (*fd < 0) continue;
    char buffer[4096];
    const ssize_t size = read(*fd, buffer, sizeof buffer);
    if (size > 0) text->append(buffer, static_cast<size_t>(size));
    if (size == 0 || (size < 0 && errno != EAGAIN && errno != EINTR)) close_fd(*fd);
  }
  return Clock::now() < deadline && (out_fd_ >= 0 || err_fd_ >= 0);
}

bool ChildProcess::wait_for_stdout(std::string_view needle, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (result_.out.find(needle) == std::string::npos) {
    if (!read_output(deadline)) return result_.out.find(needle) != std::string::npos;
  }
  return true;
}

bool ChildProcess::wait_for_stderr(std::string_view needle, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (result_.err.find(needle) == std::string::npos) {
    if (!read_output(deadline)) return result_.err.find(needle) != std::string::npos;
  }
  return true;
}

bool ChildProcess::wait_for_stderr(std::string_view needle, size_t count,
                                   milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto seen = [&] {
    size_t found = 0;
    for (size_t at = result_.err.find(needle); at != std::string::npos;
         at = result_.err.find(needle, at + needle.size())) {
      ++found;
    }
    return found >= count;
  };
  while (!seen()) {
    if (!read_output(deadline)) return seen();
  }
  return true;
}

// A tapstack that is not the optimised build (--config=asan) says so on stderr when it starts
// (tools/build_info.h): the line goes to build_warning, so that tests of the rest of what it
// says hold in every configuration.
void separate_build_warning(ProcessResult& result) {
  constexpr std::string_view kPrefix = "tapstack: this binary is not optimised";
  const size_t start =
      result.err.starts_with(kPrefix) ? 0 : result.err.find(fmt::format("\n{}", kPrefix));
  if (start == std::string::npos) return;
  const size_t begin = start == 0 ? 0 : start + 1;
  const size_t end = result.err.find('\n', begin);
  const size_t length = end == std::string::npos ? std::string::npos : end + 1 - begin;
  result.build_warning = result.err.substr(begin, length);
  result.err.erase(begin, length);
}

ProcessResult ChildProcess::wait(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (read_output(deadline)) {
  }
  int status = 0;
  while (pid_ > 0) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) break;
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      result_.timed_out = true;
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  pid_ = -1;
  // What the child wrote just before it ended.
  const auto drain_deadline = Clock::now() + milliseconds(500);
  while (read_output(drain_deadline)) {
  }
  result_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  separate_build_warning(result_);
  return std::move(result_);
}

ProcessResult run_process(const std::vector<std::string>& argv, milliseconds timeout,
                          ProcessOptions options) {
  auto child = ChildProcess::start(argv, options);
  if (!child) {
    ProcessResult result;
    result.err = child.error().message;
    return result;
  }
  return child->wait(timeout);
}

}  // namespace tapstack::testing
