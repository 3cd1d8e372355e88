// The transmission control block (RFC 9293 §3.3.1) with the field names of the spec's FIG. 7, so
// that session replication can export and restore them (EssentialState in connection.hpp).
#pragma once

#include <cstdint>
#include <string_view>

#include "tcp/config.hpp"
#include "tcp/seq.hpp"

namespace phalanx::tcp {

// RFC 9293 §3.3.2. LISTEN belongs to the stack's listeners; a Connection never is in it.
enum class State : std::uint8_t {
  closed,
  listen,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};
std::string_view to_string(State s);

// ESTABLISHED and after: the states in which both ISNs are known (RFC 9293 "synchronized").
constexpr bool is_synchronized(State s) {
  return s != State::closed && s != State::listen && s != State::syn_sent &&
         s != State::syn_received;
}

struct Tcb {
  State state = State::closed;

  // Send sequence space (RFC 9293 §3.3.1, BSD's snd_max).
  SeqNum iss;
  SeqNum snd_una;                // oldest unacknowledged sequence number
  SeqNum snd_nxt;                // next sequence number to send (rewinds to snd_una on RTO)
  SeqNum snd_max;                // highest sequence number sent + 1
  SeqNum snd_sml;                // end of the last sub-MSS segment sent (Nagle, Minshall's rule)
  SeqNum snd_wl1;                // segment sequence number of the last window update
  SeqNum snd_wl2;                // segment acknowledgment number of the last window update
  std::uint32_t snd_wnd = 0;     // peer's window in bytes (scaled)
  std::uint32_t max_sndwnd = 0;  // largest window the peer offered (sender SWS avoidance)

  // Receive sequence space.
  SeqNum irs;
  SeqNum rcv_nxt;             // next sequence number expected
  SeqNum rcv_adv;             // right edge we advertised: rcv_nxt + window at the time
  std::uint32_t rcv_wnd = 0;  // window we advertise now, in bytes

  // RFC 7323 window scale shifts: the peer's (applied to its window field) and ours.
  std::uint8_t snd_scale = 0;
  std::uint8_t rcv_scale = 0;
  // RFC 7323 timestamps: the peer's TSval to echo, when it was taken, our last ACK.
  std::uint32_t ts_recent = 0;
  Time ts_recent_age{0};
  SeqNum last_ack_sent;
  std::uint32_t ts_offset = 0;    // our TSval = milliseconds(now) + ts_offset
  std::uint32_t ts_val_last = 0;  // newest TSval we sent

  // The MSS we send with (peer's MSS capped by ours) and the largest segment the peer sent.
  std::uint16_t snd_mss = 536;
  std::uint16_t rcv_mss = 536;

  // FIG. 7 option flags.
  bool nodelay = false;
  bool no_options = false;
  bool ws_requested = false;  // we sent WS in our SYN
  bool ws_received = false;   // the peer's SYN carried WS
  bool ts_requested = false;
  bool ts_received = false;
  bool sack_permitted = false;  // both sides sent SACK-permitted
  bool sack_requested = false;  // we sent SACK-permitted

  // Our FIN: queued by shutdown(); its sequence number is after the last queued byte.
  bool fin_queued = false;
  // The peer's FIN was received (rcv_nxt is past it).
  bool fin_received = false;
};

// Per-connection deadlines; kNever when idle. next_deadline() is their minimum.
struct Timers {
  Time retransmit = kNever;  // RTO, also SYN and FIN retransmission
  Time persist = kNever;     // zero-window probes (and the sender SWS override)
  Time delayed_ack = kNever;
  Time keepalive = kNever;
  Time time_wait = kNever;  // 2MSL
};

}  // namespace phalanx::tcp
