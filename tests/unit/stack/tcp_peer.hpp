// A remote TCP that behaves like a Linux client for bulk transfers through the Stack: MSS 1460
// (PeerOptions::mss), window scale 7, SACK-permitted and timestamps in its SYN; a receive window
// that grows with what it has received up to a buffer of several MB, less what its application
// has not read;
// an ACK for every second data segment (or every `ack_every`), a delayed ACK otherwise, and a
// window update when its application reads after it advertised a small window.
//
// Time is the harness's: step() moves it one tick and runs one round of the conversation, so a
// test states the path (tick = one round trip) and the reader (bytes read per tick).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

namespace phalanx::stack::test {

struct PeerOptions {
  std::size_t rcv_buffer = 6 << 20;      // Linux grows tcp_rmem up to 6 MB by default
  std::size_t read_per_tick = SIZE_MAX;  // the application's reads; SIZE_MAX: reads at once
  std::uint32_t ack_every = 2;           // data segments per ACK (RFC 9293 §3.8.6.3)
  Duration delayed_ack = std::chrono::milliseconds(40);
  Duration tick = std::chrono::microseconds(500);  // one round trip
  std::uint16_t port = 40000;
  // The MSS option of our SYN; 0: none (the stack then assumes 536, RFC 9293 §3.7.1).
  std::uint16_t mss = 1460;
};

class TcpPeer {
 public:
  static constexpr std::uint8_t kScale = 7;

  TcpPeer(Harness& h, std::uint16_t server_port, PeerOptions options = {})
      : h_(&h), server_port_(server_port), o_(options) {}

  // From now on the connection is served by the stack of `h` (a takeover, DESIGN §6): our
  // segments go there and we take what it sends.
  void move_to(Harness& h) { h_ = &h; }

  // SYN, SYN-ACK, ACK.
  void connect() {
    wire::TcpRepr syn = segment(wire::tcpflag::kSyn);
    if (o_.mss != 0) {
      syn.options.mss = o_.mss;
    }
    syn.options.window_scale = kScale;
    syn.options.sack_permitted = true;
    syn.window = 64240;  // a SYN's window is never scaled
    transmit(syn);
    const wire::TcpRepr synack = take();
    ASSERT_EQ(synack.flags, wire::tcpflag::kSyn | wire::tcpflag::kAck);
    ASSERT_TRUE(synack.options.timestamps.has_value());
    rcv_nxt_ = synack.seq + 1;
    right_edge_ = rcv_nxt_;
    snd_scale_ = synack.options.window_scale.value_or(0);
    snd_una_ = synack.ack;
    snd_wnd_ = synack.window;  // a SYN's window is never scaled
    transmit(segment(wire::tcpflag::kAck));
  }

  // Queues bytes to send (a request, an echo stream); step() sends them as the window allows.
  void write(std::string_view data) { out_.append(data); }
  // Sends FIN once everything written has left.
  void shutdown() { fin_queued_ = true; }

  // One tick: the application reads, the segments the stack sent arrive, and our ACKs and data
  // go back after the round trip.
  void step() {
    read_some();
    std::vector<wire::TcpRepr> acks;
    while (h_->pending() > 0) {
      const wire::TcpRepr seg = take();
      if (seg.has(wire::tcpflag::kRst)) {
        reset_ = true;
        continue;
      }
      on_segment(seg);
      if (ack_due_) {
        acks.push_back(ack());
      }
    }
    if (unacked_segments_ > 0 && h_->now() - first_unacked_ >= o_.delayed_ack) {
      acks.push_back(ack());
    }
    h_->advance(o_.tick);
    for (const wire::TcpRepr& a : acks) {
      transmit(a);
    }
    send_data();
  }

  // Steps until `done()` or `limit` of simulated time passed; false on the limit.
  template <class Done>
  bool run(Done&& done, Duration limit) {
    const Time end = h_->now() + limit;
    while (!done()) {
      if (h_->now() >= end) {
        return false;
      }
      step();
    }
    return true;
  }

