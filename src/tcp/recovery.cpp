// Loss recovery: duplicate ACKs, fast retransmit and fast recovery. Without SACK this is
// NewReno (RFC 6582): inflate cwnd per duplicate ACK, retransmit the next hole on each partial
// ACK. With SACK it follows RFC 6675 in a simplified form: pipe = bytes in flight not SACKed and
// not presumed lost (every hole below the highest SACKed byte is presumed lost), and holes are
// retransmitted in order while pipe < cwnd.
#include <algorithm>

#include "tcp/connection.hpp"

namespace phalanx::tcp {

namespace {
constexpr std::uint32_t kDupThresh = 3;  // RFC 5681 §3.2
}

std::uint32_t Connection::pipe() const {
  if (!tcb_.sack_permitted) {
    return seq_len(tcb_.snd_una, tcb_.snd_nxt);
  }
  std::uint32_t p = scoreboard_.unsacked_between(tcb_.snd_una, tcb_.snd_nxt);
  if (in_recovery_) {
    const SeqNum high = seq_min(scoreboard_.highest(tcb_.snd_una), tcb_.snd_nxt);
    const SeqNum from = seq_max(high_rxt_, tcb_.snd_una);
    p -= std::min(p, scoreboard_.unsacked_between(from, high));
  }
  return p;
}

std::uint32_t Connection::flight_size() const {
  return seq_len(tcb_.snd_una, tcb_.snd_max);
}

void Connection::on_dup_ack(Time now) {
  ++dup_acks_;
  ++counters_.dup_acks;
  const std::uint32_t mss = effective_mss();
  if (in_recovery_) {
    if (!tcb_.sack_permitted) {
      cc_->set_cwnd(cc_->cwnd() + mss);  // RFC 6582 §3.2 step 3: inflate
    }
    return;
  }
  const bool sack_says_lost = tcb_.sack_permitted && scoreboard_.sacked_bytes() >= kDupThresh * mss;
  if (dup_acks_ < kDupThresh && !sack_says_lost) {
    return;
  }
  // RFC 6582 §3.2 step 2: a new recovery only once the cumulative ACK passed `recover`, so one
  // window of losses halves cwnd once.
  if (tcb_.snd_una < recover_) {
    return;
  }
  in_recovery_ = true;
  recover_ = tcb_.snd_max;
  high_rxt_ = tcb_.snd_una;
  cc_->on_congestion(now, flight_size());
  if (!tcb_.sack_permitted) {
    cc_->set_cwnd(cc_->ssthresh() + kDupThresh * mss);
  }
  rexmit_una_ = true;
  ++counters_.fast_retransmits;
}

void Connection::on_new_ack(Time now, std::uint32_t acked, SeqNum ack) {
  const std::uint32_t mss = effective_mss();
  dup_acks_ = 0;
  if (!in_recovery_) {
    cc_->on_ack(now, acked, rtt_.srtt());
    return;
  }
  if (recover_ <= ack) {
    // Full acknowledgment (RFC 6582 §3.2 step 5): deflate to ssthresh, bounded by the flight.
    in_recovery_ = false;
    cc_->set_cwnd(std::min(cc_->ssthresh(), std::max(flight_size(), mss) + mss));
    return;
  }
  // Partial acknowledgment: the next hole was lost too.
  high_rxt_ = seq_max(high_rxt_, ack);
  if (!tcb_.sack_permitted) {
    rexmit_una_ = true;
    const std::uint32_t w = cc_->cwnd();
    cc_->set_cwnd(std::max(w - std::min(w, acked) + (acked >= mss ? mss : 0), mss));
  }
}

std::optional<wire::TcpRepr> Connection::next_recovery_segment(Time now) {
  const SeqNum end = data_end();
  if (rexmit_una_) {
    rexmit_una_ = false;
    const SeqNum seq = tcb_.snd_una;
    if (seq < tcb_.snd_max) {
      SeqNum stop = seq_min(end, tcb_.snd_max);
      if (tcb_.sack_permitted) {
        stop = scoreboard_.next_sacked(seq, stop);
      }
      const std::uint32_t len = seq < stop ? seq_len(seq, stop) : 0;
      const bool fin = tcb_.fin_queued && seq + len == fin_seq_ && fin_seq_ < tcb_.snd_max;
      if (len > 0 || fin) {
        auto out =
            make_segment(now, seq, wire::tcpflag::kAck | (fin ? wire::tcpflag::kFin : 0u), len);
        if (out) {
          const SeqNum sent_end = seq + static_cast<std::uint32_t>(out->payload.size());
          high_rxt_ = seq_max(high_rxt_, sent_end);
          ++counters_.retransmits;
          if (rtt_timing_ && seq <= rtt_seq_) {
            rtt_timing_ = false;  // Karn
          }
        }
        return out;
      }
    }
  }
  if (!in_recovery_ || !tcb_.sack_permitted) {
    return std::nullopt;
  }
  // RFC 6675 §5 NextSeg rule 1: the first unSACKed byte above HighRxt below the highest SACK.
  const SeqNum high = seq_min(scoreboard_.highest(tcb_.snd_una), tcb_.snd_nxt);
  const SeqNum hole = scoreboard_.next_unsacked(seq_max(high_rxt_, tcb_.snd_una));
  if (!(hole < high) || pipe() >= cc_->cwnd()) {
    return std::nullopt;
  }
  const SeqNum stop = scoreboard_.next_sacked(hole, seq_min(end, high));
  if (!(hole < stop)) {
    return std::nullopt;
  }
  auto out = make_segment(now, hole, wire::tcpflag::kAck, seq_len(hole, stop));
  if (out) {
    high_rxt_ = hole + static_cast<std::uint32_t>(out->payload.size());
    ++counters_.retransmits;
    if (rtt_timing_ && hole <= rtt_seq_) {
      rtt_timing_ = false;
    }
  }
  return out;
}

}  // namespace phalanx::tcp
