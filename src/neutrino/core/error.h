// Typed errors for user mistakes, and an internal assert for our own bugs.
//
// User errors (a wrong shape, a bad argument, an unreadable file) throw one of the exception types
// below through NEUTRINO_CHECK; the CLI and the server map them to exit codes and HTTP statuses at one
// boundary. The library itself never calls exit().
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace neutrino {

// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Tensors whose shapes do not fit the op.
class ShapeError : public Error {
 public:
  using Error::Error;
};
// An argument or value out of its domain (a negative rate, an unknown name, a wrong dtype).
class ValueError : public Error {
 public:
  using Error::Error;
};
// A file that cannot be read, written or parsed.
class IOError : public Error {
 public:
  using Error::Error;
};
// A violated internal invariant: a bug in neutrino, not in the caller's input.
class InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_internal(const char* cond, const char* file, int line);
}  // namespace detail

}  // namespace neutrino

// NEUTRINO_CHECK(cond, ErrorType, "fmt {}", args...): throws ErrorType with the formatted message.
#define NEUTRINO_CHECK(cond, ErrorType, ...)                   \
  do {                                                         \
    if (!(cond)) [[unlikely]] {                                \
      throw ::neutrino::ErrorType(::fmt::format(__VA_ARGS__)); \
    }                                                          \
  } while (0)

#define NEUTRINO_CHECK_SHAPE(cond, ...) NEUTRINO_CHECK(cond, ShapeError, __VA_ARGS__)
#define NEUTRINO_CHECK_VALUE(cond, ...) NEUTRINO_CHECK(cond, ValueError, __VA_ARGS__)
#define NEUTRINO_CHECK_IO(cond, ...) NEUTRINO_CHECK(cond, IOError, __VA_ARGS__)

// Internal invariant: failing means a bug in neutrino.
#define NEUTRINO_ASSERT(cond)                                           \
  do {                                                                  \
    if (!(cond)) [[unlikely]] {                                         \
      ::neutrino::detail::throw_internal(#cond, __FILE__, __LINE__);    \
    }                                                                   \
  } while (0)
