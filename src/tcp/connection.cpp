// Connection: creation (active, passive, restore), application calls, state transitions and
// invariants. Input processing is in input.cpp, loss recovery in recovery.cpp, segment output
// in output.cpp, timers in timers.cpp.
#include "tcp/connection.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "tcp/isn.hpp"

namespace phalanx::tcp {

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tcp: invariant broken: %s\n", what);
  std::abort();
}

// The smallest shift that lets `buffer` bytes be advertised in 16 bits (RFC 7323 §2.3: <= 14).
std::uint8_t scale_for(std::size_t buffer) {
  std::uint8_t shift = 0;
  while (shift < 14 && (buffer >> shift) > 0xffff) {
    ++shift;
  }
  return shift;
}

}  // namespace

std::string_view to_string(State s) {
  switch (s) {
    case State::closed:
      return "CLOSED";
    case State::listen:
      return "LISTEN";
    case State::syn_sent:
      return "SYN-SENT";
    case State::syn_received:
      return "SYN-RECEIVED";
    case State::established:
      return "ESTABLISHED";
    case State::fin_wait_1:
      return "FIN-WAIT-1";
    case State::fin_wait_2:
      return "FIN-WAIT-2";
    case State::close_wait:
      return "CLOSE-WAIT";
    case State::closing:
      return "CLOSING";
    case State::last_ack:
      return "LAST-ACK";
    case State::time_wait:
      return "TIME-WAIT";
  }
  return "?";
}

std::string_view to_string(CloseReason r) {
  switch (r) {
    case CloseReason::normal:
      return "normal";
    case CloseReason::reset:
      return "reset";
    case CloseReason::timeout:
      return "timeout";
    case CloseReason::aborted:
      return "aborted";
  }
  return "?";
}

Connection::Connection(const Config& config, const FourTuple& tuple, Time now, SeqNum iss)
    : config_(config),
      tuple_(tuple),
      send_buf_(config.send_buffer_size),
      recv_buf_(config.recv_buffer_size),
      ooo_(config.max_ooo_ranges),
      rtt_(config.rto_initial, config.rto_min, config.rto_max),
      cc_(make_congestion(config.congestion, config.mss, config.initial_cwnd_segments)) {
  tcb_.iss = iss;
  stream_iss_ = iss;
  tcb_.snd_una = iss;
  tcb_.snd_nxt = iss;
  tcb_.snd_max = iss;
  tcb_.snd_sml = iss;
  tcb_.nodelay = config.nodelay;
  tcb_.no_options = config.no_options;
  tcb_.ws_requested = config.window_scaling && !config.no_options;
  tcb_.ts_requested = config.timestamps && !config.no_options;
  tcb_.sack_requested = config.sack && !config.no_options;
  tcb_.rcv_scale = tcb_.ws_requested ? scale_for(config.recv_buffer_size) : 0;
  tcb_.rcv_wnd = static_cast<std::uint32_t>(
      std::min<std::size_t>(config.recv_buffer_size, std::size_t{0xffff} << tcb_.rcv_scale));
  tcb_.snd_mss = std::min<std::uint16_t>(536, config.mss);
  tcb_.rcv_mss = tcb_.snd_mss;
  tcb_.ts_offset = ts_offset(config.isn_secret, tuple.local_addr, tuple.local_port,
                             tuple.remote_addr, tuple.remote_port);
  keepalive_ = config.keepalive;
  last_input_ = now;
  high_rxt_ = iss;
  recover_ = iss;
}

Connection Connection::connect(const Config& config, const FourTuple& tuple, Time now,
                               std::optional<SeqNum> iss) {
  const SeqNum s = iss.value_or(isn(config.isn_secret, tuple.local_addr, tuple.local_port,
                                    tuple.remote_addr, tuple.remote_port, now));
  Connection c(config, tuple, now, s);
  c.set_state(State::syn_sent);
  return c;
}

ListenVerdict Connection::classify_for_listen(const wire::TcpRepr& seg) {
  using namespace wire::tcpflag;
  // RFC 9293 §3.10.7.2: first check for an RST (ignore it), second for an ACK (reset), third for
  // a SYN; anything else is dropped. A SYN with FIN is nonsense: drop it (as Linux does).
  if (seg.has(kRst)) {
    return ListenVerdict::drop;
  }
  if (seg.has(kAck)) {
    return ListenVerdict::reset;
  }
  if (!seg.has(kSyn) || seg.has(kFin)) {
    return ListenVerdict::drop;
  }
  return ListenVerdict::accept;
}

