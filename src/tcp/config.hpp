// Configuration of the TCP engine, shared by every connection of a stack. Defaults follow the
// RFCs or Linux where the RFCs leave a choice; tests shorten the long timers.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "wire/time.hpp"

namespace phalanx::tcp {

// Time since the driver's origin (STYLE 4: the TCP engine never reads a clock): wire/time.hpp.
using phalanx::Duration;
using phalanx::kNever;
using phalanx::Time;

// The 128-bit key of the ISN function (RFC 6528) and the timestamp offsets. The driver draws it
// from a random source once per process (or shares it across the cluster).
struct IsnSecret {
  std::array<std::uint64_t, 2> key{};
};

enum class CongestionAlgorithm : std::uint8_t { new_reno, cubic };

struct Config {
  // Our receive MSS (advertised in the SYN) and the cap on the MSS we send with. 1460 fits a
  // 1500-byte Ethernet MTU under 20 bytes of IPv4 and 20 of TCP header.
  std::uint16_t mss = 1460;
  // Ring buffer capacities, fixed for the connection's life. The receive buffer bounds the
  // window we advertise; the send buffer bounds what send() accepts, and so the data in flight:
  // one connection sends at most about send_buffer_size per round trip (1 MiB: ~1 GB/s at 1 ms).
  // Memory is taken as bytes are written, not at allocation (see ring_buffer.hpp).
  std::size_t send_buffer_size = 1024 * 1024;
  std::size_t recv_buffer_size = 256 * 1024;

  // RFC 7323 window scaling: requested when true; our shift is the smallest that lets the
  // receive buffer be advertised, at most 14.
  bool window_scaling = true;
  // RFC 7323 timestamps (RTTM and PAWS).
  bool timestamps = true;
  // RFC 2018 SACK (receiving and sending blocks once both sides permit it).
  bool sack = true;
  // Send no options at all in the SYN (FIG. 7 "no options"), overriding the three above.
  bool no_options = false;
  // TCP_NODELAY for new connections (set_nodelay() changes it per connection).
  bool nodelay = false;

  // Delayed ACK (RFC 9293 §3.8.6.3 / RFC 1122 4.2.3.2): ACK at least every second full-sized
  // segment, and within this time otherwise (must be under 500 ms).
  Duration delayed_ack = std::chrono::milliseconds(40);

  // RFC 6298 retransmission timeout. The RFC's 1 s floor is 200 ms in Linux; we follow Linux.
  Duration rto_min = std::chrono::milliseconds(200);
  Duration rto_initial = std::chrono::seconds(1);
  Duration rto_max = std::chrono::seconds(60);
  // Retransmissions of a SYN (or SYN-ACK) and of data before the connection times out.
  std::uint32_t syn_retries = 6;
  std::uint32_t data_retries = 15;

  // Zero-window probes (RFC 9293 §3.8.6.1): the first after the current RTO, then doubling up to
  // persist_max; the connection times out after this many probes the peer does not answer.
  Duration persist_max = std::chrono::seconds(60);
  std::uint32_t zero_window_probe_limit = 15;

  // Keepalive (RFC 1122 4.2.3.6), off by default: after keepalive_idle without input, probe every
  // keepalive_interval; keepalive_count unanswered probes time the connection out.
  bool keepalive = false;
  Duration keepalive_idle = std::chrono::hours(2);
  Duration keepalive_interval = std::chrono::seconds(75);
  std::uint32_t keepalive_count = 9;

  // TIME-WAIT lasts 2 MSL (RFC 9293 §3.4.2: MSL = 2 min; Linux uses 60 s in all).
  Duration time_wait = std::chrono::seconds(60);

  // RFC 5961 §7: at most this many challenge ACKs per window of time.
  std::uint32_t challenge_ack_limit = 10;
  Duration challenge_ack_window = std::chrono::seconds(1);

  // Congestion control. The initial window is RFC 6928's 10 segments.
  CongestionAlgorithm congestion = CongestionAlgorithm::new_reno;
  std::uint32_t initial_cwnd_segments = 10;

  // Segmentation offload (TSO/GSO): the largest payload one segment from poll_transmit() may
  // carry. A longer segment than the MSS leaves only with new data, never in recovery, and the
  // link cuts it into pieces of tcb().snd_mss less the segment's option bytes each, copying the
  // header (PSH and FIN stay on the last piece), as Linux GSO and NIC TSO do. 0: one MSS.
  std::uint32_t max_offload_payload = 0;

  // Out-of-order data kept in at most this many separate ranges (bounded reassembly).
  std::size_t max_ooo_ranges = 16;

  IsnSecret isn_secret;
};

}  // namespace phalanx::tcp
