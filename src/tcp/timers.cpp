// Timers: retransmission (RFC 6298 §5), zero-window persist (RFC 9293 §3.8.6.1), delayed ACK
// (RFC 1122 4.2.3.2), keepalive (RFC 1122 4.2.3.6) and TIME-WAIT (RFC 9293 §3.4.2). Each is
// one deadline in Timers; next_deadline() is their minimum.
#include <algorithm>

#include "tcp/connection.hpp"

namespace phalanx::tcp {

void Connection::on_timer(Time now) {
  if (timers_.retransmit <= now) {
    on_retransmit_timeout(now);
  }
  if (timers_.persist <= now) {
    on_persist_timeout(now);
  }
  if (timers_.delayed_ack <= now) {
    timers_.delayed_ack = kNever;
    ack_now_ = true;
  }
  if (timers_.keepalive <= now) {
    on_keepalive_timeout(now);
  }
  if (timers_.time_wait <= now) {
    timers_.time_wait = kNever;
    close(CloseReason::normal);
  }
}

void Connection::on_retransmit_timeout(Time now) {
  timers_.retransmit = kNever;
  if (tcb_.snd_una == tcb_.snd_max || tcb_.state == State::closed) {
    return;
  }
  ++counters_.rto_expiries;
  ++retries_;
  const bool handshake = tcb_.state == State::syn_sent || tcb_.state == State::syn_received;
  if (retries_ > (handshake ? config_.syn_retries : config_.data_retries)) {
    close(CloseReason::timeout);
    return;
  }
  // RFC 6298 §5.5: back off; §3 (Karn): no RTT sample from what is retransmitted.
  rtt_.backoff();
  rtt_timing_ = false;
  if (handshake) {
    tcb_.snd_nxt = tcb_.iss;  // the SYN (or SYN-ACK) goes out again
    return;
  }
  cc_->on_rto(now, flight_size());
  in_recovery_ = false;
  rexmit_una_ = false;
  dup_acks_ = 0;
  recover_ = tcb_.snd_max;  // RFC 6582 §4: no fast retransmit for what was sent before
  // RFC 2018 §8: the receiver may renege; after a second timeout forget the SACK information.
  if (rtt_.backoff_count() > 1) {
    scoreboard_.clear();
  }
  tcb_.snd_nxt = tcb_.snd_una;  // go back N; SACKed ranges are skipped when resending
  high_rxt_ = tcb_.snd_una;
}

void Connection::on_persist_timeout(Time now) {
  timers_.persist = kNever;
  if (!is_synchronized(tcb_.state) || tcb_.state == State::time_wait) {
    return;
  }
  if (++persist_probes_ > config_.zero_window_probe_limit) {
    close(CloseReason::timeout);
    return;
  }
  persist_probe_due_ = true;
  ++persist_shift_;
  Duration next = rtt_.rto();
  for (std::uint32_t i = 0; i < persist_shift_ && next < config_.persist_max; ++i) {
    next *= 2;
  }
  timers_.persist = now + std::min(next, config_.persist_max);
}

void Connection::restart_keepalive(Time now) {
  const bool idle_state = tcb_.state == State::established || tcb_.state == State::close_wait ||
                          tcb_.state == State::fin_wait_2;
  timers_.keepalive = keepalive_ && idle_state ? now + config_.keepalive_idle : kNever;
}

void Connection::on_keepalive_timeout(Time now) {
  timers_.keepalive = kNever;
  if (!keepalive_) {
    return;
  }
  if (tcb_.snd_una != tcb_.snd_max) {
    restart_keepalive(now);  // data in flight: the retransmission timer watches the peer
    return;
  }
  if (keepalive_probes_ >= config_.keepalive_count) {
    close(CloseReason::timeout);
    return;
  }
  ++keepalive_probes_;
  keepalive_probe_due_ = true;
  timers_.keepalive = now + config_.keepalive_interval;
}

}  // namespace phalanx::tcp
