// Bulk transfers between two simulated stacks: applications that push a seeded byte stream
// through a TCP connection and hash what they sent and received (SHA-256), driven step by
// step with the simulated network.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "stack/random.h"
#include "stack/stack.h"
#include "stack/tcp/tcp.h"
#include "tests/sim/network.h"

namespace tapstack::test {

using Digest = std::array<uint8_t, 32>;

// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(context_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(context_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const uint8_t* data, size_t size) { EVP_DigestUpdate(context_, data, size); }
  Digest finish() {
    Digest digest{};
    EVP_DigestFinal_ex(context_, digest.data(), nullptr);
    return digest;
  }

 private:
  EVP_MD_CTX* context_;
};

// One direction of a connection as an application sees it: send `total` seeded bytes, read
// everything the peer sends, hash both.
class StreamApp {
 public:
  StreamApp(Stack& stack, uint64_t total, uint64_t seed) : stack_(stack), total_(total), data_(seed) {
  }
  void attach(SocketId socket) { socket_ = socket; }
  bool attached() const { return socket_ != 0; }

  // Moves as much as the socket takes and gives; returns whether anything happened.
  bool pump(Instant now) {
    if (socket_ == 0) return false;
    Tcp& tcp = stack_.tcp();
    bool progress = false;
    while (sent_ < total_) {
      if (chunk_used_ == chunk_.size()) refill();
      const size_t want = std::min<uint64_t>(chunk_.size() - chunk_used_, total_ - sent_);
      auto n = tcp.send(socket_, ByteView(chunk_).subspan(chunk_used_, want), now);
      if (!n) {
        if (n.error().code != EAGAIN) failed_ = n.error().message;
        break;
      }
      sent_hash_.update(chunk_.data() + chunk_used_, *n);
      chunk_used_ += *n;
      sent_ += *n;
      progress = true;
    }
    if (sent_ == total_ && !shut_) {
      shut_ = static_cast<bool>(tcp.shutdown(socket_, ShutdownHow::Write, now));
      progress = true;
    }
    uint8_t buffer[16384];
    while (!eof_) {
      auto n = tcp.receive(socket_, buffer, now);
      if (!n) {
        if (n.error().code != EAGAIN) failed_ = n.error().message;
        break;
      }
      if (*n == 0) {
        eof_ = true;
        break;
      }
      received_hash_.update(buffer, *n);
      received_ += *n;
      progress = true;
    }
    return progress;
  }

  bool done() const { return (sent_ == total_ && shut_ && eof_) || !failed_.empty(); }
  Digest sent_digest() { return sent_hash_.finish(); }
  Digest received_digest() { return received_hash_.finish(); }
  uint64_t received() const { return received_; }
  const std::string& failed() const { return failed_; }

 private:
  void refill() {
    chunk_.resize(64 * 1024);
    for (size_t i = 0; i < chunk_.size(); i += 8) {
      const uint64_t word = data_.next_u64();
      std::copy_n(reinterpret_cast<const uint8_t*>(&word), 8, chunk_.data() + i);
    }
    chunk_used_ = 0;
  }

  Stack& stack_;
  SocketId socket_ = 0;
  uint64_t total_;
  Random data_;
  std::vector<uint8_t> chunk_;
  size_t chunk_used_ = 0;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  bool shut_ = false;
  bool eof_ = false;
  std::string failed_;
  Sha256 sent_hash_;
  Sha256 received_hash_;
};

}  // namespace tapstack::test
