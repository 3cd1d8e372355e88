// The one 64-bit mixer of the code base: hash tables and the workset hash all use it.
#pragma once

#include <cstdint>

namespace phalanx::wire {

// The murmur3 64-bit finalizer (fmix64): a bijection whose every output bit depends on every
// input bit, so any slice of the result (low bits for a bucket, top bits for a workset) is usable.
// Key it (x ^ secret) where the input is chosen by remote hosts. Not a generator: the simulator's
// PRNG seeds itself with its own splitmix64 (sim/prng.hpp).
constexpr std::uint64_t fmix64(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

}  // namespace phalanx::wire
