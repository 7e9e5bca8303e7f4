// Errors as values for md5opt (RFC 2385 has no error model of its own). The codes are the
// errno values Linux's setsockopt(TCP_MD5SIG) returns for the same mistakes, so a thin POSIX
// layer can pass them through. md5opt depends on nothing in stack/, hence its own small copy.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tapstack::md5opt {

struct Error {
  int code = 0;  // an errno value: EINVAL, ENOENT, EMSGSIZE, EIO
  std::string message;
};

// Either a value or an Error (std::expected arrives only in C++23).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace tapstack::md5opt
