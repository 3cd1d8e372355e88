// Congestion control behind a small interface (RFC 5681): the connection detects loss and runs
// recovery (NewReno/SACK, recovery.cpp); the algorithm only says how cwnd grows on new ACKs and
// shrinks on congestion. Two algorithms: NewReno's AIMD (RFC 5681/6582) and CUBIC (RFC 8312).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "tcp/config.hpp"

namespace phalanx::tcp {

class CongestionControl {
 public:
  virtual ~CongestionControl() = default;
  virtual std::string_view name() const = 0;
  std::uint32_t cwnd() const { return cwnd_; }
  std::uint32_t ssthresh() const { return ssthresh_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }
  void set_mss(std::uint32_t mss) { mss_ = mss; }

  // `acked` new bytes were acknowledged outside loss recovery. `srtt` is 0 without a sample.
  virtual void on_ack(Time now, std::uint32_t acked, Duration srtt) = 0;
  // Loss detected by duplicate ACKs or SACK (RFC 5681 §3.2 step 2): lowers ssthresh from the
  // flight size and sets cwnd = ssthresh. The connection inflates it during NewReno recovery.
  virtual void on_congestion(Time now, std::uint32_t flight) = 0;
  // Retransmission timeout (RFC 5681 §3.1 eq. 4): ssthresh from the flight, cwnd = 1 MSS.
  virtual void on_rto(Time now, std::uint32_t flight) = 0;
  // Window inflation and deflation while recovering (RFC 6582 §3.2).
  void set_cwnd(std::uint32_t w) { cwnd_ = w; }

 protected:
  CongestionControl(std::uint32_t mss, std::uint32_t initial_segments)
      : cwnd_(mss * initial_segments), mss_(mss) {}
  std::uint32_t cwnd_;
  std::uint32_t ssthresh_ = 0x7fffffff;  // "arbitrarily high" (RFC 5681 §3.1)
  std::uint32_t mss_;
};

std::unique_ptr<CongestionControl> make_congestion(CongestionAlgorithm algorithm, std::uint32_t mss,
                                                   std::uint32_t initial_segments);

}  // namespace phalanx::tcp
