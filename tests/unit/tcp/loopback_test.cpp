// Two connections wired to each other through a lossy, reordering in-memory link, moving a few
// megabytes each way: every byte must arrive once and in order. One seed chooses every loss and
// delay; a failure prints it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "tcp/connection.hpp"

namespace phalanx::tcp {
namespace {

using namespace std::chrono_literals;

// splitmix64: small, fixed, ours (STYLE 9).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // True with probability per_mille / 1000.
  bool chance(std::uint32_t per_mille) { return next() % 1000 < per_mille; }
  std::uint64_t below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t s_;
};

// A segment in flight: a copy of the header and payload (the sender's buffer moves on).
struct InFlight {
  Time arrival;
  std::uint64_t order;
  wire::TcpRepr repr;
  std::vector<std::byte> payload;
};

struct Link {
  std::uint32_t loss_per_mille = 0;
  std::uint32_t reorder_per_mille = 0;
  Duration delay = 5ms;
  std::deque<InFlight> queue;
};

struct Endpoint {
  Connection conn;
  std::vector<std::byte> to_send;
  std::size_t sent = 0;
  std::vector<std::byte> received;
  bool shut = false;
};

std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
  Rng r(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) {
    b = static_cast<std::byte>(r.next());
  }
  return v;
}

struct Outcome {
  bool ok = false;
  Time finished{0};
  std::string why;
};

std::string describe(const char* what, const Endpoint& e) {
  std::string s = what;
  s += ": state " + std::string(to_string(e.conn.state()));
  s += ", reason " +
       (e.conn.close_reason() ? std::string(to_string(*e.conn.close_reason())) : std::string("-"));
  s += ", sent " + std::to_string(e.sent) + "/" + std::to_string(e.to_send.size());
  s += ", received " + std::to_string(e.received.size());
  s += ", snd_una " + std::to_string(e.conn.tcb().snd_una.raw()) + " snd_nxt " +
       std::to_string(e.conn.tcb().snd_nxt.raw()) + " snd_max " +
       std::to_string(e.conn.tcb().snd_max.raw()) + " rcv_nxt " +
       std::to_string(e.conn.tcb().rcv_nxt.raw()) + " snd_wnd " +
       std::to_string(e.conn.tcb().snd_wnd) + "; ";
  return s;
}

