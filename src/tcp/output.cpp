// Segment output: what poll_transmit() sends next, in priority order (resets, SYN, loss
// recovery, probes, new data and FIN, ACKs), the options each segment carries, the window we
// advertise (receiver SWS avoidance, RFC 9293 §3.8.6.2.2), Nagle (RFC 1122 4.2.3.4) and sender
// SWS avoidance (RFC 9293 §3.8.6.2.1).
#include <algorithm>

#include "tcp/connection.hpp"

namespace phalanx::tcp {

namespace {
using namespace wire::tcpflag;
constexpr std::size_t kTimestampOptionBytes = 12;  // NOP NOP TS, as Linux lays it out
}  // namespace

std::uint16_t Connection::effective_mss() const {
  const std::size_t opts = ts_on() ? kTimestampOptionBytes : 0;
  return static_cast<std::uint16_t>(std::max<std::size_t>(tcb_.snd_mss - opts, 1));
}

std::uint32_t Connection::window_to_advertise() const {
  const auto free = static_cast<std::uint32_t>(recv_buf_.free());
  const std::uint32_t max_wnd = std::uint32_t{0xffff} << tcb_.rcv_scale;
  // Round down to what the scaled 16-bit field can say.
  std::uint32_t wnd = std::min(free, max_wnd);
  wnd = (wnd >> tcb_.rcv_scale) << tcb_.rcv_scale;
  // Receiver SWS avoidance: move the right edge only by min(buffer / 2, MSS) or more, and never
  // move it left (shrinking the window is discouraged by RFC 9293 §3.8.6.2.2).
  if (tcb_.rcv_adv < tcb_.rcv_nxt) {
    return wnd;  // the peer filled past our edge (we had the room): start afresh
  }
  const SeqNum right = tcb_.rcv_nxt + wnd;
  const std::uint32_t step =
      std::min<std::uint32_t>(static_cast<std::uint32_t>(recv_buf_.capacity() / 2), tcb_.rcv_mss);
  if (right <= tcb_.rcv_adv || seq_len(tcb_.rcv_adv, right) < step) {
    return seq_len(tcb_.rcv_nxt, tcb_.rcv_adv);
  }
  return wnd;
}

std::optional<wire::TcpRepr> Connection::make_segment(Time now, SeqNum seq, std::uint8_t flags,
                                                      std::size_t max_payload) {
  wire::TcpRepr r;
  r.src_port = tuple_.local_port;
  r.dst_port = tuple_.remote_port;
  r.seq = seq.raw();
  r.flags = flags;
  const bool syn = (flags & kSyn) != 0;

  // Options.
  if (syn) {
    if (!tcb_.no_options) {
      r.options.mss = config_.mss;
      if (tcb_.ws_requested) {
        r.options.window_scale = tcb_.rcv_scale;
      }
      r.options.sack_permitted = tcb_.sack_requested;
      if (tcb_.ts_requested) {
        const std::uint32_t ecr = (flags & kAck) != 0 && tcb_.ts_received ? tcb_.ts_recent : 0;
        r.options.timestamps =
            wire::TcpTimestamps{tsval_with_low_bits(ts_now(now), syn_ts_bits_, syn_ts_width_), ecr};
      }
    }
  } else if ((flags & kRst) == 0) {
    if (ts_on()) {
      r.options.timestamps = wire::TcpTimestamps{ts_now(now), tcb_.ts_recent};
    }
    if (tcb_.sack_permitted && !ooo_.empty()) {
      // RFC 2018 §3: with timestamps only 3 blocks fit in the 40 option bytes.
      const std::size_t max_blocks = ts_on() ? 3 : wire::TcpOptions::kMaxSackBlocks;
      r.options.sack_count = static_cast<std::uint8_t>(
          ooo_.sack_blocks(std::span(r.options.sack_blocks.data(), max_blocks)));
    }
  }
  if (r.options.timestamps) {
    tcb_.ts_val_last = r.options.timestamps->tsval;
  }

  // Payload: bytes of the send buffer from `seq`, cut at the MSS less this segment's options
  // (or a multiple of it, for offload) and at the ring's wrap point.
  std::size_t pieces = 1;
  if (max_payload > 0 && !syn) {
    const SeqNum first = buf_seq();
    if (first <= seq && seq < data_end()) {
      const std::size_t piece =
          tcb_.snd_mss > r.options.size() ? tcb_.snd_mss - r.options.size() : 1;
      std::size_t cap = piece;
      if (max_payload > piece && config_.max_offload_payload > piece) {
        cap = config_.max_offload_payload / piece * piece;  // for the link to cut (offload)
      }
      r.payload = send_buf_.contiguous(seq_len(first, seq), std::min(max_payload, cap));
      pieces = std::max<std::size_t>(1, (r.payload.size() + piece - 1) / piece);
    }
  }
  const auto len = static_cast<std::uint32_t>(r.payload.size());
  if ((flags & kFin) != 0 && !(tcb_.fin_queued && seq + len == fin_seq_)) {
    r.flags &= static_cast<std::uint8_t>(~kFin);  // cut short: the FIN goes with a later one
  }
  if ((flags & kPsh) != 0 && len < max_payload && !syn) {
    r.flags &= static_cast<std::uint8_t>(~kPsh);  // and the PSH, which marks the data's end
  }

  // The ACK field and the window: rcv_nxt and window_to_advertise(), unless the ack limit holds
  // them back (set_ack_limit()).
  const AckFields fields = syn ? AckFields{tcb_.rcv_nxt, 0, false} : ack_fields();
  if ((flags & kAck) != 0) {
    r.ack = fields.ack.raw();
    tcb_.last_ack_sent = fields.ack;
    ack_now_ = false;
    ack_held_ = fields.held;
    unacked_segments_ = 0;
    timers_.delayed_ack = kNever;
  }
  if (syn) {
    r.window = static_cast<std::uint16_t>(std::min<std::size_t>(recv_buf_.free(), 0xffff));
    tcb_.rcv_wnd = r.window;
    tcb_.rcv_adv = tcb_.rcv_nxt + r.window;
  } else if ((flags & kRst) == 0) {
    r.window = static_cast<std::uint16_t>(fields.window >> tcb_.rcv_scale);
    tcb_.rcv_wnd = static_cast<std::uint32_t>(r.window) << tcb_.rcv_scale;
    const SeqNum right = fields.ack + tcb_.rcv_wnd;
    if (tcb_.rcv_adv < right) {
      tcb_.rcv_adv = right;
    }
  }

  const SeqNum end = seq + len + (syn ? 1 : 0) + ((r.flags & kFin) != 0 ? 1 : 0);
  if (tcb_.snd_max < end) {
    tcb_.snd_max = end;
  }
  counters_.segments_out += pieces;
  return r;
}

std::optional<wire::TcpRepr> Connection::poll_transmit(Time now) {
  if (reply_rst_) {
    const wire::TcpRepr r = *reply_rst_;
    reply_rst_.reset();
    ++counters_.segments_out;
    return r;
  }
  if (rst_pending_) {
    rst_pending_ = false;
    wire::TcpRepr r;
    r.src_port = tuple_.local_port;
    r.dst_port = tuple_.remote_port;
    r.seq = tcb_.snd_max.raw();
    r.ack = tcb_.rcv_nxt.raw();
    r.flags = kRst | kAck;
    ++counters_.segments_out;
    return r;
  }
  switch (tcb_.state) {
    case State::closed:
    case State::listen:
      return std::nullopt;
    case State::syn_sent:
    case State::syn_received: {
      const bool ack = tcb_.state == State::syn_received;
      if (tcb_.snd_nxt == tcb_.iss) {
        auto s = make_segment(now, tcb_.iss, ack ? (kSyn | kAck) : kSyn, 0);
        tcb_.snd_nxt = tcb_.iss + 1;
        if (retries_ == 0 && !rtt_timing_) {
          rtt_timing_ = true;  // a SYN never retransmitted may be timed (RFC 6298 §3)
          rtt_seq_ = tcb_.iss;
          rtt_start_ = now;
        }
        if (timers_.retransmit == kNever) {
          timers_.retransmit = now + rtt_.rto();
        }
        return s;
      }
      if (ack && challenge_due_) {
        // RFC 5961 §3.2/§4.2 in SYN-RECEIVED: a pure ACK at SND.NXT (our SYN's end), not the
        // SYN-ACK; the peer that really lost its state answers it with an exact RST.
        challenge_due_ = false;
        return make_segment(now, tcb_.snd_max, kAck, 0);
      }
      if (ack && ack_now_) {
        return make_segment(now, tcb_.iss, kSyn | kAck, 0);  // answer a retransmitted SYN
      }
      return std::nullopt;
    }
    default:
      break;
  }
  if (auto s = next_recovery_segment(now)) {
    return s;
  }
  if (persist_probe_due_) {
    persist_probe_due_ = false;
    const SeqNum wnd_end = tcb_.snd_una + tcb_.snd_wnd;
    if (tcb_.snd_wnd == 0 || !(tcb_.snd_nxt < wnd_end)) {
      // RFC 9293 §3.8.6.1: a zero-window probe carries one byte of new data. It is not timed
      // by the retransmission timer: the persist timer repeats it.
      if (buf_seq() == tcb_.snd_una && !send_buf_.empty() &&
          (!send_limit_ || tcb_.snd_una < *send_limit_)) {
        auto s = make_segment(now, tcb_.snd_una, kAck, 1);
        tcb_.snd_nxt = seq_max(tcb_.snd_nxt, tcb_.snd_una + 1);
        return s;
      }
    } else {
      // The sender SWS override: send what the small window allows.
      const SeqNum end = seq_min(data_end(), send_limit_.value_or(data_end()));
      if (tcb_.snd_nxt < end) {
        const std::uint32_t len =
            std::min({seq_len(tcb_.snd_nxt, end), seq_len(tcb_.snd_nxt, wnd_end),
                      std::uint32_t{effective_mss()}});
        const SeqNum seq = tcb_.snd_nxt;
        auto s = make_segment(now, seq, kAck | kPsh, len);
        tcb_.snd_nxt = seq + static_cast<std::uint32_t>(s->payload.size());
        if (timers_.retransmit == kNever) {
          timers_.retransmit = now + rtt_.rto();
        }
        timers_.persist = kNever;
        return s;
      }
    }
  }
  if (keepalive_probe_due_) {
    keepalive_probe_due_ = false;
    // RFC 1122 4.2.3.6: SEG.SEQ = SND.NXT - 1, no data; the peer answers with an ACK.
    return make_segment(now, tcb_.snd_una - 1, kAck, 0);
  }
  if (auto s = next_data_segment(now)) {
    return s;
  }
  if (ack_now_) {
    if (ack_limit_) {
      // Output commit: while the limit holds something back, a pure ACK that would repeat the
      // last one (a duplicate ACK to the peer) waits for the limit to move.
      const AckFields f = ack_fields();
      if (f.held && f.ack == tcb_.last_ack_sent && f.ack + f.window <= tcb_.rcv_adv) {
        ack_now_ = false;
        ack_held_ = true;
        ++counters_.acks_held;
        return std::nullopt;
      }
    }
    // A pure ACK carries snd_max, not a rewound snd_nxt (BSD tcp_output): the peer has seen
    // everything below snd_max, and an older sequence number would be unacceptable to it.
    return make_segment(now, tcb_.snd_max, kAck, 0);
  }
  return std::nullopt;
}

Connection::AckFields Connection::ack_fields() const {
  const std::uint32_t wnd = window_to_advertise();
  if (!ack_limit_) {
    return AckFields{tcb_.rcv_nxt, wnd, false};
  }
  // min(rcv_nxt, limit.ack), and the right edge min(wanted, limit.right_edge), as a window from
  // that ACK that the scaled 16-bit field can say (rounded down).
  const SeqNum wanted_right = tcb_.rcv_nxt + wnd;
  const SeqNum ack = seq_min(tcb_.rcv_nxt, ack_limit_->ack);
  const SeqNum right = seq_min(wanted_right, ack_limit_->right_edge);
  std::uint32_t window = ack < right ? seq_len(ack, right) : 0;
  window = std::min(window, std::uint32_t{0xffff} << tcb_.rcv_scale);
  window = (window >> tcb_.rcv_scale) << tcb_.rcv_scale;
  const bool held = ack < tcb_.rcv_nxt || right < wanted_right;
  return AckFields{ack, window, held};
}

void Connection::set_ack_limit(std::optional<AckLimit> limit) {
  ack_limit_ = limit;
  if (ack_held_) {
    // What was kept back goes out at the next poll_transmit() (if the new limit lets it say
    // more; else it waits again).
    ack_held_ = false;
    ack_now_ = true;
  }
}

void Connection::set_send_limit(std::optional<SeqNum> limit) {
  send_limit_ = limit;
}

// The limit bounds the data; our FIN may sit on it. A new owner that took over knows where the
// data ends from the application, which finishes the stream there too; the peer's ACK of a
// FIN it never saw is one beyond its slack and is answered as an ACK of unsent data.
bool Connection::fin_allowed(SeqNum fin) const {
  return !send_limit_ || fin <= *send_limit_;
}

AckLimit Connection::ack_wanted() const {
  return AckLimit{tcb_.rcv_nxt, tcb_.rcv_nxt + window_to_advertise()};
}

std::optional<wire::TcpRepr> Connection::next_data_segment(Time now) {
  switch (tcb_.state) {
    case State::established:
    case State::close_wait:
    case State::fin_wait_1:
    case State::closing:
    case State::last_ack:
      break;
    default:
      return std::nullopt;
  }
  SeqNum seq = tcb_.snd_nxt;
  if (tcb_.sack_permitted && seq < tcb_.snd_max) {
    seq = scoreboard_.next_unsacked(seq);  // go-back-N skips what the peer holds
    tcb_.snd_nxt = seq;
  }
  const SeqNum end = data_end();
  const bool fin_pending = tcb_.fin_queued && seq <= fin_seq_;
  const std::uint32_t avail = seq < end ? seq_len(seq, end) : 0;
  SeqNum wnd_end = tcb_.snd_una + tcb_.snd_wnd;
  // The send limit (set_send_limit) narrows the peer's window; it is no zero window to probe.
  const bool commit_limited = send_limit_ && *send_limit_ < wnd_end;
  if (commit_limited) {
    wnd_end = *send_limit_;
  }
  const std::uint32_t usable = seq < wnd_end ? seq_len(seq, wnd_end) : 0;
  const std::uint32_t flight = pipe();
  const std::uint32_t cwnd_room = cc_->cwnd() > flight ? cc_->cwnd() - flight : 0;
  const std::uint32_t mss = effective_mss();
  const bool is_new = tcb_.snd_max <= seq;
  // With offload, new data goes in one segment of whole MSS pieces (the tail may be short).
  const std::uint32_t burst =
      is_new && config_.max_offload_payload > mss ? config_.max_offload_payload / mss * mss : mss;
  std::uint32_t len = std::min({avail, burst, usable, cwnd_room});

  auto arm_persist = [&] {
    if (timers_.retransmit == kNever && timers_.persist == kNever) {
      timers_.persist = now + std::min(rtt_.rto(), config_.persist_max);
    }
  };
  if (len == 0) {
    if (fin_pending && avail == 0 && seq == fin_seq_ && fin_allowed(seq)) {
      auto s = make_segment(now, seq, kAck | kFin, 0);
      tcb_.snd_nxt = seq + 1;
      if (!is_new) {
        ++counters_.retransmits;
      }
      arm_retransmit(now);
      return s;
    }
    if (avail > 0 && usable == 0 && !commit_limited) {
      arm_persist();  // zero window: probe later
    }
    return std::nullopt;
  }
  if (len < mss && len < avail) {
    // Sender SWS avoidance: a runt only when it is at least half the peer's largest window.
    // Held by the send limit instead, it waits for the limit to move.
    const bool window_limited = usable == len && !commit_limited;
    if (!(window_limited && len >= tcb_.max_sndwnd / 2)) {
      if (window_limited) {
        arm_persist();
      }
      return std::nullopt;
    }
  }
  // Nagle (RFC 1122 4.2.3.4) in Linux's form, Minshall's variant: a sub-MSS segment waits only
  // while an earlier sub-MSS segment is unacknowledged. The classic rule (wait while anything is
  // unacknowledged) holds the tail of every response until the peer's delayed ACK, up to 40 ms.
  const bool nagle = is_new && !tcb_.nodelay && !fin_pending && tcb_.snd_una < tcb_.snd_sml &&
                     tcb_.snd_sml <= tcb_.snd_nxt;
  if (len == avail && len < mss && nagle) {
    return std::nullopt;
  }
  if (len > mss && (len < avail || nagle)) {
    // A short last piece waits as a segment of its own would: cut by the window or cwnd (the
    // sender SWS rule above), or by Nagle.
    len -= len % mss;
  }
  std::uint8_t flags = kAck;
  if (seq + len == end) {
    flags |= kPsh;
    if (fin_pending && fin_allowed(end)) {
      flags |= kFin;
    }
  }
  auto s = make_segment(now, seq, flags, len);
  const std::uint32_t sent = static_cast<std::uint32_t>(s->payload.size());
  tcb_.snd_nxt = seq + sent + (s->has(kFin) ? 1 : 0);
  if (sent % mss != 0) {
    tcb_.snd_sml = seq + sent;  // ends in a sub-MSS segment (or piece)
  }
  if (!is_new) {
    ++counters_.retransmits;
    if (rtt_timing_ && seq <= rtt_seq_) {
      rtt_timing_ = false;  // Karn: never time a retransmitted segment
    }
  } else if (!rtt_timing_ && !ts_on()) {
    rtt_timing_ = true;
    rtt_seq_ = seq;
    rtt_start_ = now;
  }
  arm_retransmit(now);
  return s;
}

void Connection::arm_retransmit(Time now) {
  // RFC 6298 §5.1: start the timer when data leaves and it is not running.
  if (timers_.retransmit == kNever) {
    timers_.retransmit = now + rtt_.rto();
  }
  timers_.persist = kNever;
}

}  // namespace phalanx::tcp
