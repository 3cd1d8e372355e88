// SEGMENT ARRIVES (RFC 9293 §3.10.7): the numbered steps for SYN-SENT and for the other states,
// one comment per step, with RFC 7323 (PAWS, timestamps), RFC 5961 (RST/SYN/ACK validation) and
// RFC 2018 (SACK) where they hook in.
#include <algorithm>
#include <chrono>

#include "tcp/connection.hpp"
#include "tcp/isn.hpp"

namespace phalanx::tcp {

namespace {

using namespace wire::tcpflag;

std::uint32_t segment_length(const wire::TcpRepr& seg) {
  return static_cast<std::uint32_t>(seg.payload.size() + (seg.has(kSyn) ? 1 : 0) +
                                    (seg.has(kFin) ? 1 : 0));
}

// RFC 7323 §5.5: ts_recent older than 24 days is invalid (the peer's clock may have wrapped).
constexpr Duration kPawsIdle = std::chrono::hours(24 * 24);

}  // namespace

void Connection::on_segment(Time now, const wire::TcpRepr& seg) {
  ++counters_.segments_in;
  if (tcb_.state == State::closed || tcb_.state == State::listen) {
    return;  // the stack answers for closed ports with reset_for()
  }
  if (tcb_.state == State::syn_sent) {
    on_segment_syn_sent(now, seg);
    return;
  }
  const SeqNum seq{seg.seq};
  const std::uint32_t seg_len = segment_length(seg);
  last_input_ = now;
  keepalive_probes_ = 0;
  restart_keepalive(now);

  // RFC 7323 §5.3 R1: PAWS, before the sequence number check. An RST is not subject to PAWS.
  if (ts_on() && seg.options.timestamps && !seg.has(kRst) && now - tcb_.ts_recent_age < kPawsIdle &&
      static_cast<std::int32_t>(seg.options.timestamps->tsval - tcb_.ts_recent) < 0) {
    ++counters_.drop_paws;
    ack_now_ = true;
    return;
  }

  // first, check the sequence number
  if (!acceptable(seg, seg_len)) {
    if (seg.has(kRst)) {
      ++counters_.drop_rst_invalid;  // RFC 5961 §3.2: out of window, drop silently
      return;
    }
    ++counters_.drop_unacceptable;
    ack_now_ = true;
    if (tcb_.state == State::time_wait && seg.has(kFin)) {
      // The only thing that can arrive in TIME-WAIT: a retransmitted FIN. Acknowledge it and
      // restart the 2 MSL timeout.
      timers_.time_wait = now + config_.time_wait;
    }
    return;
  }
  // RFC 7323 §4.3: remember the timestamp of a segment covering our last ACK.
  if (ts_on() && seg.options.timestamps &&
      static_cast<std::int32_t>(seg.options.timestamps->tsval - tcb_.ts_recent) >= 0 &&
      seq <= tcb_.last_ack_sent) {
    tcb_.ts_recent = seg.options.timestamps->tsval;
    tcb_.ts_recent_age = now;
  }

  // second, check the RST bit (RFC 5961 §3.2: only an exact match resets; anything else in the
  // window earns a challenge ACK)
  if (seg.has(kRst)) {
    if (seq != tcb_.rcv_nxt) {
      challenge_ack(now);
      return;
    }
    if (tcb_.state == State::time_wait) {
      return;  // RFC 1337: TIME-WAIT ignores RSTs (no assassination)
    }
    // SYN-RECEIVED from a passive open would return to LISTEN; the listener is the stack's and
    // still listens, so this connection just goes away.
    close(CloseReason::reset);
    return;
  }

  // third, check security (no IP security compartments here)

  // fourth, check the SYN bit (RFC 5961 §4.2: a SYN in a synchronized state, in the window or
  // not, gets a challenge ACK; RFC 9293 adopts this)
  if (seg.has(kSyn)) {
    if (tcb_.state == State::syn_received && seq == tcb_.irs) {
      ack_now_ = true;  // a retransmitted SYN: the SYN-ACK goes out again
      return;
    }
    challenge_ack(now);
    return;
  }

  // fifth, check the ACK field
  if (!seg.has(kAck)) {
    ++counters_.drop_no_ack;
    return;
  }
  // RFC 5961 §5.2: acceptable only if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT (snd_max).
  const SeqNum ack{seg.ack};
  if (tcb_.state == State::syn_received) {
    if (!(tcb_.snd_una < ack && ack <= tcb_.snd_max)) {
      ++counters_.drop_bad_ack;
      reply_rst_ = reset_for(seg);
      return;
    }
    // The handshake completes: continue in ESTABLISHED.
    tcb_.snd_wnd = static_cast<std::uint32_t>(seg.window) << tcb_.snd_scale;
    tcb_.max_sndwnd = std::max(tcb_.max_sndwnd, tcb_.snd_wnd);
    tcb_.snd_wl1 = seq;
    tcb_.snd_wl2 = ack;
    set_state(State::established);
    if (tcb_.fin_queued) {
      set_state(State::fin_wait_1);
    }
  }
  // After restore(): the old owner may have sent bytes beyond the snd_nxt it replicated, up to
  // its send limit; an ACK of them is taken as sent and acknowledged (see restore()), never past
  // a FIN we queued.
  if (ack_slack_end_ && tcb_.snd_max < ack && ack <= *ack_slack_end_ &&
      !(tcb_.fin_queued && fin_seq_ < ack)) {
    ++counters_.acks_beyond_restore;
    tcb_.snd_max = ack;
  }
  if (ack_slack_end_ && *ack_slack_end_ <= tcb_.snd_max) {
    ack_slack_end_.reset();
  }
  if (tcb_.snd_max < ack || ack < tcb_.snd_una - std::max<std::uint32_t>(tcb_.max_sndwnd, 1)) {
    ++counters_.drop_bad_ack;
    ack_now_ = true;
    return;
  }
  process_ack(now, seg);
  if (tcb_.state == State::closed) {
    return;
  }

  // sixth, check the URG bit (urgent data is not supported; RFC 6093 advises against its use)

  // seventh, process the segment text
  if (!seg.payload.empty()) {
    switch (tcb_.state) {
      case State::established:
      case State::fin_wait_1:
      case State::fin_wait_2:
        process_data(now, seg, seq, seg.payload);
        break;
      default:
        break;  // the peer's FIN came already: ignore the text
    }
  }

  // eighth, check the FIN bit
  if (seg.has(kFin) && !tcb_.fin_received) {
    const SeqNum fin = seq + static_cast<std::uint32_t>(seg.payload.size());
    if (fin == tcb_.rcv_nxt) {
      process_fin(now);
    } else if (tcb_.rcv_nxt < fin) {
      ooo_fin_ = fin;  // applied when the gap before it fills
    }
  }
}

// RFC 9293 §3.10.7.3, SYN-SENT.
void Connection::on_segment_syn_sent(Time now, const wire::TcpRepr& seg) {
  const SeqNum ack{seg.ack};
  // first, check the ACK bit
  const bool ack_ok = seg.has(kAck) && tcb_.iss < ack && ack <= tcb_.snd_max;
  if (seg.has(kAck) && !ack_ok) {
    ++counters_.drop_bad_ack;
    if (!seg.has(kRst)) {
      reply_rst_ = reset_for(seg);
    }
    return;
  }
  // second, check the RST bit: with an acceptable ACK the connection is refused
  if (seg.has(kRst)) {
    if (ack_ok) {
      close(CloseReason::reset);
    } else {
      ++counters_.drop_rst_invalid;
    }
    return;
  }
  // third, check the security (nothing to check)
  // fourth, check the SYN bit
  if (!seg.has(kSyn)) {
    ++counters_.drop_no_ack;
    return;  // fifth, if neither SYN nor RST: drop
  }
  last_input_ = now;
  tcb_.irs = SeqNum{seg.seq};
  tcb_.rcv_nxt = tcb_.irs + 1;
  tcb_.rcv_adv = tcb_.rcv_nxt;
  tcb_.last_ack_sent = tcb_.rcv_nxt;
  take_peer_options(seg);
  if (ts_on()) {
    tcb_.ts_recent = seg.options.timestamps->tsval;
    tcb_.ts_recent_age = now;
  }
  tcb_.snd_wnd = seg.window;  // never scaled in a SYN (RFC 7323 §2.2)
  tcb_.max_sndwnd = seg.window;
  tcb_.snd_wl1 = tcb_.irs;
  tcb_.snd_wl2 = ack;
  ack_now_ = true;
  if (ack_ok) {
    update_rtt(now, seg, ack);
    tcb_.snd_una = ack;
    tcb_.snd_nxt = seq_max(tcb_.snd_nxt, ack);
    retries_ = 0;
    timers_.retransmit = kNever;
    set_state(State::established);
    restart_keepalive(now);
    if (tcb_.fin_queued) {
      set_state(State::fin_wait_1);
    }
    if (!seg.payload.empty()) {
      process_data(now, seg, tcb_.irs + 1, seg.payload);
    }
    if (seg.has(kFin) &&
        tcb_.irs + 1 + static_cast<std::uint32_t>(seg.payload.size()) == tcb_.rcv_nxt) {
      process_fin(now);
    }
    return;
  }
  // Simultaneous open: SYN-RECEIVED, and our SYN goes out again as a SYN-ACK.
  set_state(State::syn_received);
  tcb_.snd_nxt = tcb_.iss;
  rtt_timing_ = false;
}

// RFC 6191 §2 (RFC 1122 4.2.2.13 without timestamps): what tells a new connection's SYN from an
// old duplicate in TIME-WAIT. The stack asks before on_segment(), which would answer the SYN
// with an ACK of this incarnation (RFC 9293's fourth step, RFC 5961 §4.2).
bool Connection::accepts_new_incarnation(const wire::TcpRepr& syn) const {
  if (tcb_.state != State::time_wait || classify_for_listen(syn) != ListenVerdict::accept) {
    return false;
  }
  const bool seq_newer = tcb_.rcv_nxt < SeqNum{syn.seq};
  // The new incarnation uses timestamps when both sides offer them (accept()).
  const bool ts_next =
      config_.timestamps && !config_.no_options && syn.options.timestamps.has_value();
  if (!ts_on()) {
    // The old incarnation had no timestamps: with them, the new one is safe from its old
    // duplicates (PAWS); without, only a sequence number beyond the old space is.
    return ts_next || seq_newer;
  }
  if (!ts_next) {
    return seq_newer;
  }
  // Timestamps on both: a newer TSval than the last seen, or an equal one with a newer
  // sequence number. An older TSval is an old duplicate, whatever its sequence number.
  const auto age = static_cast<std::int32_t>(syn.options.timestamps->tsval - tcb_.ts_recent);
  return age > 0 || (age == 0 && seq_newer);
}

SeqNum Connection::successor_iss(Time now) const {
  const SeqNum clock = isn(config_.isn_secret, tuple_.local_addr, tuple_.local_port,
                           tuple_.remote_addr, tuple_.remote_port, now);
  const SeqNum beyond = tcb_.snd_max + 0xffff + 2;
  return beyond < clock ? clock : beyond;
}

bool Connection::acceptable(const wire::TcpRepr& seg, std::uint32_t seg_len) const {
  // RFC 9293 §3.10.7.4 table; the window is the space we have, which is at least what we
  // advertised. A segment at rcv_nxt is always accepted so that its ACK and RST are seen even
  // when the window is zero (its text is then trimmed away).
  const SeqNum seq{seg.seq};
  const auto wnd = static_cast<std::uint32_t>(recv_buf_.free());
  const SeqNum end = tcb_.rcv_nxt + wnd;
  if (seq == tcb_.rcv_nxt) {
    return true;
  }
  if (seg_len == 0) {
    return wnd > 0 && seq_in(seq, tcb_.rcv_nxt, end);
  }
  if (wnd == 0) {
    return false;
  }
  return seq_in(seq, tcb_.rcv_nxt, end) || seq_in(seq + seg_len - 1, tcb_.rcv_nxt, end);
}

void Connection::process_ack(Time now, const wire::TcpRepr& seg) {
  const SeqNum seq{seg.seq};
  const SeqNum ack{seg.ack};
  const std::uint32_t new_wnd = static_cast<std::uint32_t>(seg.window) << tcb_.snd_scale;

  // RFC 2018/6675: record the peer's SACK blocks before judging the ACK.
  if (tcb_.sack_permitted && seg.options.sack_count > 0) {
    scoreboard_.add(seg.options.sacks(), ack, tcb_.snd_max);
  }

  if (tcb_.snd_una < ack) {
    // Bytes acknowledged, less the SYN's sequence number (not data for the congestion window).
    const std::uint32_t acked = seq_len(tcb_.snd_una, ack) - (tcb_.snd_una == tcb_.iss ? 1 : 0);
    update_rtt(now, seg, ack);
    // Drop acknowledged bytes from the send buffer (the SYN and FIN hold no buffer bytes).
    const SeqNum first = buf_seq();
    if (first < ack) {
      const std::size_t n = std::min<std::size_t>(send_buf_.size(), seq_len(first, ack));
      if (n > 0) {
        send_buf_.pop(n);
        events_.add(Event::writable);
      }
    }
    tcb_.snd_una = ack;
    if (tcb_.snd_nxt < ack) {
      tcb_.snd_nxt = ack;
    }
    scoreboard_.advance(ack);
    retries_ = 0;
    persist_probes_ = 0;
    on_new_ack(now, acked, ack);
    // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
    timers_.retransmit = tcb_.snd_una == tcb_.snd_max ? kNever : now + rtt_.rto();
  } else if (ack == tcb_.snd_una && seg.payload.empty() && !seg.has(kFin) &&
             tcb_.snd_una != tcb_.snd_max && new_wnd == tcb_.snd_wnd) {
    // RFC 5681 §2: a duplicate ACK.
    on_dup_ack(now);
  }
  // Any ACK answers an outstanding zero-window probe.
  persist_probes_ = 0;

  // Update the send window (RFC 9293: only from a segment newer than the last update).
  if (tcb_.snd_wl1 < seq || (tcb_.snd_wl1 == seq && tcb_.snd_wl2 <= ack)) {
    const bool opened = tcb_.snd_wnd == 0 && new_wnd > 0;
    tcb_.snd_wnd = new_wnd;
    tcb_.snd_wl1 = seq;
    tcb_.snd_wl2 = ack;
    tcb_.max_sndwnd = std::max(tcb_.max_sndwnd, new_wnd);
    if (opened && persist_shift_ > 0) {
      // The window reopened after zero-window probes: resend from snd_una, which covers a
      // probe byte the peer may have refused.
      tcb_.snd_nxt = tcb_.snd_una;
    }
    if (new_wnd > 0) {
      // Leave persist mode: the window is open again.
      timers_.persist = kNever;
      persist_shift_ = 0;
      if (tcb_.snd_una != tcb_.snd_max && timers_.retransmit == kNever) {
        timers_.retransmit = now + rtt_.rto();
      }
    }
  }

  // The state-specific part of the fifth step.
  switch (tcb_.state) {
    case State::fin_wait_1:
      if (fin_acked()) {
        set_state(State::fin_wait_2);
      }
      break;
    case State::closing:
      if (fin_acked()) {
        set_state(State::time_wait);
        timers_.time_wait = now + config_.time_wait;
      }
      break;
    case State::last_ack:
      if (fin_acked()) {
        if (tcb_.last_ack_sent < tcb_.rcv_nxt) {
          // Output commit held the ACK of the peer's FIN, which now waits in CLOSING for it.
          // Both streams are over: TIME-WAIT lifts the limits, sends that ACK and answers the
          // FIN if it comes again (closing here reset it).
          ack_now_ = true;
          set_state(State::time_wait);
          timers_.time_wait = now + config_.time_wait;
        } else {
          close(CloseReason::normal);
        }
      }
      break;
    default:
      break;
  }
}

void Connection::update_rtt(Time now, const wire::TcpRepr& seg, SeqNum ack) {
  // RFC 7323 §4.1: with timestamps, every ACK advancing snd_una gives a sample from TSecr.
  if (ts_on() && seg.options.timestamps && seg.options.timestamps->tsecr != 0) {
    const std::uint32_t ms = ts_now(now) - seg.options.timestamps->tsecr;
    if (ms < 0x7fffffffu) {
      rtt_.sample(std::chrono::milliseconds(ms));
      rtt_.reset_backoff();
    }
    rtt_timing_ = false;
    return;
  }
  // RFC 6298 §3 (Karn): only a segment never retransmitted is timed.
  if (rtt_timing_ && rtt_seq_ < ack) {
    rtt_.sample(now - rtt_start_);
    rtt_.reset_backoff();
    rtt_timing_ = false;
  }
}

void Connection::process_data(Time now, const wire::TcpRepr& seg, SeqNum seq, wire::Bytes data) {
  // Trim what we already have.
  if (seq < tcb_.rcv_nxt) {
    const std::uint32_t skip = seq_len(seq, tcb_.rcv_nxt);
    if (skip >= data.size()) {
      ack_now_ = true;  // a pure duplicate: ACK so the peer learns where we are
      return;
    }
    data = data.subspan(skip);
    seq = tcb_.rcv_nxt;
  }
  // Trim to the space we have.
  const std::uint32_t offset = seq_len(tcb_.rcv_nxt, seq);
  const std::size_t room = recv_buf_.free();
  if (offset >= room) {
    ack_now_ = true;
    return;
  }
  data = data.first(std::min(data.size(), room - offset));
  tcb_.rcv_mss = std::max<std::uint16_t>(
      tcb_.rcv_mss, static_cast<std::uint16_t>(std::min<std::size_t>(data.size(), config_.mss)));

  if (offset > 0) {
    // Out of order: keep it in the buffer's free space, send a duplicate ACK at once (RFC 5681
    // §4.2) carrying SACK blocks.
    if (ooo_.add(seq, seq + static_cast<std::uint32_t>(data.size()))) {
      recv_buf_.write_at(recv_buf_.size() + offset, data);
    } else {
      ++counters_.drop_ooo_full;
    }
    ack_now_ = true;
    return;
  }
  const bool filled_gap = !ooo_.empty();
  recv_buf_.write_at(recv_buf_.size(), data);
  recv_buf_.commit(data.size());
  tcb_.rcv_nxt += static_cast<std::uint32_t>(data.size());
  const std::uint32_t more = ooo_.take_contiguous(tcb_.rcv_nxt);
  recv_buf_.commit(more);
  tcb_.rcv_nxt += more;
  events_.add(Event::readable);
  if (ooo_fin_ && *ooo_fin_ == tcb_.rcv_nxt && !seg.has(kFin)) {
    ooo_fin_.reset();
    process_fin(now);
  }
  if (filled_gap) {
    ack_now_ = true;  // RFC 5681 §4.2: ACK at once when a gap fills
    return;
  }
  // Delayed ACK: at least every second full-sized segment, else within the timer. A segment
  // merged by receive offload (GRO, a local sender's TSO) counts as the full-sized segments it
  // holds, as Linux counts bytes beyond one rcv_mss.
  unacked_segments_ +=
      static_cast<std::uint32_t>(data.size() / std::max<std::uint16_t>(tcb_.rcv_mss, 1));
  if (unacked_segments_ >= 2) {
    ack_now_ = true;
  } else if (timers_.delayed_ack == kNever) {
    timers_.delayed_ack = now + config_.delayed_ack;
  }
}

void Connection::process_fin(Time now) {
  tcb_.rcv_nxt += 1;
  tcb_.fin_received = true;
  ooo_fin_.reset();
  ack_now_ = true;
  events_.add(Event::peer_fin);
  switch (tcb_.state) {
    case State::syn_received:
    case State::established:
      set_state(State::close_wait);
      break;
    case State::fin_wait_1:
      if (fin_acked()) {
        set_state(State::time_wait);
        timers_.time_wait = now + config_.time_wait;
      } else {
        set_state(State::closing);  // simultaneous close
      }
      break;
    case State::fin_wait_2:
      set_state(State::time_wait);
      timers_.time_wait = now + config_.time_wait;
      break;
    case State::time_wait:
      timers_.time_wait = now + config_.time_wait;
      break;
    default:
      break;
  }
}

void Connection::challenge_ack(Time now) {
  // RFC 5961 §7: at most challenge_ack_limit per challenge_ack_window.
  if (now - challenge_window_start_ >= config_.challenge_ack_window) {
    challenge_window_start_ = now;
    challenge_count_ = 0;
  }
  if (challenge_count_ >= config_.challenge_ack_limit) {
    ++counters_.challenge_acks_limited;
    return;
  }
  ++challenge_count_;
  ++counters_.challenge_acks;
  // RFC 5961 §3.2 and §4.2: the challenge is <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> in every state
  // it applies to, SYN-RECEIVED included; there, ack_now_ would send the SYN-ACK again, which
  // answers a blind RST by restarting the handshake's conversation instead of challenging it.
  if (tcb_.state == State::syn_received) {
    challenge_due_ = true;
  } else {
    ack_now_ = true;
  }
}

}  // namespace phalanx::tcp