Connection Connection::accept(const Config& config, const FourTuple& tuple, Time now,
                              const wire::TcpRepr& syn, std::optional<SeqNum> iss) {
  if (classify_for_listen(syn) != ListenVerdict::accept) {
    std::fprintf(stderr, "tcp: accept() of a segment that is not an acceptable SYN\n");
    std::abort();
  }
  const SeqNum s = iss.value_or(isn(config.isn_secret, tuple.local_addr, tuple.local_port,
                                    tuple.remote_addr, tuple.remote_port, now));
  Connection c(config, tuple, now, s);
  c.tcb_.irs = SeqNum{syn.seq};
  c.tcb_.rcv_nxt = c.tcb_.irs + 1;
  c.tcb_.rcv_adv = c.tcb_.rcv_nxt;
  c.tcb_.last_ack_sent = c.tcb_.rcv_nxt;
  // A passive opener offers only the options the SYN offered (RFC 7323 §1.3, RFC 2018 §2).
  c.tcb_.ws_requested = c.tcb_.ws_requested && syn.options.window_scale.has_value();
  c.tcb_.ts_requested = c.tcb_.ts_requested && syn.options.timestamps.has_value();
  c.tcb_.sack_requested = c.tcb_.sack_requested && syn.options.sack_permitted;
  c.take_peer_options(syn);
  if (c.ts_on()) {
    c.tcb_.ts_recent = syn.options.timestamps->tsval;
    c.tcb_.ts_recent_age = now;
  }
  // The window of a SYN is never scaled (RFC 7323 §2.2).
  c.tcb_.snd_wnd = syn.window;
  c.tcb_.max_sndwnd = syn.window;
  c.tcb_.snd_wl1 = c.tcb_.irs;
  c.tcb_.snd_wl2 = s;
  c.set_state(State::syn_received);
  c.ack_now_ = true;
  return c;
}

std::uint8_t Connection::window_scale_for(const Config& config) {
  return scale_for(config.recv_buffer_size);
}

std::uint32_t Connection::tsval_at(const Config& config, const FourTuple& tuple, Time now) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return static_cast<std::uint32_t>(ms) + ts_offset(config.isn_secret, tuple.local_addr,
                                                    tuple.local_port, tuple.remote_addr,
                                                    tuple.remote_port);
}

std::optional<wire::TcpRepr> Connection::reset_for(const wire::TcpRepr& seg) {
  using namespace wire::tcpflag;
  if (seg.has(kRst)) {
    return std::nullopt;
  }
  wire::TcpRepr r;
  r.src_port = seg.dst_port;
  r.dst_port = seg.src_port;
  if (seg.has(kAck)) {
    r.seq = seg.ack;  // <SEQ=SEG.ACK><CTL=RST>
    r.flags = kRst;
  } else {
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    const auto len = static_cast<std::uint32_t>(seg.payload.size() + (seg.has(kSyn) ? 1 : 0) +
                                                (seg.has(kFin) ? 1 : 0));
    r.seq = 0;
    r.ack = seg.seq + len;
    r.flags = kRst | kAck;
  }
  return r;
}

void Connection::take_peer_options(const wire::TcpRepr& syn) {
  const wire::TcpOptions& o = syn.options;
  // RFC 9293 §3.7.1: 536 when the peer sent no MSS option.
  tcb_.snd_mss = std::min(o.mss.value_or(536), config_.mss);
  tcb_.snd_mss = std::max<std::uint16_t>(tcb_.snd_mss, 64);
  tcb_.rcv_mss = tcb_.snd_mss;
  tcb_.ws_received = o.window_scale.has_value();
  if (tcb_.ws_requested && tcb_.ws_received) {
    // RFC 7323 §2.3: a shift above 14 is used as 14.
    tcb_.snd_scale = std::min<std::uint8_t>(*o.window_scale, 14);
  } else {
    tcb_.snd_scale = 0;
    tcb_.rcv_scale = 0;
  }
  tcb_.ts_received = o.timestamps.has_value();
  tcb_.sack_permitted = tcb_.sack_requested && o.sack_permitted;
  cc_ = make_congestion(config_.congestion, effective_mss(), config_.initial_cwnd_segments);
}

bool EssentialState::our_fin_queued() const {
  switch (state) {
    case State::fin_wait_1:
    case State::fin_wait_2:
    case State::closing:
    case State::last_ack:
    case State::time_wait:
      return true;
    default:
      return false;
  }
}

bool EssentialState::peer_fin_received() const {
  switch (state) {
    case State::close_wait:
    case State::closing:
    case State::last_ack:
    case State::time_wait:
      return true;
    default:
      return false;
  }
}

