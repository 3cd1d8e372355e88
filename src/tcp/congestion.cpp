#include "tcp/congestion.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace phalanx::tcp {

namespace {

// RFC 5681: slow start grows by at most one MSS per ACK (RFC 3465 with L = 1 would allow 2;
// we keep the conservative limit); congestion avoidance by one MSS per cwnd of acked bytes.
class NewReno final : public CongestionControl {
 public:
  NewReno(std::uint32_t mss, std::uint32_t initial) : CongestionControl(mss, initial) {}
  std::string_view name() const override { return "newreno"; }

  void on_ack(Time, std::uint32_t acked, Duration) override {
    if (in_slow_start()) {
      cwnd_ += std::min(acked, mss_);
      return;
    }
    bytes_acked_ += acked;
    if (bytes_acked_ >= cwnd_) {
      bytes_acked_ -= cwnd_;
      cwnd_ += mss_;
    }
  }
  void on_congestion(Time, std::uint32_t flight) override {
    ssthresh_ = std::max(flight / 2, 2 * mss_);  // RFC 5681 eq. (4)
    cwnd_ = ssthresh_;
    bytes_acked_ = 0;
  }
  void on_rto(Time, std::uint32_t flight) override {
    ssthresh_ = std::max(flight / 2, 2 * mss_);
    cwnd_ = mss_;  // loss window (RFC 5681 §3.1)
    bytes_acked_ = 0;
  }

 private:
  std::uint32_t bytes_acked_ = 0;
};

// RFC 8312 CUBIC, in units of segments: W(t) = C (t - K)^3 + W_max with C = 0.4, beta = 0.7,
// fast convergence, and the TCP-friendly region (§4.2).
class Cubic final : public CongestionControl {
 public:
  Cubic(std::uint32_t mss, std::uint32_t initial) : CongestionControl(mss, initial) {}
  std::string_view name() const override { return "cubic"; }

  void on_ack(Time now, std::uint32_t acked, Duration srtt) override {
    if (in_slow_start()) {
      cwnd_ += std::min(acked, mss_);
      return;
    }
    const double seg = static_cast<double>(mss_);
    const double cwnd_seg = cwnd_ / seg;
    if (!epoch_started_) {
      epoch_started_ = true;
      epoch_start_ = now;
      if (w_max_ < cwnd_seg) {
        k_ = 0;
        w_max_ = cwnd_seg;
      } else {
        k_ = std::cbrt(w_max_ * (1 - kBeta) / kC);
      }
      w_est_ = cwnd_seg;
    }
    const double t = std::chrono::duration<double>(now - epoch_start_ + srtt).count();
    const double target = kC * std::pow(t - k_, 3) + w_max_;
    const double acked_seg = acked / seg;
    w_est_ += 3 * (1 - kBeta) / (1 + kBeta) * acked_seg / cwnd_seg;
    double next = cwnd_seg;
    if (target < w_est_) {
      next = w_est_;  // TCP-friendly region
    } else if (target > cwnd_seg) {
      next = cwnd_seg + std::min(target - cwnd_seg, cwnd_seg / 2) / cwnd_seg * acked_seg;
    }
    cwnd_ = std::max(cwnd_, static_cast<std::uint32_t>(next * seg));
  }
  void on_congestion(Time, std::uint32_t) override {
    reduce();
    cwnd_ = ssthresh_;
  }
  void on_rto(Time, std::uint32_t) override {
    reduce();
    cwnd_ = mss_;
  }

 private:
  static constexpr double kC = 0.4;
  static constexpr double kBeta = 0.7;

  void reduce() {
    const double cwnd_seg = static_cast<double>(cwnd_) / mss_;
    // Fast convergence (§4.6): release bandwidth when W_max keeps shrinking.
    w_max_ = cwnd_seg < w_last_max_ ? cwnd_seg * (1 + kBeta) / 2 : cwnd_seg;
    w_last_max_ = cwnd_seg;
    ssthresh_ = std::max(static_cast<std::uint32_t>(cwnd_ * kBeta), 2 * mss_);
    epoch_started_ = false;
  }

  bool epoch_started_ = false;
  Time epoch_start_{0};
  double w_max_ = 0;
  double w_last_max_ = 0;
  double k_ = 0;
  double w_est_ = 0;
};

}  // namespace

std::unique_ptr<CongestionControl> make_congestion(CongestionAlgorithm algorithm, std::uint32_t mss,
                                                   std::uint32_t initial_segments) {
  switch (algorithm) {
    case CongestionAlgorithm::new_reno:
      return std::make_unique<NewReno>(mss, initial_segments);
    case CongestionAlgorithm::cubic:
      return std::make_unique<Cubic>(mss, initial_segments);
  }
  return std::make_unique<NewReno>(mss, initial_segments);
}

}  // namespace phalanx::tcp