Outcome transfer(std::uint64_t seed, std::uint32_t loss, std::size_t bytes, CongestionAlgorithm cc,
                 bool options) {
  Config cfg;
  cfg.send_buffer_size = 64 * 1024;
  cfg.recv_buffer_size = 64 * 1024 + 17;  // an odd size: the rings wrap at odd places
  cfg.time_wait = 60s;                    // long enough to answer every retransmitted FIN
  cfg.congestion = cc;
  cfg.timestamps = options;
  cfg.sack = options;
  cfg.window_scaling = options;
  cfg.rto_min = 50ms;
  cfg.data_retries = 30;
  cfg.isn_secret.key = {seed, ~seed};
  const FourTuple a_tuple{wire::Ipv4Addr{10, 0, 0, 1}, 40000, wire::Ipv4Addr{10, 0, 0, 2}, 80};
  const FourTuple b_tuple{a_tuple.remote_addr, a_tuple.remote_port, a_tuple.local_addr,
                          a_tuple.local_port};
  Rng rng(seed);
  Time now{0};
  const bool trace = std::getenv("PHALANX_LOOPBACK_TRACE") != nullptr;
  // A starts near the wrap of the sequence space to cross it mid-transfer.
  Endpoint a{Connection::connect(cfg, a_tuple, now, SeqNum{0xffff0000u}),
             pattern(bytes, seed),
             0,
             {},
             false};
  std::optional<Endpoint> b;
  Link ab{loss, loss / 2, 5ms, {}};
  Link ba{loss, loss / 2, 5ms, {}};
  std::uint64_t order = 0;
  std::vector<std::byte> buf(16384);

  auto pump = [&](Endpoint& e, Link& link) {
    // Application: push what fits, read what arrived, shut down once all is sent.
    while (e.sent < e.to_send.size()) {
      const std::size_t n = e.conn.send(
          {e.to_send.data() + e.sent, std::min<std::size_t>(e.to_send.size() - e.sent, 9000)});
      if (n == 0) {
        break;
      }
      e.sent += n;
    }
    if (e.sent == e.to_send.size() && !e.shut) {
      e.conn.shutdown();
      e.shut = true;
    }
    for (;;) {
      const std::size_t n = e.conn.recv({buf.data(), buf.size()});
      if (n == 0) {
        break;
      }
      e.received.insert(e.received.end(), buf.begin(), buf.begin() + static_cast<long>(n));
    }
    e.conn.take_events();
    while (auto seg = e.conn.poll_transmit(now)) {
      if (rng.chance(link.loss_per_mille)) {
        continue;
      }
      InFlight f{now + link.delay, order++, *seg, {seg->payload.begin(), seg->payload.end()}};
      if (rng.chance(link.reorder_per_mille)) {
        f.arrival += Duration{static_cast<std::int64_t>(rng.below(20'000'000))};  // up to 20 ms
      }
      link.queue.push_back(std::move(f));
    }
    e.conn.check_invariants();
  };

  // What the stack does for a segment to a connection that is gone: RFC 9293 CLOSED rules.
  auto answer_closed = [&](Link& back, const wire::TcpRepr& seg) {
    if (auto rst = Connection::reset_for(seg); rst && !rng.chance(back.loss_per_mille)) {
      back.queue.push_back(InFlight{now + back.delay, order++, *rst, {}});
    }
  };

  for (int step = 0; step < 2'000'000; ++step) {
    pump(a, ab);
    if (b) {
      pump(*b, ba);
    }
    const bool a_done = a.conn.state() == State::closed || a.conn.state() == State::time_wait;
    const bool b_done = b && (b->conn.state() == State::closed);
    if (a_done && b_done && ab.queue.empty() && ba.queue.empty()) {
      const bool ok = a.received == b->to_send && b->received == a.to_send &&
                      // A side may see the other's RST when the other's TIME-WAIT ended
                      // before its last FIN retransmission got through (a stack answers
                      // closed ports so); it never times out.
                      a.conn.close_reason() != CloseReason::timeout &&
                      b->conn.close_reason() != CloseReason::timeout;
      return Outcome{ok, now, describe("A", a) + describe("B", *b)};
    }
    // Next event: the earliest arrival or timer.
    Time next = std::min(a.conn.next_deadline(), b ? b->conn.next_deadline() : kNever);
    auto earliest = [](const Link& l) {
      Time t = kNever;
      for (const auto& f : l.queue) {
        t = std::min(t, f.arrival);
      }
      return t;
    };
    next = std::min({next, earliest(ab), earliest(ba)});
    if (next == kNever) {
      // Deadlock: nothing will ever happen again.
      return Outcome{false, now, "stuck; " + describe("A", a) + (b ? describe("B", *b) : "")};
    }
    now = std::max(now, next);
    auto deliver = [&](Link& l, auto&& to) {
      std::stable_sort(l.queue.begin(), l.queue.end(), [](const InFlight& x, const InFlight& y) {
        return x.arrival < y.arrival || (x.arrival == y.arrival && x.order < y.order);
      });
      while (!l.queue.empty() && l.queue.front().arrival <= now) {
        InFlight f = std::move(l.queue.front());
        l.queue.pop_front();
        f.repr.payload = {f.payload.data(), f.payload.size()};
        if (trace) {
          std::fprintf(stderr, "%.6f %u->%u seq=%u ack=%u flags=%02x win=%u len=%zu ts=%u/%u\n",
                       std::chrono::duration<double>(now).count(), f.repr.src_port, f.repr.dst_port,
                       f.repr.seq, f.repr.ack, f.repr.flags, f.repr.window, f.payload.size(),
                       f.repr.options.timestamps ? f.repr.options.timestamps->tsval : 0,
                       f.repr.options.timestamps ? f.repr.options.timestamps->tsecr : 0);
        }
        to(f.repr);
      }
    };
    deliver(ab, [&](const wire::TcpRepr& seg) {
      if (!b) {
        if (Connection::classify_for_listen(seg) != ListenVerdict::accept) {
          return;
        }
        b.emplace(Endpoint{
            Connection::accept(cfg, b_tuple, now, seg), pattern(bytes, seed + 1), 0, {}, false});
        return;
      }
      if (b->conn.state() == State::closed) {
        answer_closed(ba, seg);
        return;
      }
      b->conn.on_segment(now, seg);
    });
    deliver(ba, [&](const wire::TcpRepr& seg) {
      if (a.conn.state() == State::closed) {
        answer_closed(ab, seg);
        return;
      }
      a.conn.on_segment(now, seg);
    });
    if (a.conn.next_deadline() <= now) {
      a.conn.on_timer(now);
    }
    if (b && b->conn.next_deadline() <= now) {
      b->conn.on_timer(now);
    }
  }
  return Outcome{false, now, "too many steps; " + describe("A", a) + (b ? describe("B", *b) : "")};
}