Connection Connection::restore(const Config& config, const InitialState& initial,
                               const EssentialState& e, Time now, std::uint32_t ack_slack) {
  switch (e.state) {
    case State::established:
    case State::fin_wait_1:
    case State::fin_wait_2:
    case State::close_wait:
    case State::closing:
    case State::last_ack:
    case State::time_wait:
      break;
    default:
      std::fprintf(stderr, "tcp: restore() in state %s\n", to_string(e.state).data());
      std::abort();
  }
  // Our FIN: restored when every byte before it was sent (see connection.hpp); the send
  // sequence space then starts at the FIN (to send it again) or past it (acknowledged).
  State state = e.state;
  SeqNum base = e.snd_nxt;
  bool fin = e.our_fin_queued();
  bool fin_out = false;  // sent and not acknowledged: the first poll_transmit() sends it again
  if (fin && (state == State::fin_wait_2 || state == State::time_wait)) {
    base = e.fin_seq + 1;
  } else if (fin && e.fin_seq <= e.snd_nxt) {
    base = e.fin_seq;
    fin_out = e.fin_sent;
  } else if (fin) {
    fin = false;
    state = e.peer_fin_received() ? State::close_wait : State::established;
  }
  // FIG. 7 "calculable state": snd_una = snd_max = snd_nxt, ISS 0 (we use base - 1 so the
  // send buffer starts at base), timers idle, cwnd and RTT at initial values.
  Connection c(config, initial.tuple, now, base - 1);
  c.stream_iss_ = initial.iss;  // the stream's origin stays the first owner's
  Tcb& t = c.tcb_;
  t.snd_una = base;
  t.snd_nxt = base;
  t.snd_max = fin_out ? base + 1 : base;
  t.snd_sml = base;
  t.snd_wl1 = e.snd_wl1;
  t.snd_wl2 = e.snd_wl2;
  t.snd_wnd = e.snd_wnd;
  t.max_sndwnd = e.snd_wnd;
  t.rcv_nxt = e.rcv_nxt;
  t.rcv_adv = e.rcv_adv;
  t.irs = e.rcv_nxt - 1;
  t.last_ack_sent = e.rcv_nxt;
  t.snd_scale = e.snd_scale;
  t.rcv_scale = e.rcv_scale;
  t.ts_recent = e.ts_recent;
  t.ts_recent_age = now;
  t.nodelay = e.nodelay;
  t.no_options = e.no_options;
  t.ws_requested = e.ws_requested;
  t.ws_received = e.ws_received;
  t.ts_requested = e.ts_requested;
  t.ts_received = e.ts_received;
  t.sack_permitted = e.sack_permitted;
  t.sack_requested = e.sack_permitted;
  t.snd_mss = initial.mss;
  t.rcv_mss = initial.mss;
  t.fin_queued = fin;
  t.fin_received = e.peer_fin_received();
  if (fin) {
    c.fin_seq_ = e.fin_seq;
  }
  // Continue our TSval clock from the old owner's newest value.
  const auto ms = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  t.ts_offset = e.ts_val_last + 1 - ms;
  t.ts_val_last = e.ts_val_last;
  c.cc_ = make_congestion(config.congestion, c.effective_mss(), config.initial_cwnd_segments);
  if (ack_slack > 0 && !fin) {
    c.ack_slack_end_ = base + ack_slack;
  }
  c.set_state(state);
  c.events_.add(Event::established);  // open for the application, whatever the state
  if (state == State::time_wait) {
    c.timers_.time_wait = now + config.time_wait;
  } else {
    c.restart_keepalive(now);
  }
  return c;
}

InitialState Connection::export_initial() const {
  return InitialState{tuple_, tcb_.snd_mss, static_cast<std::uint16_t>(ts_on() ? 12 : 0),
                      stream_iss_};
}

EssentialState Connection::export_essential() const {
  EssentialState e;
  e.nodelay = tcb_.nodelay;
  e.no_options = tcb_.no_options;
  e.ws_requested = tcb_.ws_requested;
  e.ws_received = tcb_.ws_received;
  e.ts_requested = tcb_.ts_requested;
  e.ts_received = tcb_.ts_received;
  e.sack_permitted = tcb_.sack_permitted;
  e.snd_nxt = tcb_.snd_nxt;
  e.snd_wl1 = tcb_.snd_wl1;
  e.snd_wl2 = tcb_.snd_wl2;
  e.snd_wnd = tcb_.snd_wnd;
  e.rcv_nxt = tcb_.rcv_nxt;
  e.rcv_adv = tcb_.rcv_adv;
  e.snd_scale = tcb_.snd_scale;
  e.rcv_scale = tcb_.rcv_scale;
  e.ts_recent = tcb_.ts_recent;
  e.ts_val_last = tcb_.ts_val_last;
  e.state = tcb_.state;
  if (tcb_.fin_queued) {
    e.fin_seq = fin_seq_;
    e.fin_sent = fin_sent();
  }
  return e;
}

