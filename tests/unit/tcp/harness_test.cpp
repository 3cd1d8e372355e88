// The conversation harness (harness.hpp) and a check of its own helpers.
#include "harness.hpp"

#include <cstdio>

namespace phalanx::tcp::test {

std::string describe(const wire::TcpRepr& r) {
  std::string s;
  auto flag = [&](std::uint8_t f, const char* name) {
    if ((r.flags & f) != 0) {
      s += s.empty() ? "" : "|";
      s += name;
    }
  };
  flag(kSyn, "SYN");
  flag(kFin, "FIN");
  flag(kRst, "RST");
  flag(kPsh, "PSH");
  flag(kAck, "ACK");
  char buf[160];
  std::snprintf(buf, sizeof buf, " %u->%u seq=%u", r.src_port, r.dst_port, r.seq);
  s += buf;
  if ((r.flags & kAck) != 0) {
    std::snprintf(buf, sizeof buf, " ack=%u", r.ack);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, " win=%u", r.window);
  s += buf;
  const auto& o = r.options;
  if (o.mss) {
    s += " mss=" + std::to_string(*o.mss);
  }
  if (o.window_scale) {
    s += " ws=" + std::to_string(*o.window_scale);
  }
  if (o.sack_permitted) {
    s += " sackOK";
  }
  if (o.timestamps) {
    s += " ts=" + std::to_string(o.timestamps->tsval) + "/" + std::to_string(o.timestamps->tsecr);
  }
  for (const auto& b : o.sacks()) {
    s += " sack=" + std::to_string(b.left) + "-" + std::to_string(b.right);
  }
  s += " len=" + std::to_string(r.payload.size());
  if (!r.payload.empty()) {
    std::uint32_t h = 2166136261u;  // FNV-1a, to tell payloads apart
    for (std::byte b : r.payload) {
      h = (h ^ std::to_integer<std::uint8_t>(b)) * 16777619u;
    }
    std::snprintf(buf, sizeof buf, " data#%08x", h);
    s += buf;
  }
  return s;
}

Harness Harness::established(const Config& cfg, std::uint16_t peer_win) {
  Harness h = connect(cfg);
  h.recv(seg()
             .syn()
             .seq(kLocalIss)
             .win(static_cast<std::uint16_t>(cfg.recv_buffer_size))
             .mss(cfg.mss));
  h.send(seg().syn().seq(kRemoteIss).ack(kLocalIss + 1).win(peer_win).mss(cfg.mss));
  h.recv(seg()
             .seq(kLocalIss + 1)
             .ack(kRemoteIss + 1)
             .win(static_cast<std::uint16_t>(cfg.recv_buffer_size)));
  EXPECT_EQ(h.conn.state(), State::established);
  h.conn.take_events();
  return h;
}

void Harness::send(const Seg& s, const char* file, int line) {
  SCOPED_TRACE(testing::Message() << "send at " << file << ":" << line);
  conn.on_segment(now, s.repr(true));
  conn.check_invariants();
}

std::optional<wire::TcpRepr> Harness::take() {
  auto out = conn.poll_transmit(now);
  conn.check_invariants();
  return out;
}

void Harness::recv(const Seg& expected, const char* file, int line) {
  const auto out = take();
  const std::string want = describe(expected.repr(false));
  if (!out) {
    ADD_FAILURE_AT(file, line) << "expected " << want << "\n     got nothing";
    return;
  }
  const std::string got = describe(*out);
  if (got != want || !(*out == expected.repr(false))) {
    ADD_FAILURE_AT(file, line) << "expected " << want << "\n     got " << got;
  }
}

void Harness::recv_nothing(const char* file, int line) {
  const auto out = take();
  if (out) {
    ADD_FAILURE_AT(file, line) << "expected nothing, got " << describe(*out);
  }
}

void Harness::tick(Duration d) {
  now += d;
  if (conn.next_deadline() <= now) {
    conn.on_timer(now);
    conn.check_invariants();
  }
}

void Harness::to_deadline() {
  const Time t = conn.next_deadline();
  if (t != kNever && t > now) {
    now = t;
  }
  conn.on_timer(now);
  conn.check_invariants();
}

TEST(Harness, DescribesSegments) {
  const Seg s = seg().syn().seq(1).ack(2).win(3).mss(1460).data("x");
  EXPECT_EQ(describe(s.repr(false)),
            "SYN|ACK 80->49152 seq=1 ack=2 win=3 mss=1460 len=1 data#fd0c5087");
}

}  // namespace phalanx::tcp::test
