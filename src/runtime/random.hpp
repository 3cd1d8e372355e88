// Random draws from the kernel (getrandom), for secrets and incarnation numbers. The cores take
// their random values as arguments; only the driver draws them.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/error.hpp"

namespace phalanx::runtime {

// Fills `out` from getrandom(2), blocking only until the kernel's pool is first initialised.
// Fails with the system's reason (e.g. ENOSYS under an old seccomp profile).
Status fill_random(std::span<std::byte> out);

// One random 64-bit value; fails as fill_random() does.
Result<std::uint64_t> random_u64();

}  // namespace phalanx::runtime