  // Everything the application read, in order.
  const std::string& received() const { return app_; }
  std::size_t unread() const { return unread_.size(); }
  bool fin_received() const { return fin_received_; }
  bool reset() const { return reset_; }
  std::uint64_t zero_windows_seen() const { return zero_windows_; }
  std::uint64_t out_of_order() const { return out_of_order_; }
  std::uint32_t window_advertised() const { return advertised_; }
  // All data and our FIN (if any) acknowledged by the stack.
  bool all_acked() const { return fin_sent_ == fin_queued_ && snd_una_ == snd_nxt_; }

 private:
  wire::TcpRepr segment(std::uint8_t flags) {
    wire::TcpRepr r;
    r.src_port = o_.port;
    r.dst_port = server_port_;
    r.seq = snd_nxt_;
    r.ack = (flags & wire::tcpflag::kAck) != 0 ? rcv_nxt_ : 0;
    r.flags = flags;
    r.window = window_field();
    r.options.timestamps = wire::TcpTimestamps{tsval(), ts_recent_};
    return r;
  }

  std::uint32_t tsval() const {
    return static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(h_->now()).count());
  }

  // Linux-like: the window grows with what arrived (twice the bytes received, from 64 KiB) up
  // to the buffer, less what the application has not read; under an MSS of room it is zero
  // (receiver SWS avoidance), and it never shrinks below what was offered.
  std::uint16_t window_field() {
    const std::size_t grown = std::min(o_.rcv_buffer, std::size_t{65535} + 2 * received_total_);
    std::size_t free = grown > unread_.size() ? grown - unread_.size() : 0;
    if (free < 1460) {
      free = 0;
    }
    const std::uint32_t offered = right_edge_ - rcv_nxt_;
    free = std::max<std::size_t>(free, offered);
    free = std::min<std::size_t>(free, std::size_t{0xffff} << kScale);
    // Rounded down to the scale: the edge may seem to move left by less than 1 << kScale
    // (RFC 7323 §2.4); we still accept up to the edge offered before.
    advertised_ = static_cast<std::uint32_t>((free >> kScale) << kScale);
    return static_cast<std::uint16_t>(advertised_ >> kScale);
  }

  void transmit(const wire::TcpRepr& r) {
    h_->send(ip_frame(Ip{.src = kClientIp, .protocol = wire::ipproto::kTcp},
                      bytes(tcp(kClientIp, kOurIp, r))));
    const auto len =
        static_cast<std::uint32_t>(r.payload.size() + (r.has(wire::tcpflag::kSyn) ? 1 : 0) +
                                   (r.has(wire::tcpflag::kFin) ? 1 : 0));
    if (static_cast<std::int32_t>(r.seq + len - snd_nxt_) > 0) {
      snd_nxt_ = r.seq + len;
    }
    if (r.has(wire::tcpflag::kAck)) {
      last_window_ = std::uint32_t{r.window} << kScale;
      const std::uint32_t right = r.ack + last_window_;
      if (static_cast<std::int32_t>(right - right_edge_) > 0) {
        right_edge_ = right;  // never shrinks
      }
      if (r.window == 0) {
        ++zero_windows_;
      }
    }
  }

  wire::TcpRepr ack() {
    ack_due_ = false;
    unacked_segments_ = 0;
    return segment(wire::tcpflag::kAck);
  }

  // The next frame the stack sent, which must be a TCP segment for us; payload copied aside.
  wire::TcpRepr take() {
    const Frame f = h_->recv();
    wire::TcpRepr seg = parse_tcp(f);
    EXPECT_EQ(seg.dst_port, o_.port);
    payload_.assign(reinterpret_cast<const char*>(seg.payload.data()), seg.payload.size());
    seg.payload = {};
    if (seg.options.timestamps) {
      ts_recent_ = seg.options.timestamps->tsval;
    }
    return seg;
  }