void Connection::set_state(State next) {
  const State prev = tcb_.state;
  if (prev == next) {
    return;
  }
  // The legal moves of RFC 9293 FIG. 5 (plus RST/timeout/abort to CLOSED from anywhere).
  bool legal = next == State::closed;
  switch (prev) {
    case State::closed:
      legal = legal || next == State::syn_sent || next == State::syn_received ||
              is_synchronized(next);  // restore()
      break;
    case State::syn_sent:
      legal = legal || next == State::syn_received || next == State::established;
      break;
    case State::syn_received:
      legal = legal || next == State::established || next == State::fin_wait_1 ||
              next == State::close_wait;
      break;
    case State::established:
      legal = legal || next == State::fin_wait_1 || next == State::close_wait;
      break;
    case State::fin_wait_1:
      legal =
          legal || next == State::fin_wait_2 || next == State::closing || next == State::time_wait;
      break;
    case State::fin_wait_2:
      legal = legal || next == State::time_wait;
      break;
    case State::close_wait:
      legal = legal || next == State::last_ack;
      break;
    case State::closing:
      legal = legal || next == State::time_wait;
      break;
    case State::last_ack:
      // Not in FIG. 5: our FIN acknowledged while output commit held the ACK of the peer's
      // (input.cpp).
      legal = legal || next == State::time_wait;
      break;
    case State::time_wait:
    case State::listen:
      break;
  }
  if (!legal) {
    std::fprintf(stderr, "tcp: illegal transition %s => %s\n", to_string(prev).data(),
                 to_string(next).data());
    std::abort();
  }
  tcb_.state = next;
  if (next == State::established) {
    events_.add(Event::established);
  }
  if (next == State::time_wait) {
    timers_ = Timers{};
    // Output commit ends here: both streams are over and nothing is replicated any more, and
    // the ACK of the peer's FIN must not wait for a replica that will never answer.
    ack_limit_.reset();
    send_limit_.reset();
    if (ack_held_) {
      ack_held_ = false;
      ack_now_ = true;
    }
    if (!close_reason_) {
      close_reason_ = CloseReason::normal;
      events_.add(Event::closed);
    }
  }
}

void Connection::close(CloseReason reason) {
  set_state(State::closed);
  timers_ = Timers{};
  if (!close_reason_) {
    close_reason_ = reason;
    events_.add(Event::closed);
  }
}

std::uint32_t Connection::ts_now(Time now) const {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return static_cast<std::uint32_t>(ms) + tcb_.ts_offset;
}

std::uint32_t tsval_with_low_bits(std::uint32_t ts_now, std::uint32_t bits, std::uint32_t width) {
  const std::uint32_t mask = (1u << width) - 1;
  std::uint32_t ts = (ts_now & ~mask) | (bits & mask);
  if (static_cast<std::int32_t>(ts - ts_now) > 0) {
    ts -= mask + 1;
  }
  return ts;
}

void Connection::set_syn_tsval_bits(std::uint32_t bits, std::uint32_t width) {
  syn_ts_bits_ = bits;
  syn_ts_width_ = std::min<std::uint32_t>(width, 16);
}

void Connection::keep_tsval_after(Time now, std::uint32_t tsval) {
  const std::uint32_t ours = ts_now(now);
  if (static_cast<std::int32_t>(ours - tsval) <= 0) {
    tcb_.ts_offset += tsval + 1 - ours;
  }
  if (static_cast<std::int32_t>(tcb_.ts_val_last - tsval) < 0) {
    tcb_.ts_val_last = tsval;
  }
}

SeqNum Connection::buf_seq() const {
  return tcb_.snd_una == tcb_.iss ? tcb_.iss + 1 : tcb_.snd_una;
}

SeqNum Connection::data_end() const {
  return buf_seq() + static_cast<std::uint32_t>(send_buf_.size());
}

bool Connection::fin_sent() const {
  return tcb_.fin_queued && fin_seq_ < tcb_.snd_max;
}

bool Connection::fin_acked() const {
  return tcb_.fin_queued && fin_seq_ < tcb_.snd_una;
}

Events Connection::take_events() {
  const Events e = events_;
  events_ = Events{};
  return e;
}

