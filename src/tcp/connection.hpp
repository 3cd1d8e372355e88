// One TCP connection: a TCB (RFC 9293 §3.3.1, with the field names of the spec's FIG. 7) and its
// send and receive ring buffers, driven purely: segments, timer ticks and application calls go
// in with `now`; segments, events and the next deadline come out (DESIGN §2, STYLE 4).
//
// RFCs to read, in the order this engine follows them:
//   RFC 9293  TCP (the state machine; input processing in §3.10.7 by numbered steps)
//   RFC 7323  window scaling, timestamps (RTTM) and PAWS
//   RFC 2018  SACK option;  RFC 6675 SACK-based loss recovery (simplified "pipe")
//   RFC 6582  NewReno fast recovery;  RFC 5681 congestion control;  RFC 8312 CUBIC
//   RFC 6298  retransmission timer;  RFC 6528 initial sequence numbers
//   RFC 5961  blind RST/SYN/data injection: challenge ACKs
//   RFC 1122  delayed ACK (4.2.3.2), keepalive (4.2.3.6), Nagle (4.2.3.4; Minshall's variant,
//             as Linux)
//
// How the stack drives a connection:
//   - on_segment(now, seg) for every segment of its 4-tuple (checksum verified), on_timer(now)
//     when now >= next_deadline(), and the application calls below;
//   - after each of these, drain poll_transmit(now) until it returns nullopt, wrapping each
//     TcpRepr in IPv4 (tuple() gives the addresses), and drain take_events(). Output is pulled
//     from the state, so a driver short of room may stop early and poll again later: nothing
//     is lost (except in CLOSED, where the slot goes: drain the final RST first);
//   - re-key its timer wheel with next_deadline();
//   - free the connection once state() == State::closed and poll_transmit() returned nullopt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "tcp/config.hpp"
#include "tcp/congestion.hpp"
#include "tcp/reassembly.hpp"
#include "tcp/ring_buffer.hpp"
#include "tcp/rtt.hpp"
#include "tcp/sack.hpp"
#include "tcp/seq.hpp"
#include "tcp/tcb.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/tcp.hpp"

