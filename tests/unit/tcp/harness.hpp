// A conversation harness for TCP tests, after smoltcp's socket tests: the test plays the peer,
// send()s segments into the connection under test, expects its answers with recv(), checks that
// it stays quiet with recv_nothing(), and passes time explicitly with tick().
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tcp/connection.hpp"

namespace phalanx::tcp::test {

using namespace std::chrono_literals;
using wire::tcpflag::kAck;
using wire::tcpflag::kFin;
using wire::tcpflag::kPsh;
using wire::tcpflag::kRst;
using wire::tcpflag::kSyn;

inline constexpr std::uint16_t kLocalPort = 80;
inline constexpr std::uint16_t kRemotePort = 49152;
inline constexpr std::uint32_t kLocalIss = 1000;  // our ISS in most tests
inline constexpr std::uint32_t kRemoteIss = 5000;

inline FourTuple test_tuple() {
  return FourTuple{wire::Ipv4Addr{10, 0, 0, 1}, kLocalPort, wire::Ipv4Addr{10, 0, 0, 2},
                   kRemotePort};
}

// Small numbers so that windows and segment sizes read easily: MSS 1000, 10000-byte buffers, no
// options unless a test turns them on.
inline Config plain_config() {
  Config c;
  c.mss = 1000;
  c.send_buffer_size = 10000;
  c.recv_buffer_size = 10000;
  c.window_scaling = false;
  c.timestamps = false;
  c.sack = false;
  c.time_wait = 10s;
  return c;
}

inline std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    v[i] = static_cast<std::byte>(s[i]);
  }
  return v;
}

// A segment as the test writes it; `.ack(n)` also sets the ACK flag.
struct Seg {
  std::uint32_t seq_ = 0;
  std::uint32_t ack_ = 0;
  std::uint8_t flags_ = 0;
  std::uint16_t win_ = 0;
  wire::TcpOptions opts_;
  std::vector<std::byte> data_;

  Seg& seq(std::uint32_t s) {
    seq_ = s;
    return *this;
  }
  Seg& ack(std::uint32_t a) {
    ack_ = a;
    flags_ |= kAck;
    return *this;
  }
  Seg& syn() {
    flags_ |= kSyn;
    return *this;
  }
  Seg& fin() {
    flags_ |= kFin;
    return *this;
  }
  Seg& rst() {
    flags_ |= kRst;
    return *this;
  }
  Seg& psh() {
    flags_ |= kPsh;
    return *this;
  }
  Seg& win(std::uint16_t w) {
    win_ = w;
    return *this;
  }
  Seg& mss(std::uint16_t m) {
    opts_.mss = m;
    return *this;
  }
  Seg& ws(std::uint8_t s) {
    opts_.window_scale = s;
    return *this;
  }
  Seg& sack_ok() {
    opts_.sack_permitted = true;
    return *this;
  }
  Seg& ts(std::uint32_t val, std::uint32_t ecr) {
    opts_.timestamps = wire::TcpTimestamps{val, ecr};
    return *this;
  }
  Seg& sack(std::uint32_t left, std::uint32_t right) {
    opts_.sack_blocks[opts_.sack_count++] = wire::TcpSackBlock{left, right};
    return *this;
  }
  Seg& data(std::string_view s) {
    data_ = bytes_of(s);
    return *this;
  }
  Seg& data(std::vector<std::byte> d) {
    data_ = std::move(d);
    return *this;
  }

  // As a segment from the peer to us (`incoming`) or from us to the peer.
  wire::TcpRepr repr(bool incoming) const {
    wire::TcpRepr r;
    r.src_port = incoming ? kRemotePort : kLocalPort;
    r.dst_port = incoming ? kLocalPort : kRemotePort;
    r.seq = seq_;
    r.ack = ack_;
    r.flags = flags_;
    r.window = win_;
    r.options = opts_;
    r.payload = {data_.data(), data_.size()};
    return r;
  }
};

inline Seg seg() {
  return Seg{};
}

std::string describe(const wire::TcpRepr& r);

class Harness {
 public:
  explicit Harness(Connection c, Time start = Time{0}) : conn(std::move(c)), now(start) {}

  // Active open: SYN-SENT with ISS kLocalIss.
  static Harness connect(const Config& cfg, std::uint32_t iss = kLocalIss) {
    return Harness(Connection::connect(cfg, test_tuple(), Time{0}, SeqNum{iss}));
  }
  // Passive open from `syn`: SYN-RECEIVED with ISS kLocalIss.
  static Harness accept(const Config& cfg, const Seg& syn, std::uint32_t iss = kLocalIss) {
    return Harness(Connection::accept(cfg, test_tuple(), Time{0}, syn.repr(true), SeqNum{iss}));
  }
  // An ESTABLISHED connection from a handshake without options (active open): snd_nxt =
  // kLocalIss + 1, rcv_nxt = kRemoteIss + 1, peer window `peer_win`.
  static Harness established(const Config& cfg, std::uint16_t peer_win = 10000);

  // Failures are reported at the caller's line (__builtin_FILE/LINE work in gcc and clang 14).
  void send(const Seg& s, const char* file = __builtin_FILE(), int line = __builtin_LINE());
  void recv(const Seg& expected, const char* file = __builtin_FILE(), int line = __builtin_LINE());
  // The next output segment, whatever it is.
  std::optional<wire::TcpRepr> take();
  void recv_nothing(const char* file = __builtin_FILE(), int line = __builtin_LINE());
  // Passes time and runs the timers that came due.
  void tick(Duration d);
  // Runs time forward to the connection's next deadline.
  void to_deadline();

  std::size_t app_send(std::string_view s) {
    const auto b = bytes_of(s);
    return conn.send({b.data(), b.size()});
  }
  std::string app_recv() {
    std::string out(conn.recv_available(), '\0');
    std::vector<std::byte> buf(out.size());
    conn.recv({buf.data(), buf.size()});
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<char>(buf[i]);
    }
    return out;
  }
  // Our TSval at the current time.
  std::uint32_t tsval() const {
    return static_cast<std::uint32_t>(
               std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) +
           conn.tcb().ts_offset;
  }

  Connection conn;
  Time now;
};

}  // namespace phalanx::tcp::test
