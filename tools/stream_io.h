// The data side of `serve` and `connect`: a file or stdin to read, a file or stdout to write,
// used from the event loop's thread without ever blocking it. Neither changes the descriptor's
// flags (stdin and stdout are often shared with a shell); each asks poll() with a zero timeout
// whether the next read or write can go now, and moves at most what is then sure not to block.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "stack/bytes.h"
#include "stack/error.h"

namespace tapstack::cli {

// An owned file descriptor, or a borrowed one (stdin, stdout) that is never closed.
class FileHandle {
 public:
  FileHandle() = default;
  FileHandle(int fd, bool owned) : fd_(fd), owned_(owned) {}
  FileHandle(FileHandle&& other) noexcept;
  FileHandle& operator=(FileHandle&& other) noexcept;
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle();

  int fd() const { return fd_; }
  // Closes an owned descriptor and reports what close() said (a late write error).
  Status close();

 private:
  int fd_ = -1;
  bool owned_ = false;
};

class InputStream {
 public:
  // path empty or "-": stdin. The name is what error messages call it.
  static Result<InputStream> open(std::string_view path);

  // Reads what is ready now, at most buffer.size() bytes: 0 at end of input, Error EAGAIN
  // when nothing is ready yet.
  Result<size_t> read(MutableByteView buffer);
  bool at_end() const { return at_end_; }
  const std::string& name() const { return name_; }
  // A pipe, terminal or socket, whose readiness poll() tells (a regular file is always ready).
  bool pollable() const { return !regular_file_; }
  int fd() const { return file_.fd(); }

 private:
  InputStream(FileHandle file, std::string name, bool regular_file)
      : file_(std::move(file)), name_(std::move(name)), regular_file_(regular_file) {}

  FileHandle file_;
  std::string name_;
  bool regular_file_ = false;
  bool at_end_ = false;
};

class OutputStream {
 public:
  // path empty or "-": stdout; else the file is created or truncated.
  static Result<OutputStream> open(std::string_view path);

  // How many bytes write() takes now without blocking: 0 while the reader is behind.
  size_t writable_now() const;
  // Writes all of data (callers keep within writable_now()). A reader that went away is
  // EPIPE (SIGPIPE must be ignored).
  Status write(ByteView data);
  // Closes a file (its last chance to report a write error); stdout stays open.
  Status close();
  const std::string& name() const { return name_; }

 private:
  OutputStream(FileHandle file, std::string name, bool regular_file)
      : file_(std::move(file)), name_(std::move(name)), regular_file_(regular_file) {}

  FileHandle file_;
  std::string name_;
  bool regular_file_ = false;
};

}  // namespace tapstack::cli
