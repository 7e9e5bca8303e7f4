#include "tools/stream_io.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "tap/system_error.h"

namespace tapstack::cli {
namespace {

// A regular file is always ready; anything else (pipe, terminal, socket) is asked.
bool is_regular_file(int fd) {
  struct stat status {};
  return fstat(fd, &status) == 0 && S_ISREG(status.st_mode);
}

bool ready(int fd, short events) {
  pollfd entry{fd, events, 0};
  return poll(&entry, 1, 0) > 0 && (entry.revents & (events | POLLHUP | POLLERR | POLLNVAL));
}

bool is_standard(std::string_view path) {
  return path.empty() || path == "-";
}

// What a write to a regular file may take at once: big enough to cost few system calls.
constexpr size_t kFileChunk = 256 * 1024;

// A pipe holds 64 KiB by default: a producer as fast as the stack then wakes us, and waits for
// us, every 64 KiB. A larger pipe lets it run ahead (1 MiB is what an unprivileged process may
// ask for, /proc/sys/fs/pipe-max-size). Best effort: another kind of input keeps what it has.
constexpr int kPipeSize = 1 << 20;
void enlarge_if_pipe(int fd) {
  struct stat status {};
  if (fstat(fd, &status) == 0 && S_ISFIFO(status.st_mode)) fcntl(fd, F_SETPIPE_SZ, kPipeSize);
}

}  // namespace

FileHandle::FileHandle(FileHandle&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), owned_(std::exchange(other.owned_, false)) {}

FileHandle& FileHandle::operator=(FileHandle&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    owned_ = std::exchange(other.owned_, false);
  }
  return *this;
}

FileHandle::~FileHandle() {
  close();
}

Status FileHandle::close() {
  const int fd = std::exchange(fd_, -1);
  if (fd < 0 || !std::exchange(owned_, false)) return Ok{};
  if (::close(fd) != 0) return errno_error(errno, "close");
  return Ok{};
}

Result<InputStream> InputStream::open(std::string_view path) {
  if (is_standard(path)) {
    enlarge_if_pipe(STDIN_FILENO);
    return InputStream(FileHandle(STDIN_FILENO, false), "stdin", is_regular_file(STDIN_FILENO));
  }
  const std::string name(path);
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, fmt::format("cannot read --input '{}'", name));
  enlarge_if_pipe(fd);
  return InputStream(FileHandle(fd, true), name, is_regular_file(fd));
}

Result<size_t> InputStream::read(MutableByteView buffer) {
  if (at_end_) return size_t{0};
  if (!regular_file_ && !ready(file_.fd(), POLLIN)) return would_block_error();
  const ssize_t size = ::read(file_.fd(), buffer.data(), buffer.size());
  if (size < 0) {
    if (errno == EINTR || errno == EAGAIN) return would_block_error();
    return errno_error(errno, fmt::format("reading {}", name_));
  }
  if (size == 0) at_end_ = true;
  return static_cast<size_t>(size);
}

Result<OutputStream> OutputStream::open(std::string_view path) {
  if (is_standard(path)) {
    return OutputStream(FileHandle(STDOUT_FILENO, false), "stdout", is_regular_file(STDOUT_FILENO));
  }
  const std::string name(path);
  const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return errno_error(errno, fmt::format("cannot write --output '{}'", name));
  return OutputStream(FileHandle(fd, true), name, is_regular_file(fd));
}

// POLLOUT on a pipe means at least one free page: PIPE_BUF bytes go without blocking.
size_t OutputStream::writable_now() const {
  if (regular_file_) return kFileChunk;
  return ready(file_.fd(), POLLOUT) ? PIPE_BUF : 0;
}

Status OutputStream::write(ByteView data) {
  while (!data.empty()) {
    const ssize_t size = ::write(file_.fd(), data.data(), data.size());
    if (size < 0 && errno == EINTR) continue;
    if (size < 0) return errno_error(errno, fmt::format("writing {}", name_));
    data = data.subspan(static_cast<size_t>(size));
  }
  return Ok{};
}

Status OutputStream::close() {
  if (auto status = file_.close(); !status) {
    return errno_error(status.error().code, fmt::format("writing {}", name_));
  }
  return Ok{};
}

}  // namespace tapstack::cli