namespace phalanx::tcp {

struct FourTuple {
  wire::Ipv4Addr local_addr;
  std::uint16_t local_port = 0;
  wire::Ipv4Addr remote_addr;
  std::uint16_t remote_port = 0;
  bool operator==(const FourTuple&) const = default;
};

enum class CloseReason : std::uint8_t {
  normal,   // both FINs exchanged and acknowledged (or TIME-WAIT entered)
  reset,    // the peer sent an acceptable RST (in SYN-SENT: connection refused)
  timeout,  // retransmissions, SYN retries, zero-window probes or keepalives ran out
  aborted,  // the application called abort()
};
std::string_view to_string(CloseReason r);

// What happened since the last take_events(), as bits; each is reported once per occurrence.
enum class Event : std::uint8_t {
  established = 1 << 0,  // the handshake completed
  readable = 1 << 1,     // new in-order data can be read
  writable = 1 << 2,     // send space grew (acknowledged data left the send buffer)
  peer_fin = 1 << 3,     // the peer closed its direction; recv() returns 0 after the data
  closed = 1 << 4,       // over for the application (entering TIME-WAIT or CLOSED): close_reason()
};

class Events {
 public:
  constexpr Events() = default;
  constexpr explicit Events(std::uint8_t bits) : bits_(bits) {}
  constexpr bool has(Event e) const { return (bits_ & static_cast<std::uint8_t>(e)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr std::uint8_t bits() const { return bits_; }
  constexpr void add(Event e) { bits_ |= static_cast<std::uint8_t>(e); }

 private:
  std::uint8_t bits_ = 0;
};

// Segments a listening port must not turn into a connection (RFC 9293 §3.10.7.2).
enum class ListenVerdict : std::uint8_t {
  accept,  // a SYN without ACK/RST/FIN: call Connection::accept()
  drop,    // an RST, or a SYN we refuse quietly (e.g. SYN+FIN): drop it
  reset,   // anything with ACK or without SYN: answer with reset_for(seg)
};

// Counters of dropped and noteworthy segments (STYLE 6): one per reason.
struct Counters {
  std::uint64_t segments_in = 0;
  std::uint64_t segments_out = 0;
  std::uint64_t retransmits = 0;
  std::uint64_t fast_retransmits = 0;
  std::uint64_t rto_expiries = 0;
  std::uint64_t drop_unacceptable = 0;       // outside the receive window: ACKed and dropped
  std::uint64_t drop_paws = 0;               // older timestamp than ts_recent (RFC 7323 §5)
  std::uint64_t drop_bad_ack = 0;            // ACK of unsent data, or unacceptable in SYN states
  std::uint64_t drop_no_ack = 0;             // ACK bit off in a synchronized state
  std::uint64_t drop_rst_invalid = 0;        // RST out of window (RFC 5961 §3.2)
  std::uint64_t drop_ooo_full = 0;           // out-of-order data beyond the reassembly bound
  std::uint64_t challenge_acks = 0;          // RFC 5961 challenge ACKs sent
  std::uint64_t challenge_acks_limited = 0;  // suppressed by the rate limit
  std::uint64_t dup_acks = 0;
  std::uint64_t acks_beyond_restore = 0;  // ACKs above snd_max within restore()'s ack_slack
  std::uint64_t acks_held = 0;            // pure ACKs deferred by the ack limit (set_ack_limit)
};

// What FIG. 7 calls the initial state: sent once per session.
struct InitialState {
  FourTuple tuple;
  std::uint16_t mss = 0;           // the MSS we send with (peer's, capped by ours)
  std::uint16_t options_size = 0;  // bytes of options on each data segment (timestamps: 12)
  // Our initial sequence number: where the output stream begins (stream offset of sequence s =
  // s - (iss + 1)), so that a new owner's application resumes at the right offset. restore()
  // does not need it.
  SeqNum iss;
  bool operator==(const InitialState&) const = default;
};

// FIG. 7's essential state, sent on each change, plus what the guarantee needs beyond FIG. 7
// (DESIGN §6): ts_val_last (our newest TSval: a new owner must not send older timestamps or the
// peer's PAWS drops them) and the FIN state both ways.
struct EssentialState {
  bool nodelay = false;
  bool no_options = false;
  bool ws_requested = false;
  bool ws_received = false;
  bool ts_requested = false;
  bool ts_received = false;
  bool sack_permitted = false;
  SeqNum snd_nxt;
  SeqNum snd_wl1;
  SeqNum snd_wl2;
  std::uint32_t snd_wnd = 0;  // bytes, already scaled
  SeqNum rcv_nxt;
  SeqNum rcv_adv;
  std::uint8_t snd_scale = 0;
  std::uint8_t rcv_scale = 0;
  std::uint32_t ts_recent = 0;
  std::uint32_t ts_val_last = 0;
  // The FIN state both ways. `state` is one of ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT,
  // CLOSING, LAST-ACK, TIME-WAIT: our FIN was queued in FIN-WAIT-1/2, CLOSING, LAST-ACK and
  // TIME-WAIT (acknowledged in FIN-WAIT-2 and TIME-WAIT); the peer's FIN was received in
  // CLOSE-WAIT, CLOSING, LAST-ACK and TIME-WAIT. fin_seq is our FIN's sequence number once it is
  // queued (else 0), fin_sent whether it left (it occupies fin_seq; snd_max is past it).
  State state = State::established;
  SeqNum fin_seq;
  bool fin_sent = false;
  bool our_fin_queued() const;
  bool peer_fin_received() const;
  bool operator==(const EssentialState&) const = default;
};

// Output commit (DESIGN §6, set_ack_limit()): the highest ACK and the right edge of the receive
// window a segment may announce.
struct AckLimit {
  SeqNum ack;
  SeqNum right_edge;
  bool operator==(const AckLimit&) const = default;
};

// `ts_now` with its low `width` bits replaced by `bits`, moved back one step of 2^width when
// that would put it ahead of ts_now: TSvals sent later with the clock never go backwards
// (RFC 7323 §5.4).
std::uint32_t tsval_with_low_bits(std::uint32_t ts_now, std::uint32_t bits, std::uint32_t width);

class Connection {
 public:
  // Active open (RFC 9293 §3.10.1): SYN-SENT; the SYN leaves on the first poll_transmit(). The
  // ISS comes from isn() with config.isn_secret unless `iss` is given (tests).
  static Connection connect(const Config& config, const FourTuple& tuple, Time now,
                            std::optional<SeqNum> iss = std::nullopt);

  // What a listening port does with `seg` (flags only; the stack checks the port and backlog).
  static ListenVerdict classify_for_listen(const wire::TcpRepr& seg);

  // Passive open from a SYN that classify_for_listen() accepted (RFC 9293 §3.10.7.2): the
  // connection is in SYN-RECEIVED with the SYN's options negotiated; the SYN-ACK leaves on the
  // first poll_transmit(). Data in the SYN is not kept (the peer sends it again once we ACK
  // only the SYN). A `syn` that is not acceptable is a caller bug and aborts.
  static Connection accept(const Config& config, const FourTuple& tuple, Time now,
                           const wire::TcpRepr& syn, std::optional<SeqNum> iss = std::nullopt);

  // The SYN-ACK (each retransmission too) carries `bits` in the low `width` bits of its TSval
  // (tsval_with_low_bits()): a SYN cookie's options (stack/syn_cookie.hpp), so that another
  // member can complete the handshake. Before the first poll_transmit().
  void set_syn_tsval_bits(std::uint32_t bits, std::uint32_t width);
  // Moves our TSval clock forward, if needed, so that every TSval sent from now on is newer than
  // `tsval`: one the peer got from a clock other than ours (a SYN cookie another member made).
  // RFC 7323 §5.3: the peer drops segments whose TSval is older than its TS.Recent.
  void keep_tsval_after(Time now, std::uint32_t tsval);

  // The window scale a passive open offers when the SYN offers one (RFC 7323 §2.3): the smallest
  // shift that lets the receive buffer be advertised. SYN cookies answer with the same.
  static std::uint8_t window_scale_for(const Config& config);
  // Our TSval at `now` on `tuple` (RFC 7323 §5.4: a per-connection offset on a millisecond
  // clock), as the connection accepted on it would send it.
  static std::uint32_t tsval_at(const Config& config, const FourTuple& tuple, Time now);

  // The RST answering `seg` when no connection exists for it (RFC 9293 §3.10.7.1, CLOSED), with
  // the ports swapped; nullopt when `seg` is itself an RST.
  static std::optional<wire::TcpRepr> reset_for(const wire::TcpRepr& seg);

  // TIME-WAIT: whether `syn`, a SYN for this 4-tuple that classify_for_listen() accepts, may end
  // TIME-WAIT and open a new incarnation of the connection (RFC 6191 §2, RFC 1122 4.2.2.13).
  // False in any other state, and for a SYN that may be an old duplicate.
  bool accepts_new_incarnation(const wire::TcpRepr& syn) const;
  // The ISS of that new incarnation: the RFC 6528 ISS when it is already beyond the old
  // sequence space by more than an unscaled window, else just beyond it, so that no old
  // segment of ours falls in the new connection's window.
  SeqNum successor_iss(Time now) const;

  // Rebuilds a connection from replicated state by FIG. 7's rules: snd_una = snd_max = snd_nxt,
  // timers idle, cwnd and RTT estimators initial, empty buffers; in essential.state (see
  // EssentialState), which must be a synchronized state other than SYN-RECEIVED: any other is a
  // caller bug and aborts (the replication decoder rejects such records).
  //
  // Our FIN: when it was sent and not acknowledged, the restored connection sends it again at
  // its first poll_transmit(); acknowledged, it is counted so. When snd_nxt is below fin_seq (bytes
  // before the FIN were not all sent, or a retransmission timeout rewound snd_nxt), the FIN is not
  // restored: FIN-WAIT-1 comes back as ESTABLISHED, CLOSING and LAST-ACK as CLOSE-WAIT, and the
  // application queues the bytes from snd_nxt again and calls shutdown(). The peer's FIN raises no
  // Event::peer_fin again: the application's replicated state knows it was seen.
  //
  // ack_slack (DESIGN §6, the send limit): the old owner may have sent bytes beyond the snd_nxt
  // it replicated, and the peer may acknowledge them. An ACK in (snd_max, snd_nxt + ack_slack] is
  // then taken as acknowledging bytes that were sent (counted in acks_beyond_restore) instead of
  // being dropped as an ACK of unsent data: snd_una, snd_nxt and snd_max move up to it, and queued
  // bytes it covers leave the send buffer as acknowledged. Those bytes are gone: the application
  // must not send them again. Contract for the new owner's application: the next byte it queues
  // with send() is the byte at sequence number send_end(), that is at stream offset
  // (offset at essential.snd_nxt) + seq_len(essential.snd_nxt, send_end()); it resumes from
  // there, by regenerating bytes from that offset. Never beyond a queued FIN.
  static Connection restore(const Config& config, const InitialState& initial,
                            const EssentialState& essential, Time now, std::uint32_t ack_slack = 0);
  InitialState export_initial() const;
  EssentialState export_essential() const;

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // ---- driver side ----

  // One segment of this connection's 4-tuple, checksum already verified.
  void on_segment(Time now, const wire::TcpRepr& seg);
  // Runs every timer whose deadline is <= now. Harmless to call early.
  void on_timer(Time now);
  // The earliest time on_timer() has work; kNever when no timer is armed.
  Time next_deadline() const;
  // The next segment to send, or nullopt. The payload spans the send buffer and stays valid
  // until the next non-const call on this connection; emit it before calling again.
  std::optional<wire::TcpRepr> poll_transmit(Time now);
  // Events since the last call; clears them.
  Events take_events();

  // ---- application side ----

  // Queues bytes to send; returns how many fit (0 when the buffer is full, or after shutdown()
  // or in a state that cannot send: the close_reason()/state() says which).
  std::size_t send(wire::Bytes data);
  // Free space in the send buffer (0 once the sending direction is closed).
  std::size_t send_space() const;
  // The sequence number the next byte given to send() will carry (after a restore(), where the
  // application resumes its stream: see ack_slack there).
  SeqNum send_end() const { return data_end(); }
  // Bytes queued and not yet acknowledged by the peer.
  std::size_t send_queued() const { return send_buf_.size(); }
  // Copies up to out.size() in-order bytes out and consumes them; 0 when none are ready.
  std::size_t recv(wire::MutBytes out);
  // The in-order bytes at the head of the receive buffer that are contiguous in memory (may be
  // fewer than recv_available(): consume() and peek() again for the rest).
  wire::Bytes peek() const;
  // Drops n read bytes (n <= recv_available(); more is a caller bug and aborts).
  void consume(std::size_t n);
  std::size_t recv_available() const { return recv_buf_.size(); }
  // True once the peer's FIN arrived and every byte before it has been read.
  bool recv_finished() const;
  // Closes our direction: a FIN follows the queued data (RFC 9293 §3.10.4). Idempotent.
  void shutdown();
  // Sends an RST (in a synchronized state) and closes at once with CloseReason::aborted.
  void abort();
  void set_nodelay(bool on) { tcb_.nodelay = on; }
  void set_keepalive(bool on);

  // ---- output commit (DESIGN §6) ----

  // Holds back what our segments acknowledge until a layer above allows it: with a limit set, no
  // segment's ACK field goes beyond limit.ack (it carries min(rcv_nxt, limit.ack)) and no window
  // moves the right edge we advertise beyond limit.right_edge. Data, FIN and retransmissions
  // still leave, with the held ACK; a pure ACK that would say nothing new while something is
  // held waits (counted in acks_held), and goes out at the next poll_transmit() once a new limit
  // lets it say more. nullopt (the default) lifts it: output is then exactly as without one.
  // SYN-ACKs and RSTs are not limited (replication starts at the first ACK). TIME-WAIT lifts
  // the limit (and the send limit): nothing is replicated from there on.
  //
  // Why a per-connection limit and not a hook called per segment: the data path pays one
  // predictable branch when no limit is set (no virtual call, no allocation), and the layer
  // above (session replication) moves the limit when its backup acknowledges state, which is
  // far rarer than segments. The limit should only move forward: a lower ACK than one already
  // sent is ignored by the peer, and a right edge below one already advertised shrinks the
  // window (RFC 9293 §3.8.6.2.2 discourages it): set it from the first ACK on.
  void set_ack_limit(std::optional<AckLimit> limit);
  std::optional<AckLimit> ack_limit() const { return ack_limit_; }
  // The send side's half (DESIGN §6): with a limit set, no new byte at or beyond `limit` (nor
  // our FIN beyond it) leaves; retransmissions below snd_max still do. A new owner accepts ACKs up
  // to the limit its backup holds (restore()'s ack_slack), so the owner must never run past it. It
  // is no zero window: no probe is sent against it, and the data waits for the limit to move.
  // nullopt (the default) lifts it.
  void set_send_limit(std::optional<SeqNum> limit);
  std::optional<SeqNum> send_limit() const { return send_limit_; }
  // A new owner after a takeover (DESIGN §6) knows the peer's window and acknowledgement only
  // as they were replicated: the window may have been closed then (a slow reader), and the
  // restored connection would wait out a persist timeout (1 s on a fresh RTT estimate). This
  // sends at once a segment the peer must answer (SEG.SEQ = SND.NXT - 1, no data, as a
  // keepalive probe: RFC 9293 §3.10.7.4 answers an unacceptable segment with an ACK), whose
  // answer carries its current window and ACK.
  void solicit_ack() { keepalive_probe_due_ = true; }
  // What our next ACK would announce without a limit: rcv_nxt and the right edge of the window.
  // The layer above replicates state covering these, then raises the limit to them.
  AckLimit ack_wanted() const;

  // ---- inspection ----
  State state() const { return tcb_.state; }
  const Tcb& tcb() const { return tcb_; }
  const FourTuple& tuple() const { return tuple_; }
  std::optional<CloseReason> close_reason() const { return close_reason_; }
  const Counters& counters() const { return counters_; }
  std::uint32_t cwnd() const { return cc_->cwnd(); }
  std::uint32_t ssthresh() const { return cc_->ssthresh(); }
  Duration rto() const { return rtt_.rto(); }
  // Asserts the TCB's invariants (STYLE 5); aborts with a message when one is broken.
  void check_invariants() const;

 private:
  Connection(const Config& config, const FourTuple& tuple, Time now, SeqNum iss);

  // connection.cpp
  void set_state(State next);
  void close(CloseReason reason);
  std::uint32_t ts_now(Time now) const;
  void take_peer_options(const wire::TcpRepr& syn);

  // input.cpp: RFC 9293 §3.10.7 SEGMENT ARRIVES
  void on_segment_syn_sent(Time now, const wire::TcpRepr& seg);
  bool acceptable(const wire::TcpRepr& seg, std::uint32_t seg_len) const;
  void process_ack(Time now, const wire::TcpRepr& seg);
  void process_data(Time now, const wire::TcpRepr& seg, SeqNum seq, wire::Bytes data);
  void process_fin(Time now);
  void update_send_window(const wire::TcpRepr& seg);
  void update_rtt(Time now, const wire::TcpRepr& seg, SeqNum ack);
  void challenge_ack(Time now);

  // recovery.cpp: duplicate ACKs, fast retransmit, NewReno and SACK recovery
  void on_dup_ack(Time now);
  void on_new_ack(Time now, std::uint32_t acked, SeqNum ack);
  std::uint32_t pipe() const;

  // output.cpp
  std::optional<wire::TcpRepr> make_segment(Time now, SeqNum seq, std::uint8_t flags,
                                            std::size_t max_payload);
  std::optional<wire::TcpRepr> next_data_segment(Time now);
  std::optional<wire::TcpRepr> next_recovery_segment(Time now);
  std::uint32_t window_to_advertise() const;
  // The ACK and window (bytes, a multiple of the scale) a non-SYN segment carries now, with the
  // ack limit applied; `held` when the limit keeps back some of ack_wanted().
  struct AckFields {
    SeqNum ack;
    std::uint32_t window = 0;
    bool held = false;
  };
  AckFields ack_fields() const;
  std::uint16_t effective_mss() const;
  std::size_t options_size(bool syn) const;
  SeqNum buf_seq() const;   // sequence number of send_buf_'s first byte
  SeqNum data_end() const;  // one past the last queued byte
  bool fin_sent() const;
  bool fin_acked() const;
  bool ts_on() const { return tcb_.ts_requested && tcb_.ts_received; }
  std::uint32_t flight_size() const;
  void arm_retransmit(Time now);

  // timers.cpp
  void on_retransmit_timeout(Time now);
  void on_persist_timeout(Time now);
  void on_keepalive_timeout(Time now);
  void restart_keepalive(Time now);

  Config config_;
  FourTuple tuple_;
  Tcb tcb_;
  RingBuffer send_buf_;    // bytes from snd_buf_seq_ on: unacknowledged, then unsent
  RingBuffer recv_buf_;    // in-order bytes the application has not read; OOO data beyond them
  Reassembly ooo_;         // out-of-order ranges above rcv_nxt, stored in recv_buf_'s free space
  Scoreboard scoreboard_;  // SACKed ranges above snd_una (send side)
  RttEstimator rtt_;
  std::unique_ptr<CongestionControl> cc_;
  Timers timers_;
  Counters counters_;
  Events events_;
  std::optional<CloseReason> close_reason_;

  // Loss recovery (recovery.cpp).
  std::uint32_t dup_acks_ = 0;
  bool in_recovery_ = false;
  SeqNum recover_;           // RFC 6582 "recover": snd_max when recovery began
  SeqNum high_rxt_;          // RFC 6675 HighRxt: retransmissions sent up to here
  bool rexmit_una_ = false;  // retransmit the segment at snd_una next (fast retransmit)
  // RTT timing without timestamps (Karn: only segments never retransmitted).
  bool rtt_timing_ = false;
  SeqNum rtt_seq_;
  Time rtt_start_{0};
  // Retransmissions of the same data (or SYN) since the last progress.
  std::uint32_t retries_ = 0;
  // ACK generation.
  bool ack_now_ = false;
  std::uint32_t unacked_segments_ = 0;  // full-sized segments received since our last ACK
  // RFC 5961 §7 rate limit.
  Time challenge_window_start_{0};
  std::uint32_t challenge_count_ = 0;
  // A challenge ACK owed in SYN-RECEIVED, where ack_now_ means "the SYN-ACK again".
  bool challenge_due_ = false;
  // Zero-window probing and keepalive.
  bool persist_probe_due_ = false;
  std::uint32_t persist_probes_ = 0;
  std::uint32_t persist_shift_ = 0;
  bool keepalive_ = false;
  bool keepalive_probe_due_ = false;
  std::uint32_t keepalive_probes_ = 0;
  Time last_input_{0};
  // An RST to send (abort()) before the connection is freed, and a one-off RST answering an
  // unacceptable segment in SYN-SENT/SYN-RECEIVED (RFC 9293 §3.10.7.3/4).
  bool rst_pending_ = false;
  std::optional<wire::TcpRepr> reply_rst_;
  // set_syn_tsval_bits(): the low bits every SYN-ACK's TSval carries, and how many.
  std::uint32_t syn_ts_bits_ = 0;
  std::uint32_t syn_ts_width_ = 0;
  // Our FIN's sequence number, fixed by shutdown(); the peer's FIN seen beyond a gap.
  SeqNum fin_seq_;
  std::optional<SeqNum> ooo_fin_;
  // restore()'s ack_slack: ACKs up to here are accepted above snd_max; cleared once snd_max
  // reaches it.
  std::optional<SeqNum> ack_slack_end_;
  // Output commit: the limit, and whether an ACK was kept back by it.
  std::optional<AckLimit> ack_limit_;
  std::optional<SeqNum> send_limit_;  // set_send_limit()
  SeqNum stream_iss_;                 // InitialState::iss: the ISS, or the first owner's
  bool fin_allowed(SeqNum fin) const;
  bool ack_held_ = false;
};

}  // namespace phalanx::tcp
