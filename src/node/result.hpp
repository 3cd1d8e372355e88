// Errors of building a node, and of the drivers around it: a failing environment or a bad
// config is an error value with a message a human can act on (STYLE 7). The data path counts
// its drops instead; these errors are for opening, configuring and starting things.
#pragma once

#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace phalanx::node {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // value() on an error, or error() on a value, is a caller bug: abort loudly (STYLE 7).
  T& value() & { return std::get<0>(checked(true)); }
  const T& value() const& { return std::get<0>(checked(true)); }
  T&& value() && { return std::get<0>(std::move(checked(true))); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(checked(false)); }

 private:
  std::variant<T, Error>& checked(bool want_value) {
    if (ok() != want_value) {
      std::abort();
    }
    return v_;
  }
  const std::variant<T, Error>& checked(bool want_value) const {
    if (ok() != want_value) {
      std::abort();
    }
    return v_;
  }

  std::variant<T, Error> v_;
};

// Success without a value.
struct Ok {};
using Status = Result<Ok>;

}  // namespace phalanx::node
