// Character classes and ASCII helpers shared by the HTTP parser and the target resolver
// (RFC 9110 §5.6.2 tokens, §5.5 field values; RFC 3986 §2.1 percent-encoding). ASCII only, no
// locale: HTTP's case-insensitivity is ASCII case-insensitivity.
#pragma once

#include <cstddef>
#include <string_view>

namespace phalanx::apps::http::chars {

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) {
      return false;
    }
  }
  return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The value of a hex digit, or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace phalanx::apps::http::chars