struct Case {
  std::uint32_t loss_per_mille;
  std::size_t bytes;
  CongestionAlgorithm cc;
  bool options;
};

class Loopback : public testing::TestWithParam<Case> {};

// Seeds 1..3 by default; PHALANX_LOOPBACK_SEEDS=N runs 1..N, PHALANX_LOOPBACK_SEED=S only S.
std::pair<std::uint64_t, std::uint64_t> seed_range() {
  if (const char* one = std::getenv("PHALANX_LOOPBACK_SEED")) {
    const std::uint64_t s = std::strtoull(one, nullptr, 10);
    return {s, s};
  }
  if (const char* n = std::getenv("PHALANX_LOOPBACK_SEEDS")) {
    return {1, std::strtoull(n, nullptr, 10)};
  }
  return {1, 3};
}

TEST_P(Loopback, DeliversEveryByteOnceInOrder) {
  const Case c = GetParam();
  const auto [first, last] = seed_range();
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    const Outcome r = transfer(seed, c.loss_per_mille, c.bytes, c.cc, c.options);
    EXPECT_TRUE(r.ok) << "seed " << seed << " loss " << c.loss_per_mille << "/1000: " << r.why
                      << "\nreplay: PHALANX_LOOPBACK_SEED=" << seed
                      << " tcp_test --gtest_filter='*Loopback."
                      << testing::UnitTest::GetInstance()->current_test_info()->name() << "'";
    if (c.loss_per_mille == 0) {
      // Liveness on a clean link: a 64 KiB window over a 10 ms RTT moves 6.5 MB/s each way.
      EXPECT_LT(r.finished, 2s) << "seed " << seed;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Links, Loopback,
                         testing::Values(Case{0, 3 << 20, CongestionAlgorithm::new_reno, true},
                                         Case{10, 3 << 20, CongestionAlgorithm::new_reno, true},
                                         Case{50, 2 << 20, CongestionAlgorithm::new_reno, true},
                                         Case{200, 1 << 19, CongestionAlgorithm::new_reno, true},
                                         Case{10, 2 << 20, CongestionAlgorithm::new_reno, false},
                                         Case{50, 1 << 20, CongestionAlgorithm::new_reno, false},
                                         Case{200, 1 << 18, CongestionAlgorithm::new_reno, false},
                                         Case{10, 3 << 20, CongestionAlgorithm::cubic, true},
                                         Case{50, 2 << 20, CongestionAlgorithm::cubic, true}));

}  // namespace
}  // namespace phalanx::tcp
