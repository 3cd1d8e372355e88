#include "runtime/error.hpp"

#include <cstring>

namespace phalanx::runtime {

Error errno_error(std::string what, int err) {
  what += ": ";
  what += std::strerror(err);
  return Error{std::move(what)};
}

}  // namespace phalanx::runtime
