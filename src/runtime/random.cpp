#include "runtime/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace phalanx::runtime {

Status fill_random(std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_error("getrandom");
    }
    done += static_cast<std::size_t>(n);
  }
  return Ok{};
}

Result<std::uint64_t> random_u64() {
  std::uint64_t v = 0;
  if (auto s = fill_random(std::as_writable_bytes(std::span(&v, 1))); !s) {
    return s.error();
  }
  return v;
}

}  // namespace phalanx::runtime
