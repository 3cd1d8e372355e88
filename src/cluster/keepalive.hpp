// The adaptive keepalive of DESIGN §4 (spec "Failover Handling").
//
// Per follower the master estimates the loss from the gaps in the FollowerKeepalive sequence:
//   S = seq - last_seq - 1            (keepalives missing between two consecutive receptions)
//   P <- P * 127/128 + S / 128        (exponential smoothing)
// and picks the number n of keepalives per failure interval T as the smallest n in 2..20 with
// n * P^n < 1/3600: n consecutive losses (a false "dead") then happen less than once an hour.
// The failure interval itself never changes; only the rate does (period T/n).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace phalanx::cluster {

inline constexpr int kMinKeepaliveN = 2;
inline constexpr int kMaxKeepaliveN = 20;
inline constexpr double kFalseAlarmRate = 1.0 / 3600.0;
// The estimate a new follower starts with. Starting at 0 would mean n = 2 while the estimator
// has seen almost nothing: on a lossy link a new member would then be declared dead before its
// loss had been measured (seen in the lab at 5% loss each way). 5% gives n = 4 at first; on a
// clean link the estimate decays to the n = 2 region within about 200 keepalives (~20 s).
inline constexpr double kInitialLossEstimate = 0.05;

// The smallest n in 2..20 with n * p^n < 1/3600; 20 when none is.
constexpr int keepalive_n_for_loss(double p) {
  for (int n = kMinKeepaliveN; n <= kMaxKeepaliveN; ++n) {
    double pn = 1.0;
    for (int i = 0; i < n; ++i) {
      pn *= p;
    }
    if (n * pn < kFalseAlarmRate) {
      return n;
    }
  }
  return kMaxKeepaliveN;
}

// The master's loss estimate for one follower, fed with the sequence numbers it receives.
class LossEstimator {
 public:
  // Feeds one received sequence number. A duplicate or an older (reordered) number says nothing
  // about loss: it is ignored and false is returned, so S never goes negative. A gap larger than
  // kMaxKeepaliveN counts as kMaxKeepaliveN (the follower would have been declared dead anyway),
  // and P stays within [0, 1].
  bool on_sequence(std::uint32_t seq) {
    if (!last_) {
      last_ = seq;
      return true;
    }
    const std::uint32_t diff = seq - *last_;  // serial-number arithmetic: wraps
    if (diff == 0 || diff >= 0x80000000u) {
      return false;
    }
    const std::uint32_t missing = std::min<std::uint32_t>(diff - 1, kMaxKeepaliveN);
    p_ = std::min(1.0, p_ * 127.0 / 128.0 + static_cast<double>(missing) / 128.0);
    last_ = seq;
    return true;
  }

  double p() const { return p_; }
  int n() const { return keepalive_n_for_loss(p_); }

 private:
  std::optional<std::uint32_t> last_;
  double p_ = kInitialLossEstimate;
};

}  // namespace phalanx::cluster
