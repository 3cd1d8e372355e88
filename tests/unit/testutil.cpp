#include "testutil.hpp"

#include <cstdio>
#include <cstdlib>

namespace phalanx::test {

namespace {

int nibble(char c) {
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

}  // namespace

std::vector<std::byte> hex(std::string_view text) {
  std::vector<std::byte> out;
  int high = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == ':') {
      continue;
    }
    int n = nibble(c);
    if (n < 0) {
      std::fprintf(stderr, "bad hex digit '%c' in test literal\n", c);
      std::abort();
    }
    if (high < 0) {
      high = n;
    } else {
      out.push_back(std::byte(high << 4 | n));
      high = -1;
    }
  }
  if (high >= 0) {
    std::fprintf(stderr, "odd number of hex digits in test literal\n");
    std::abort();
  }
  return out;
}

}  // namespace phalanx::test