std::size_t Connection::send_space() const {
  switch (tcb_.state) {
    case State::syn_sent:
    case State::syn_received:
    case State::established:
    case State::close_wait:
      return tcb_.fin_queued ? 0 : send_buf_.free();
    default:
      return 0;
  }
}

std::size_t Connection::send(wire::Bytes data) {
  if (send_space() == 0) {
    return 0;
  }
  return send_buf_.push(data);
}

std::size_t Connection::recv(wire::MutBytes out) {
  const std::size_t n = recv_buf_.read(0, out);
  consume(n);
  return n;
}

wire::Bytes Connection::peek() const {
  return recv_buf_.contiguous(0, recv_buf_.size());
}

void Connection::consume(std::size_t n) {
  if (n > recv_buf_.size()) {
    std::fprintf(stderr, "tcp: consume(%zu) of %zu readable bytes\n", n, recv_buf_.size());
    std::abort();
  }
  if (n == 0) {
    return;
  }
  recv_buf_.pop(n);
  if (!is_synchronized(tcb_.state) || tcb_.fin_received) {
    return;
  }
  // Window update (RFC 9293 §3.8.6.2.2): tell the peer once the right edge can move by at
  // least min(buffer / 2, MSS), the same threshold the receiver SWS avoidance uses.
  const SeqNum right = tcb_.rcv_nxt + static_cast<std::uint32_t>(recv_buf_.free());
  const std::uint32_t step =
      std::min<std::uint32_t>(static_cast<std::uint32_t>(recv_buf_.capacity() / 2), tcb_.rcv_mss);
  if (tcb_.rcv_adv < right && seq_len(tcb_.rcv_adv, right) >= step &&
      seq_len(tcb_.rcv_nxt, tcb_.rcv_adv) < step) {
    ack_now_ = true;
  } else if (tcb_.rcv_adv < right && seq_len(tcb_.rcv_adv, right) >= 2 * step) {
    ack_now_ = true;
  }
}

bool Connection::recv_finished() const {
  return tcb_.fin_received && recv_buf_.empty();
}

void Connection::shutdown() {
  if (tcb_.fin_queued) {
    return;
  }
  switch (tcb_.state) {
    case State::syn_sent:
      // RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB.
      close(CloseReason::normal);
      return;
    case State::syn_received:
      // The FIN follows the handshake: ESTABLISHED then moves on to FIN-WAIT-1.
      tcb_.fin_queued = true;
      fin_seq_ = data_end();
      return;
    case State::established:
      tcb_.fin_queued = true;
      fin_seq_ = data_end();
      set_state(State::fin_wait_1);
      return;
    case State::close_wait:
      tcb_.fin_queued = true;
      fin_seq_ = data_end();
      set_state(State::last_ack);
      return;
    default:
      return;  // already closing or closed
  }
}

void Connection::abort() {
  if (tcb_.state == State::closed) {
    return;
  }
  // RFC 9293 §3.10.5: an RST in SYN-RECEIVED and the synchronized states (not in TIME-WAIT).
  if (tcb_.state != State::syn_sent && tcb_.state != State::time_wait) {
    rst_pending_ = true;
  }
  send_buf_.clear();
  close(CloseReason::aborted);
}

void Connection::set_keepalive(bool on) {
  keepalive_ = on;
  keepalive_probes_ = 0;
  if (!on) {
    timers_.keepalive = kNever;
  } else {
    restart_keepalive(last_input_);
  }
}

Time Connection::next_deadline() const {
  return std::min({timers_.retransmit, timers_.persist, timers_.delayed_ack, timers_.keepalive,
                   timers_.time_wait});
}

void Connection::check_invariants() const {
  const Tcb& t = tcb_;
  if (t.state == State::closed) {
    return;
  }
  if (!(t.snd_una <= t.snd_nxt && t.snd_nxt <= t.snd_max)) {
    fail("snd_una <= snd_nxt <= snd_max");
  }
  if (t.state != State::syn_sent && t.state != State::syn_received) {
    const SeqNum end = data_end() + (t.fin_queued ? 1 : 0);
    if (end < t.snd_max) {
      fail("snd_max beyond queued data and FIN");
    }
  }
  if (recv_buf_.size() > recv_buf_.capacity()) {
    fail("receive buffer overflow");
  }
  for (const auto& r : ooo_.ranges()) {
    if (!(t.rcv_nxt < r.left) ||
        seq_len(t.rcv_nxt, r.right) + recv_buf_.size() > recv_buf_.capacity()) {
      fail("out-of-order range outside the receive window");
    }
  }
  if (t.fin_queued && data_end() != fin_seq_ && t.snd_una <= fin_seq_) {
    fail("data queued after FIN");
  }
}

}  // namespace phalanx::tcp