  void on_segment(const wire::TcpRepr& seg) {
    if (seg.has(wire::tcpflag::kAck) && static_cast<std::int32_t>(seg.ack - snd_una_) > 0) {
      snd_una_ = seg.ack;
    }
    if (seg.has(wire::tcpflag::kAck)) {
      snd_wnd_ = std::uint32_t{seg.window} << snd_scale_;
    }
    const bool has_fin = seg.has(wire::tcpflag::kFin);
    if (payload_.empty() && !has_fin) {
      return;
    }
    if (seg.seq != rcv_nxt_) {
      ++out_of_order_;  // a retransmission or a gap: a duplicate ACK says where we are
      ack_due_ = true;
      return;
    }
    // What fits in the window we advertised; the rest is dropped as Linux would.
    const std::size_t room = static_cast<std::uint32_t>(right_edge_ - rcv_nxt_);
    const std::size_t n = std::min(payload_.size(), room);
    unread_.insert(unread_.end(), payload_.begin(), payload_.begin() + static_cast<long>(n));
    rcv_nxt_ += static_cast<std::uint32_t>(n);
    received_total_ += n;
    if (n < payload_.size()) {
      ack_due_ = true;
      return;
    }
    if (has_fin) {
      rcv_nxt_ += 1;
      fin_received_ = true;
      ack_due_ = true;
      return;
    }
    if (unacked_segments_++ == 0) {
      first_unacked_ = h_->now();
    }
    if (unacked_segments_ >= o_.ack_every) {
      ack_due_ = true;
    }
  }

  void read_some() {
    const std::size_t n = std::min(o_.read_per_tick, unread_.size());
    app_.append(unread_.begin(), unread_.begin() + static_cast<long>(n));
    unread_.erase(unread_.begin(), unread_.begin() + static_cast<long>(n));
    if (n > 0 && !fin_received_) {
      // A window update once reading at least doubled the window (Linux tcp_cleanup_rbuf; none
      // after the peer's FIN).
      const std::uint32_t now_open = right_edge_ - rcv_nxt_;
      const std::uint32_t would_open = std::uint32_t{window_field()} << kScale;
      if (would_open >= 1460 && would_open >= 2 * now_open) {
        transmit(segment(wire::tcpflag::kAck));
      }
    }
  }

  void send_data() {
    for (;;) {
      const std::uint32_t in_flight = snd_nxt_ - snd_una_;
      const std::size_t queued = out_.size() - sent_;
      const std::size_t room = snd_wnd_ > in_flight ? snd_wnd_ - in_flight : 0;
      const std::size_t n = std::min({queued, room, std::size_t{1448}});
      if (n == 0) {
        break;
      }
      wire::TcpRepr r = segment(wire::tcpflag::kAck | wire::tcpflag::kPsh);
      r.payload = wire::Bytes(reinterpret_cast<const std::byte*>(out_.data()) + sent_, n);
      transmit(r);
      sent_ += n;
      ack_due_ = false;
      unacked_segments_ = 0;
    }
    if (fin_queued_ && !fin_sent_ && sent_ == out_.size()) {
      fin_sent_ = true;
      transmit(segment(wire::tcpflag::kFin | wire::tcpflag::kAck));
    }
  }

  Harness* h_;
  std::uint16_t server_port_;
  PeerOptions o_;
  // Send side.
  std::uint32_t snd_nxt_ = 1000;
  std::uint32_t snd_una_ = 1000;
  std::uint32_t snd_wnd_ = 0;
  std::uint8_t snd_scale_ = 0;
  std::string out_;
  std::size_t sent_ = 0;
  bool fin_queued_ = false;
  bool fin_sent_ = false;
  // Receive side.
  std::uint32_t rcv_nxt_ = 0;
  std::uint32_t right_edge_ = 0;
  std::uint32_t advertised_ = 0;
  std::uint32_t last_window_ = 0;
  std::uint32_t ts_recent_ = 0;
  std::string payload_;
  std::deque<char> unread_;
  std::string app_;
  std::size_t received_total_ = 0;
  std::uint32_t unacked_segments_ = 0;
  Time first_unacked_{0};
  bool ack_due_ = false;
  bool fin_received_ = false;
  bool reset_ = false;
  std::uint64_t zero_windows_ = 0;
  std::uint64_t out_of_order_ = 0;
};

}  // namespace phalanx::stack::test
