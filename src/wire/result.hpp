// Result<T>: the value of a parse, or the reason it was rejected. No exceptions in the data path
// (STYLE 7): a decoder returns an Error the caller must look at, and the caller counts it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <variant>

namespace phalanx::wire {

enum class Error : std::uint8_t {
  truncated,          // fewer bytes than the header or a length field says
  bad_version,        // version field we do not speak
  bad_header_length,  // a header-length field smaller than the minimum or beyond the buffer
  bad_total_length,   // a total-length field that disagrees with the buffer
  bad_checksum,       // checksum does not verify
  bad_option,         // malformed option (length 0/1, running past the header, bad size)
  unsupported,        // well-formed but of a kind we do not handle (hardware type, opcode...)
  malformed,          // any other inconsistency between fields
};

constexpr std::string_view to_string(Error e) {
  switch (e) {
    case Error::truncated:
      return "truncated";
    case Error::bad_version:
      return "bad version";
    case Error::bad_header_length:
      return "bad header length";
    case Error::bad_total_length:
      return "bad total length";
    case Error::bad_checksum:
      return "bad checksum";
    case Error::bad_option:
      return "bad option";
    case Error::unsupported:
      return "unsupported";
    case Error::malformed:
      return "malformed";
  }
  return "unknown";
}

inline constexpr std::size_t kErrorCount = 8;

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(e) {}                 // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // value() on an error is a caller bug, not bad input: abort loudly (STYLE 7).
  const T& value() const& {
    if (!ok()) {
      std::abort();
    }
    return std::get<0>(v_);
  }
  T& value() & {
    if (!ok()) {
      std::abort();
    }
    return std::get<0>(v_);
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }

  Error error() const {
    if (ok()) {
      std::abort();
    }
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

}  // namespace phalanx::wire
