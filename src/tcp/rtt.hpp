// RFC 6298 round-trip time estimation and retransmission timeout, with exponential backoff.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "tcp/config.hpp"

namespace phalanx::tcp {

class RttEstimator {
 public:
  RttEstimator() = default;
  RttEstimator(Duration initial, Duration min, Duration max)
      : rto_(initial), initial_(initial), min_(min), max_(max) {}

  // One RTT measurement (RFC 6298 §2.2, §2.3; alpha = 1/8, beta = 1/4, K = 4, G = 1 ms).
  void sample(Duration r) {
    r = std::max(r, Duration{0});
    if (!has_sample_) {
      srtt_ = r;
      rttvar_ = r / 2;
      has_sample_ = true;
    } else {
      const Duration err = srtt_ > r ? srtt_ - r : r - srtt_;
      rttvar_ = (rttvar_ * 3 + err) / 4;
      srtt_ = (srtt_ * 7 + r) / 8;
    }
    const Duration g = std::chrono::milliseconds(1);
    rto_ = std::clamp(srtt_ + std::max(g, 4 * rttvar_), min_, max_);
  }

  // The current timeout including backoff (RFC 6298 §5.5), at most the configured maximum.
  Duration rto() const {
    Duration r = rto_;
    for (std::uint32_t i = 0; i < shift_ && r < max_; ++i) {
      r *= 2;
    }
    return std::min(r, max_);
  }
  void backoff() { ++shift_; }
  void reset_backoff() { shift_ = 0; }
  std::uint32_t backoff_count() const { return shift_; }

  bool has_sample() const { return has_sample_; }
  Duration srtt() const { return srtt_; }
  Duration rttvar() const { return rttvar_; }

 private:
  Duration srtt_{0};
  Duration rttvar_{0};
  Duration rto_ = std::chrono::seconds(1);
  Duration initial_ = std::chrono::seconds(1);
  Duration min_ = std::chrono::milliseconds(200);
  Duration max_ = std::chrono::seconds(60);
  std::uint32_t shift_ = 0;
  bool has_sample_ = false;
};

}  // namespace phalanx::tcp
