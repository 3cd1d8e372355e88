// TCP through frames: RST for closed ports, a whole conversation against a handler, callbacks
// that re-enter the stack, 10,000 concurrent connections, and a SYN flood.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "harness.hpp"

namespace phalanx::stack::test {
namespace {

using namespace wire::tcpflag;

// A remote TCP speaking to the stack one segment at a time; it tracks its own sequence numbers
// and the stack's.
class Client {
 public:
  Client(Harness& h, wire::Ipv4Addr ip, std::uint16_t port, std::uint16_t server_port = 80)
      : h_(h), ip_(ip), port_(port), server_port_(server_port) {}

  wire::TcpRepr segment(std::uint8_t flags, wire::Bytes payload = {}) const {
    wire::TcpRepr r;
    r.src_port = port_;
    r.dst_port = server_port_;
    r.seq = snd_nxt_;
    r.ack = (flags & kAck) ? rcv_nxt_ : 0;
    r.flags = flags;
    r.window = 65535;
    r.payload = payload;
    if (timestamps_) {
      r.options.timestamps = wire::TcpTimestamps{tsval_, ts_recent_};
    }
    return r;
  }

  // A Linux-like SYN: MSS, window scale, SACK-permitted and timestamps.
  wire::TcpRepr linux_syn() const {
    wire::TcpRepr syn = segment(kSyn);
    syn.options.mss = 1460;
    syn.options.window_scale = 7;
    syn.options.sack_permitted = true;
    syn.options.timestamps = wire::TcpTimestamps{500, 0};
    return syn;
  }

  void send(const wire::TcpRepr& r) {
    h_.send(ip_frame(Ip{.src = ip_, .protocol = wire::ipproto::kTcp}, bytes(tcp(ip_, kOurIp, r))));
    snd_nxt_ = r.seq + static_cast<std::uint32_t>(r.payload.size()) + (r.has(kSyn) ? 1 : 0) +
               (r.has(kFin) ? 1 : 0);
    ++tsval_;
  }
  void send(std::uint8_t flags, wire::Bytes payload = {}) { send(segment(flags, payload)); }
  void send(std::uint8_t flags, const std::string& text) {
    send(segment(flags, wire::Bytes(reinterpret_cast<const std::byte*>(text.data()), text.size())));
  }

  // The next segment the stack sent, which must be for this client.
  wire::TcpRepr recv() {
    const Frame f = h_.recv();
    const Parsed p = parse(f);
    EXPECT_EQ(p.eth.dst, kClientMac);
    EXPECT_TRUE(p.ip && p.ip->dst == ip_ && p.ip->dont_fragment);
    wire::TcpRepr seg = parse_tcp(f);
    EXPECT_EQ(seg.dst_port, port_);
    if (seg.has(kSyn)) {
      rcv_nxt_ = seg.seq + 1;
    } else if (seg.seq == rcv_nxt_) {
      rcv_nxt_ += static_cast<std::uint32_t>(seg.payload.size()) + (seg.has(kFin) ? 1 : 0);
    }
    if (seg.options.timestamps) {
      ts_recent_ = seg.options.timestamps->tsval;
    }
    // Keep the payload: the frame goes away.
    last_payload_.assign(reinterpret_cast<const char*>(seg.payload.data()), seg.payload.size());
    seg.payload = {};
    return seg;
  }

  // Opens the connection: SYN, SYN-ACK, ACK.
  void connect(bool options = false) {
    wire::TcpRepr syn = segment(kSyn);
    if (options) {
      syn.options.mss = 1460;
      syn.options.window_scale = 7;
      syn.options.sack_permitted = true;
      syn.options.timestamps = wire::TcpTimestamps{tsval_, 0};
      timestamps_ = true;
    }
    send(syn);
    const wire::TcpRepr synack = recv();
    EXPECT_EQ(synack.flags, kSyn | kAck);
    EXPECT_EQ(synack.ack, syn.seq + 1);
    send(kAck);
  }

  std::uint32_t snd_nxt() const { return snd_nxt_; }
  std::uint32_t rcv_nxt() const { return rcv_nxt_; }
  std::uint32_t tsval() const { return tsval_; }
  const std::string& last_payload() const { return last_payload_; }

 private:
  Harness& h_;
  wire::Ipv4Addr ip_;
  std::uint16_t port_;
  std::uint16_t server_port_;
  std::uint32_t snd_nxt_ = 1000;
  std::uint32_t rcv_nxt_ = 0;
  bool timestamps_ = false;
  std::uint32_t tsval_ = 500;
  std::uint32_t ts_recent_ = 0;
  std::string last_payload_;
};

// Echoes data, and closes its side when the peer closes; records what it saw.
class EchoHandler : public TcpHandler {
 public:
  explicit EchoHandler(Stack& stack) : stack_(stack) {}
  void on_open(ConnectionId id) override {
    ++opened;
    last = id;
    if (!greeting.empty()) {
      stack_.tcp_send(id, as_bytes(greeting));
    }
    if (shutdown_on_open) {
      stack_.tcp_shutdown(id);  // we close first: TIME-WAIT is ours
    }
  }
  std::size_t on_data(ConnectionId id, wire::Bytes data) override {
    received.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (abort_on_data) {
      EXPECT_TRUE(stack_.tcp_abort(id));
      return 0;
    }
    EXPECT_EQ(stack_.tcp_send(id, data), data.size());
    return data.size();
  }
  void on_writable(ConnectionId) override { ++writable; }
  void on_peer_closed(ConnectionId id) override {
    ++peer_closed;
    EXPECT_TRUE(stack_.tcp_shutdown(id));
  }
  void on_closed(ConnectionId, CloseReason r) override {
    ++closed;
    reason = r;
  }

  static wire::Bytes as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
  }

  int opened = 0;
  int writable = 0;
  int peer_closed = 0;
  int closed = 0;
  CloseReason reason = CloseReason::timed_out;
  ConnectionId last;
  std::string received;
  std::string greeting;
  bool abort_on_data = false;
  bool shutdown_on_open = false;

 private:
  Stack& stack_;
};

// ---- closed ports -------------------------------------------------------------------------

TEST(Tcp, ClosedPortAnswersWithRst) {
  Harness h;
  Client c(h, kClientIp, 40000, 81);
  // RFC 9293 §3.10.7.1: no ACK -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  c.send(kSyn);
  wire::TcpRepr rst = c.recv();
  EXPECT_EQ(rst.flags, kRst | kAck);
  EXPECT_EQ(rst.seq, 0u);
  EXPECT_EQ(rst.ack, 1001u);
  EXPECT_EQ(rst.src_port, 81);
  // With ACK -> <SEQ=SEG.ACK><CTL=RST>.
  wire::TcpRepr data = c.segment(kAck | kPsh, EchoHandler::as_bytes("x"));
  data.ack = 7777;
  c.send(data);
  rst = c.recv();
  EXPECT_EQ(rst.flags, kRst);
  EXPECT_EQ(rst.seq, 7777u);
  // Never an RST for an RST.
  c.send(kRst);
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::tcp_no_connection), 3u);
  EXPECT_EQ(h.counters().count(Counter::tcp_rst_sent), 2u);
}

TEST(Tcp, BadSegmentsAreCounted) {
  Harness h;
  Client c(h, kClientIp, 40000);
  Frame seg = tcp(kClientIp, kOurIp, c.segment(kSyn));
  seg[16] ^= std::byte{1};  // checksum
  h.send(ip_frame(Ip{.protocol = wire::ipproto::kTcp}, bytes(seg)));
  Frame shortened = tcp(kClientIp, kOurIp, c.segment(kSyn));
  shortened.resize(12);
  h.send(ip_frame(Ip{.protocol = wire::ipproto::kTcp}, bytes(shortened)));
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::tcp_bad_checksum), 1u);
  EXPECT_EQ(h.counters().drops(Drop::tcp_malformed), 1u);
}

// ---- a whole conversation ---------------------------------------------------------------------

TEST(Tcp, ConversationFromSynToFin) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  EXPECT_FALSE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);

  // SYN with MSS, window scale, SACK-permitted and timestamps.
  const wire::TcpRepr syn = c.linux_syn();
  c.send(syn);
  // SYN-ACK with the options answered.
  const wire::TcpRepr synack = c.recv();
  EXPECT_EQ(synack.flags, kSyn | kAck);
  EXPECT_EQ(synack.ack, 1001u);
  EXPECT_EQ(synack.options.mss, 1460);
  EXPECT_TRUE(synack.options.window_scale.has_value());
  EXPECT_TRUE(synack.options.sack_permitted);
  ASSERT_TRUE(synack.options.timestamps.has_value());
  EXPECT_EQ(synack.options.timestamps->tsecr, 500u);
  h.recv_nothing();
  EXPECT_EQ(app.opened, 0);
  EXPECT_EQ(h.stack().tcp_connection_count(), 1u);

  // ACK (the client keeps sending timestamps from now on).
  wire::TcpRepr ack = c.segment(kAck);
  ack.options.timestamps = wire::TcpTimestamps{501, synack.options.timestamps->tsval};
  c.send(ack);
  EXPECT_EQ(app.opened, 1);
  h.recv_nothing();
  const auto info = h.stack().tcp_info(app.last);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->remote, (Endpoint{kClientIp, 40000}));
  EXPECT_EQ(info->local, (Endpoint{kOurIp, 80}));

  // Data in, the echo out (carrying the ACK).
  wire::TcpRepr data = c.segment(kAck | kPsh, EchoHandler::as_bytes("hello\n"));
  data.options.timestamps = wire::TcpTimestamps{502, synack.options.timestamps->tsval};
  c.send(data);
  EXPECT_EQ(app.received, "hello\n");
  const wire::TcpRepr echo = c.recv();
  EXPECT_TRUE(echo.has(kAck));
  EXPECT_EQ(echo.ack, 1007u);
  EXPECT_EQ(echo.seq, synack.seq + 1);
  EXPECT_EQ(c.last_payload(), "hello\n");

  // FIN from the client: the handler closes its side in on_peer_closed.
  wire::TcpRepr fin = c.segment(kFin | kAck);
  fin.options.timestamps = wire::TcpTimestamps{503, echo.options.timestamps->tsval};
  c.send(fin);
  EXPECT_EQ(app.peer_closed, 1);
  wire::TcpRepr last = c.recv();
  if (!last.has(kFin)) {  // an ACK first, then the FIN
    last = c.recv();
  }
  EXPECT_TRUE(last.has(kFin));
  EXPECT_EQ(last.ack, 1008u);
  EXPECT_EQ(app.closed, 0);

  // The ACK of our FIN: LAST-ACK -> CLOSED; the slot is freed.
  wire::TcpRepr final_ack = c.segment(kAck);
  final_ack.options.timestamps = wire::TcpTimestamps{504, last.options.timestamps->tsval};
  c.send(final_ack);
  EXPECT_EQ(app.closed, 1);
  EXPECT_EQ(app.reason, CloseReason::closed);
  EXPECT_EQ(h.stack().tcp_connection_count(), 0u);
  h.recv_nothing();
  // The id is dead.
  EXPECT_EQ(h.stack().tcp_send(app.last, EchoHandler::as_bytes("late")), 0u);
  EXPECT_EQ(h.counters().count(Counter::tcp_stale_id), 1u);
  EXPECT_EQ(h.counters().count(Counter::tcp_accepted), 1u);
  EXPECT_EQ(h.counters().count(Counter::tcp_closed), 1u);
  EXPECT_EQ(h.counters().total_drops(), 0u);
  h.stack().check_invariants();
}

TEST(Tcp, CallbacksMayReenterTheStack) {
  Harness h;
  EchoHandler app(h.stack());
  app.greeting = "220 hello\r\n";  // sent from on_open
  app.abort_on_data = true;        // tcp_abort from on_data
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  const wire::TcpRepr greeting = c.recv();
  EXPECT_EQ(c.last_payload(), "220 hello\r\n");
  EXPECT_TRUE(greeting.has(kAck));
  c.send(kAck | kPsh, std::string("QUIT\r\n"));
  EXPECT_EQ(app.received, "QUIT\r\n");
  const wire::TcpRepr rst = c.recv();
  EXPECT_TRUE(rst.has(kRst));
  h.recv_nothing();
  EXPECT_EQ(app.closed, 0);  // an aborted connection gets no on_closed
  EXPECT_EQ(h.stack().tcp_connection_count(), 0u);
  h.stack().check_invariants();
}

TEST(Tcp, PeerResetIsReported) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  c.send(kRst);
  EXPECT_EQ(app.closed, 1);
  EXPECT_EQ(app.reason, CloseReason::reset_by_peer);
  EXPECT_EQ(h.stack().tcp_connection_count(), 0u);
}

// A live move (issue 11): the connection is served by another member from now on. The stack
// forgets it without a segment (no FIN, no RST, no retransmission of the unacknowledged data),
// and the application hears why.
TEST(Tcp, HandedOverConnectionIsForgottenWithoutASegment) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  c.send(kAck | kPsh, std::string("hello"));
  h.clear();  // the echo, unacknowledged
  ASSERT_EQ(app.opened, 1);
  EXPECT_TRUE(h.stack().tcp_hand_over(app.last));
  EXPECT_EQ(app.closed, 1);
  EXPECT_EQ(app.reason, CloseReason::handed_over);
  EXPECT_EQ(h.stack().tcp_connection_count(), 0u);
  EXPECT_EQ(h.counters().count(Counter::tcp_handed_over), 1u);
  h.advance(std::chrono::seconds(5));  // no retransmission, no keepalive
  h.recv_nothing();
  EXPECT_FALSE(h.stack().tcp_hand_over(app.last));  // stale
}

TEST(Tcp, ClosedConnectionsAddTheirRetransmissionsToTheStackCounters) {
  Harness h;
  EchoHandler app(h.stack());
  app.greeting = "220 hello\r\n";
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  const wire::TcpRepr first = c.recv();
  h.recv_nothing();
  // Never acknowledged: sent again at every retransmission timeout (backing off).
  h.advance(std::chrono::milliseconds(1500));
  std::uint64_t copies = 0;
  while (h.pending() > 0) {
    EXPECT_EQ(c.recv().seq, first.seq);
    EXPECT_EQ(c.last_payload(), "220 hello\r\n");
    ++copies;
  }
  EXPECT_GE(copies, 2u);
  // Counted when the connection's slot is freed, not before.
  EXPECT_EQ(h.counters().count(Counter::tcp_retransmits), 0u);
  c.send(kRst);
  EXPECT_EQ(h.stack().tcp_connection_count(), 0u);
  EXPECT_EQ(h.counters().count(Counter::tcp_retransmits), copies);
  EXPECT_EQ(h.counters().count(Counter::tcp_rto_expiries), copies);
  EXPECT_EQ(h.counters().count(Counter::tcp_fast_retransmits), 0u);
}

TEST(Tcp, SynAckIsRetransmittedByTheTimerWheel) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.send(kSyn);
  const wire::TcpRepr first = c.recv();
  const Time deadline = h.stack().next_deadline();
  EXPECT_GT(deadline, h.now());
  EXPECT_LE(deadline, h.now() + seconds(1));
  h.advance(deadline - h.now());
  const wire::TcpRepr again = c.recv();
  EXPECT_EQ(again.flags, kSyn | kAck);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_GE(h.counters().count(Counter::timers_fired), 1u);
}

// Sends a blob as fast as the send buffer allows, continuing from on_writable().
class BulkSender : public TcpHandler {
 public:
  BulkSender(Stack& stack, std::string blob) : stack_(stack), blob_(std::move(blob)) {}
  void on_open(ConnectionId id) override { push(id); }
  std::size_t on_data(ConnectionId, wire::Bytes data) override { return data.size(); }
  void on_writable(ConnectionId id) override {
    ++writable;
    push(id);
  }
  void on_peer_closed(ConnectionId) override {}
  void on_closed(ConnectionId, CloseReason) override {}
  int writable = 0;
  std::size_t partial_sends = 0;

 private:
  void push(ConnectionId id) {
    while (sent_ < blob_.size()) {
      const std::size_t want = blob_.size() - sent_;
      const std::size_t n = stack_.tcp_send(id, EchoHandler::as_bytes(blob_).subspan(sent_));
      sent_ += n;
      if (n < want) {
        ++partial_sends;
        return;
      }
    }
    stack_.tcp_shutdown(id);
  }
  Stack& stack_;
  std::string blob_;
  std::size_t sent_ = 0;
};

TEST(Tcp, BulkSendWithBackpressureArrivesWhole) {
  StackConfig config = default_config();
  config.tcp.send_buffer_size = 4096;
  Harness h(config);
  std::string blob(50000, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) {
    blob[i] = static_cast<char>('a' + i % 26);
  }
  BulkSender app(h.stack(), blob);
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  std::string got;
  bool fin = false;
  for (int round = 0; round < 1000 && !fin; ++round) {
    if (h.pending() == 0) {
      h.advance(milliseconds(200));  // let a timer (delayed segment, RTO) fire
      continue;
    }
    while (h.pending() > 0) {
      const wire::TcpRepr seg = c.recv();
      got += c.last_payload();
      fin = fin || seg.has(kFin);
    }
    c.send(kAck);  // cumulative
  }
  EXPECT_TRUE(fin);
  EXPECT_EQ(got.size(), blob.size());
  EXPECT_TRUE(got == blob);
  EXPECT_GT(app.partial_sends, 0u);
  EXPECT_GT(app.writable, 0);
  h.stack().check_invariants();
}

// Takes at most `budget` bytes, then leaves the rest with the stack.
class BudgetReader : public TcpHandler {
 public:
  void on_open(ConnectionId id) override { last = id; }
  std::size_t on_data(ConnectionId, wire::Bytes data) override {
    ++calls;
    const std::size_t n = std::min(data.size(), budget);
    budget -= n;
    got.append(reinterpret_cast<const char*>(data.data()), n);
    return n;
  }
  void on_writable(ConnectionId) override {}
  void on_peer_closed(ConnectionId) override { ++peer_closed; }
  void on_closed(ConnectionId, CloseReason) override { ++closed; }
  ConnectionId last;
  std::size_t budget = 0;
  std::string got;
  int calls = 0;
  int peer_closed = 0;
  int closed = 0;
};

TEST(Tcp, ReceivePauseClosesTheWindowAndResumeDeliversTheRestBeforeTheFin) {
  StackConfig config = default_config();
  config.tcp.recv_buffer_size = 4096;
  Harness h(config);
  BudgetReader app;
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  std::string sent;
  for (int i = 0; i < 4096; ++i) {
    sent += static_cast<char>('a' + i % 26);
  }
  // The application takes 1000 bytes, then nothing: the rest fills the receive buffer.
  app.budget = 1000;
  for (std::size_t at = 0; at < sent.size(); at += 1024) {
    c.send(kAck | kPsh, sent.substr(at, 1024));
  }
  EXPECT_EQ(app.got, sent.substr(0, 1000));
  EXPECT_EQ(app.calls, 1);  // paused: no offer per segment
  EXPECT_EQ(h.counters().count(Counter::tcp_receive_paused), 1u);
  // What does not fit is trimmed; the ACK says the window is what the held bytes leave.
  c.send(kAck | kPsh, std::string(2000, 'z'));
  h.advance(milliseconds(50));  // the delayed ACK
  wire::TcpRepr ack = c.recv();
  while (h.pending() > 0) {
    ack = c.recv();
  }
  EXPECT_EQ(ack.ack, 1001u + 4096u + 1000u);
  EXPECT_EQ(ack.window, 0u);
  // The FIN waits behind the held bytes.
  wire::TcpRepr fin = c.segment(kFin | kAck);
  fin.seq = ack.ack;
  c.send(fin);
  h.clear();
  EXPECT_EQ(app.peer_closed, 0);
  // Resumed from outside a callback: nothing is delivered inside the call, everything at the
  // next on_timer(), then the FIN.
  app.budget = 1 << 20;
  EXPECT_TRUE(h.stack().tcp_resume_receive(app.last));
  EXPECT_EQ(app.got.size(), 1000u);
  EXPECT_LE(h.stack().next_deadline(), h.now());
  h.advance(milliseconds(0));
  EXPECT_EQ(app.got, sent + std::string(1000, 'z'));
  EXPECT_EQ(app.peer_closed, 1);
  EXPECT_TRUE(h.stack().tcp_resume_receive(app.last));  // not paused: harmless
  h.stack().check_invariants();
}

// ---- scale --------------------------------------------------------------------------------

TEST(Tcp, TenThousandConcurrentConnectionsOpenAndClose) {
  StackConfig config = default_config();
  config.tcp.send_buffer_size = 4096;  // buffers are per connection: size them for the count
  config.tcp.recv_buffer_size = 4096;
  config.limits.syn_backlog = 16;
  Harness h(config);
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  constexpr int kCount = 10000;
  std::vector<Client> clients;
  clients.reserve(kCount);
  for (int i = 0; i < kCount; ++i) {
    clients.emplace_back(h, kClientIp, static_cast<std::uint16_t>(20000 + i));
    clients.back().connect();
  }
  h.recv_nothing();
  EXPECT_EQ(app.opened, kCount);
  EXPECT_EQ(h.stack().tcp_connection_count(), static_cast<std::size_t>(kCount));
  h.stack().check_invariants();
  // Idle established connections arm no timer; one that has unacknowledged data arms one, and
  // on_timer() does work for it alone.
  EXPECT_EQ(h.stack().next_deadline(), kNever);
  clients[1234].send(kAck | kPsh, std::string("hi"));
  clients[1234].recv();
  const std::uint64_t fired = h.counters().count(Counter::timers_fired);
  const Time rto = h.stack().next_deadline();
  ASSERT_NE(rto, kNever);
  h.advance(rto - h.now());
  EXPECT_EQ(clients[1234].recv().seq + 2, clients[1234].rcv_nxt());  // the retransmission
  h.recv_nothing();
  EXPECT_EQ(h.counters().count(Counter::timers_fired) - fired, 1u);
  clients[1234].send(kAck);
  // Each one says something and hears it back.
  for (Client& c : clients) {
    c.send(kAck | kPsh, std::string("ping"));
    c.recv();
    EXPECT_EQ(c.last_payload(), "ping");
  }
  for (Client& c : clients) {
    c.send(kFin | kAck);
    wire::TcpRepr seg = c.recv();
    if (!seg.has(kFin)) {
      seg = c.recv();
    }
    ASSERT_TRUE(seg.has(kFin));
    c.send(kAck);
  }
  h.recv_nothing();
  EXPECT_EQ(app.closed, kCount);
  EXPECT_EQ(h.stack().tcp_connection_count(), 0u);
  EXPECT_EQ(h.counters().total_drops(), 0u);
  h.stack().check_invariants();
}

// A small fixed generator (STYLE 9): xorshift64*.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ULL;
  }

 private:
  std::uint64_t s_;
};

// 100,000 SYNs from random sources in 10.0.0.0/8, with a legitimate client connecting halfway.
void flood(Harness& h, Client& legit, EchoHandler& app, int syns) {
  Rng rng(0x5eed);
  for (int i = 0; i < syns; ++i) {
    if (i == syns / 2) {
      legit.connect();
      EXPECT_EQ(app.opened, 1);
    }
    const std::uint64_t r = rng.next();
    const wire::Ipv4Addr src{static_cast<std::uint32_t>(0x0a000000u | (r & 0x00ffffffu))};
    Client attacker(h, src, static_cast<std::uint16_t>(1024 + (r >> 40) % 60000));
    h.send(ip_frame(Ip{.src = src, .protocol = wire::ipproto::kTcp},
                    bytes(tcp(src, kOurIp, attacker.segment(kSyn)))));
    h.clear();  // SYN-ACKs into the void
    ASSERT_LE(h.stack().tcp_connection_count(), 128u + 1u);
  }
}

TEST(Tcp, SynFloodIsAnsweredWithCookiesAndALegitimateClientGetsThrough) {
  Harness h;  // default buffers (256 KiB each way): cookies keep the flood from allocating them
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app, 128));
  Client legit(h, kClientIp, 40000);
  constexpr int kSyns = 100000;
  flood(h, legit, app, kSyns);
  // 128 half-open connections plus the legitimate one, which came through a cookie.
  EXPECT_EQ(h.stack().tcp_connection_count(), 128u + 1u);
  EXPECT_EQ(h.counters().count(Counter::syn_cookies_sent),
            static_cast<std::uint64_t>(kSyns - 128 + 1));
  EXPECT_EQ(h.counters().count(Counter::syn_cookies_accepted), 1u);
  EXPECT_EQ(h.counters().drops(Drop::tcp_syn_evicted), 0u);
  h.stack().check_invariants();
  legit.send(kAck | kPsh, std::string("still here"));
  legit.recv();
  EXPECT_EQ(legit.last_payload(), "still here");
  // The half-open ones time out on their own.
  h.advance(std::chrono::minutes(5));
  h.clear();
  EXPECT_EQ(h.stack().tcp_connection_count(), 1u);
}

TEST(Tcp, WithoutCookiesAFloodEvictsTheOldestHalfOpen) {
  StackConfig config = default_config();
  config.tcp.send_buffer_size = 4096;  // each SYN allocates its connection's buffers
  config.tcp.recv_buffer_size = 4096;
  config.limits.syn_cookies = false;
  Harness h(config);
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app, 128));
  Client legit(h, kClientIp, 40000);
  constexpr int kSyns = 100000;
  flood(h, legit, app, kSyns);
  EXPECT_EQ(h.stack().tcp_connection_count(), 128u + 1u);
  // Every SYN after the first 128 evicted one, the legitimate SYN among them; its handshake then
  // completed and left a free place in the backlog, which one attacker SYN took.
  EXPECT_EQ(h.counters().drops(Drop::tcp_syn_evicted), static_cast<std::uint64_t>(kSyns - 128));
  h.stack().check_invariants();
  legit.send(kAck | kPsh, std::string("still here"));
  legit.recv();
  EXPECT_EQ(legit.last_payload(), "still here");
}

TEST(Tcp, ForgedCookiesAreReset) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app, 1));
  Client first(h, kClientIp, 40000);
  first.send(kSyn);  // fills the backlog of 1
  first.recv();
  Client c(h, kClientIp, 40001);
  c.send(kSyn);
  const wire::TcpRepr synack = c.recv();
  EXPECT_EQ(h.counters().count(Counter::syn_cookies_sent), 1u);
  // A cookie SYN-ACK offers MSS only.
  EXPECT_TRUE(synack.options.mss.has_value());
  EXPECT_FALSE(synack.options.window_scale.has_value());
  EXPECT_FALSE(synack.options.timestamps.has_value());
  wire::TcpRepr forged = c.segment(kAck);
  forged.ack = synack.seq + 2;
  c.send(forged);
  EXPECT_TRUE(c.recv().has(kRst));
  EXPECT_EQ(app.opened, 0);
  // The genuine ACK, later but within the cookie's life, opens the connection.
  h.advance(seconds(100));
  c.send(kAck);
  EXPECT_EQ(app.opened, 1);
  EXPECT_EQ(h.counters().count(Counter::syn_cookies_accepted), 1u);
}

TEST(Tcp, CookieSynAckKeepsWindowScaleSackAndTimestampsInTheTimestamp) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app, 1));
  Client first(h, kClientIp, 40000);
  first.send(kSyn);  // fills the backlog of 1
  first.recv();
  // A Linux-like SYN: MSS, window scale, SACK-permitted and timestamps.
  Client c(h, kClientIp, 40001);
  const wire::TcpRepr syn = c.linux_syn();
  c.send(syn);
  const wire::TcpRepr synack = c.recv();
  EXPECT_EQ(h.counters().count(Counter::syn_cookies_sent), 1u);
  EXPECT_EQ(h.stack().tcp_connection_count(), 1u);  // no state for the cookie
  // With timestamps, the cookie SYN-ACK offers what the SYN offered (as Linux does).
  EXPECT_EQ(synack.options.mss, 1460);
  ASSERT_TRUE(synack.options.window_scale.has_value());
  EXPECT_TRUE(synack.options.sack_permitted);
  ASSERT_TRUE(synack.options.timestamps.has_value());
  EXPECT_EQ(synack.options.timestamps->tsecr, 500u);
  const std::uint32_t our_ts = synack.options.timestamps->tsval;
  const std::uint8_t our_scale = *synack.options.window_scale;

  // The ACK echoes the TSval that carries the options: the connection opens with them.
  h.advance(milliseconds(10));
  wire::TcpRepr ack = c.segment(kAck);
  ack.window = 1000;  // scaled by 2^7: 128,000 bytes
  ack.options.timestamps = wire::TcpTimestamps{501, our_ts};
  c.send(ack);
  EXPECT_EQ(app.opened, 1);
  EXPECT_EQ(h.counters().count(Counter::syn_cookies_accepted), 1u);

  // Data in: the echo carries timestamps (newer than the cookie's) and a scaled window.
  wire::TcpRepr data = c.segment(kAck | kPsh, EchoHandler::as_bytes("hello"));
  data.window = 1000;
  data.options.timestamps = wire::TcpTimestamps{502, our_ts};
  c.send(data);
  const wire::TcpRepr echo = c.recv();
  EXPECT_EQ(c.last_payload(), "hello");
  ASSERT_TRUE(echo.options.timestamps.has_value());
  EXPECT_EQ(echo.options.timestamps->tsecr, 502u);
  EXPECT_GE(static_cast<std::int32_t>(echo.options.timestamps->tsval - our_ts), 0);
  EXPECT_GT(std::uint32_t{echo.window} << our_scale, 65535u);

  // Data beyond a gap: the duplicate ACK carries a SACK block.
  wire::TcpRepr gap = c.segment(kAck | kPsh, EchoHandler::as_bytes("later"));
  gap.seq += 100;
  gap.window = 1000;
  gap.options.timestamps = wire::TcpTimestamps{503, our_ts};
  c.send(gap);
  wire::TcpRepr dup = c.recv();
  while (h.pending() > 0 && dup.options.sack_count == 0) {
    dup = c.recv();
  }
  ASSERT_EQ(dup.options.sack_count, 1u);
  EXPECT_EQ(dup.options.sack_blocks[0].left, gap.seq);
  h.stack().check_invariants();
}

TEST(Tcp, CookieWithoutTimestampsCarriesTheMssOnly) {
  Harness h;
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app, 1));
  Client first(h, kClientIp, 40000);
  first.send(kSyn);
  first.recv();
  Client c(h, kClientIp, 40001);
  wire::TcpRepr syn = c.segment(kSyn);
  syn.options.mss = 1460;
  syn.options.window_scale = 7;
  syn.options.sack_permitted = true;
  c.send(syn);
  const wire::TcpRepr synack = c.recv();
  EXPECT_TRUE(synack.options.mss.has_value());
  EXPECT_FALSE(synack.options.window_scale.has_value());
  EXPECT_FALSE(synack.options.sack_permitted);
  EXPECT_FALSE(synack.options.timestamps.has_value());
  c.send(kAck);
  EXPECT_EQ(app.opened, 1);
}

// A cluster's members share cookie keys (Stack::set_cookie_keys()): a handshake one member
// answered completes on another, whose clock and ISN secret differ, from the peer's ACK alone.
TEST(Tcp, WithSharedCookieKeysAnotherStackCompletesTheHandshake) {
  const std::vector<CookieKey> keys = {CookieKey{tcp::IsnSecret{{7, 8}}, 41},
                                       CookieKey{tcp::IsnSecret{{5, 6}}, 40}};
  StackConfig config_a = default_config();
  config_a.secret = tcp::IsnSecret{{1, 2}};
  StackConfig config_b = default_config();
  config_b.secret = tcp::IsnSecret{{3, 4}};
  Harness a(config_a);
  Harness b(config_b);
  a.advance(seconds(900));  // the members' clocks disagree
  a.stack().set_cookie_keys(keys);
  b.stack().set_cookie_keys(keys);
  EchoHandler app_a(a.stack());
  EchoHandler app_b(b.stack());
  ASSERT_TRUE(a.stack().tcp_listen(80, &app_a));
  ASSERT_TRUE(b.stack().tcp_listen(80, &app_b));

  // A SYN with timestamps: answered with every option, a cookie for our ISS, and the options in
  // our TSval's low bits.
  Client c(a, kClientIp, 40001);
  const wire::TcpRepr syn = c.linux_syn();
  c.send(syn);
  const wire::TcpRepr synack = c.recv();
  EXPECT_EQ(a.stack().tcp_connection_count(), 1u);  // half-open, as without keys
  EXPECT_EQ(a.counters().count(Counter::syn_cookies_sent), 0u);
  ASSERT_TRUE(synack.options.window_scale.has_value());
  EXPECT_TRUE(synack.options.sack_permitted);
  ASSERT_TRUE(synack.options.timestamps.has_value());
  const std::uint32_t cookie_ts = synack.options.timestamps->tsval;

  // The member that answered dies; the ACK with the first data reaches another one.
  wire::TcpRepr data = c.segment(kAck | kPsh, EchoHandler::as_bytes("hello"));
  data.window = 1000;  // scaled by 2^7
  data.options.timestamps = wire::TcpTimestamps{501, cookie_ts};
  b.send(ip_frame(Ip{.src = kClientIp, .protocol = wire::ipproto::kTcp},
                  bytes(tcp(kClientIp, kOurIp, data))));
  EXPECT_EQ(app_b.opened, 1);
  EXPECT_EQ(b.counters().count(Counter::syn_cookies_accepted), 1u);
  const Frame f = b.recv();
  const wire::TcpRepr echo = parse_tcp(f);
  EXPECT_EQ(echo.ack, data.seq + 5);
  EXPECT_EQ(echo.payload.size(), 5u);
  ASSERT_TRUE(echo.options.timestamps.has_value());
  EXPECT_EQ(echo.options.timestamps->tsecr, 501u);
  // Newer than the cookie's TSval, which b's clock knew nothing of (RFC 7323 PAWS).
  EXPECT_GT(static_cast<std::int32_t>(echo.options.timestamps->tsval - cookie_ts), 0);
  EXPECT_GT(std::uint32_t{echo.window} << *synack.options.window_scale, 65535u);

  // A forged cookie is reset as any stray ACK.
  Client forger(b, kClientIp, 40002);
  wire::TcpRepr forged = forger.segment(kAck);
  forged.ack = synack.seq + 1;
  forger.send(forged);
  EXPECT_TRUE(forger.recv().has(kRst));
  EXPECT_EQ(app_b.opened, 1);

  // Without timestamps the cookie could not carry the options: the SYN is answered as before.
  Client old(a, kClientIp, 40003);
  wire::TcpRepr plain = old.segment(kSyn);
  plain.options.mss = 1460;
  plain.options.window_scale = 7;
  old.send(plain);
  const wire::TcpRepr plain_synack = old.recv();
  EXPECT_TRUE(plain_synack.options.window_scale.has_value());
  EXPECT_EQ(a.stack().tcp_connection_count(), 2u);
  a.stack().check_invariants();
  b.stack().check_invariants();
}

// StackLimits::hold_until_replicated: a new connection acknowledges none of the peer's data and
// sends none of its own until the layer above (its backup holds the session) moves the limits.
TEST(Tcp, HoldUntilReplicatedKeepsANewConnectionAtTheHandshake) {
  StackConfig config = default_config();
  config.limits.hold_until_replicated = true;
  Harness h(config);
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  const std::uint32_t handshake = c.snd_nxt();
  c.send(kAck | kPsh, std::string("request"));
  EXPECT_EQ(app.received, "request");  // the application has it
  // Nothing acknowledges it, and the echo waits.
  h.advance(milliseconds(500));
  while (h.pending() > 0) {
    const wire::TcpRepr seg = c.recv();
    EXPECT_EQ(seg.ack, handshake);
    EXPECT_TRUE(c.last_payload().empty());
  }
  EXPECT_EQ(h.stack().tcp_connection(app.last)->tcb().snd_nxt,
            h.stack().tcp_connection(app.last)->tcb().iss + 1);
  // The backup holds the session: the limits go, the ACK and the echo leave.
  h.stack().tcp_set_limits(app.last, std::nullopt, std::nullopt);
  h.collect();
  wire::TcpRepr echo = c.recv();
  EXPECT_EQ(echo.ack, handshake + 7);
  if (c.last_payload().empty() && h.pending() > 0) {
    echo = c.recv();  // the held ACK first
    EXPECT_EQ(echo.ack, handshake + 7);
  }
  EXPECT_EQ(c.last_payload(), "request");
}

// Opens a connection from `c` to an EchoHandler with shutdown_on_open and closes it: the stack
// closed first, so the 4-tuple stays in TIME-WAIT.
void reach_time_wait(Harness& h, Client& c, bool options) {
  c.connect(options);
  const wire::TcpRepr fin = c.recv();
  ASSERT_TRUE(fin.has(kFin));
  c.send(kFin | kAck);
  const wire::TcpRepr last = c.recv();
  ASSERT_EQ(last.flags, kAck);
  ASSERT_EQ(last.ack, c.snd_nxt());
  ASSERT_EQ(h.stack().tcp_connection_count(), 1u);  // TIME-WAIT holds the 4-tuple
}

TEST(Tcp, TimeWaitTakesASynWithAHigherSequenceNumberAsANewConnection) {
  Harness h;
  EchoHandler app(h.stack());
  app.shutdown_on_open = true;
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  reach_time_wait(h, c, false);
  const std::uint32_t old_snd_max = c.rcv_nxt();  // our last sequence number + 1
  h.advance(seconds(5));

  // An old duplicate SYN (below the old connection's sequence space) is no new connection: it
  // gets an ACK of the old one, which stays in TIME-WAIT.
  Client stale(h, kClientIp, 40000);
  stale.send(kSyn);
  const wire::TcpRepr old_ack = stale.recv();
  EXPECT_EQ(old_ack.flags, kAck);
  EXPECT_EQ(old_ack.ack, c.snd_nxt());
  EXPECT_EQ(app.opened, 1);

  // The client reuses its port with a higher ISN (a NAT, a load generator): RFC 1122 4.2.2.13
  // lets it open a new connection, as Linux does.
  Client again(h, kClientIp, 40000);
  wire::TcpRepr syn = again.segment(kSyn);
  syn.seq = c.snd_nxt() + 100000;
  again.send(syn);
  const wire::TcpRepr synack = again.recv();
  EXPECT_EQ(synack.flags, kSyn | kAck);
  EXPECT_EQ(synack.ack, syn.seq + 1);
  // Our new ISS is beyond everything the old connection sent.
  EXPECT_GT(static_cast<std::int32_t>(synack.seq - old_snd_max), 0);
  again.send(kAck);
  EXPECT_EQ(app.opened, 2);
  EXPECT_EQ(h.counters().count(Counter::tcp_time_wait_reused), 1u);
  EXPECT_EQ(h.stack().tcp_connection_count(), 1u);
  h.stack().check_invariants();
}

TEST(Tcp, TimeWaitWithTimestampsTakesASynWithANewerTimestamp) {
  Harness h;
  EchoHandler app(h.stack());
  app.shutdown_on_open = true;
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  reach_time_wait(h, c, true);
  h.advance(seconds(5));

  // RFC 6191: with timestamps, an older timestamp is an old duplicate, whatever its sequence
  // number; it gets an ACK of the old connection.
  Client stale(h, kClientIp, 40000);
  wire::TcpRepr old_syn = stale.segment(kSyn);
  old_syn.seq = c.snd_nxt() + 100000;
  old_syn.options.mss = 1460;
  old_syn.options.timestamps = wire::TcpTimestamps{c.tsval() - 100, 0};
  stale.send(old_syn);
  EXPECT_EQ(stale.recv().flags, kAck);
  EXPECT_EQ(app.opened, 1);

  // A newer timestamp opens a new connection even with a lower sequence number.
  Client again(h, kClientIp, 40000);
  wire::TcpRepr syn = again.segment(kSyn);
  syn.seq = 7;
  syn.options.mss = 1460;
  syn.options.window_scale = 7;
  syn.options.sack_permitted = true;
  syn.options.timestamps = wire::TcpTimestamps{c.tsval() + 5000, 0};
  again.send(syn);
  const wire::TcpRepr synack = again.recv();
  EXPECT_EQ(synack.flags, kSyn | kAck);
  EXPECT_EQ(synack.ack, 8u);
  ASSERT_TRUE(synack.options.timestamps.has_value());
  EXPECT_EQ(synack.options.timestamps->tsecr, c.tsval() + 5000);
  wire::TcpRepr ack = again.segment(kAck);
  ack.options.timestamps = wire::TcpTimestamps{c.tsval() + 5001, synack.options.timestamps->tsval};
  again.send(ack);
  EXPECT_EQ(app.opened, 2);
  EXPECT_EQ(h.counters().count(Counter::tcp_time_wait_reused), 1u);
  h.stack().check_invariants();
}

TEST(Tcp, TimeWaitHoldingUnreadBytesIsNotReused) {
  Harness h;
  BudgetReader app;  // takes nothing until given a budget
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  Client c(h, kClientIp, 40000);
  c.connect();
  c.send(kAck | kPsh, std::string("held"));
  ASSERT_TRUE(h.stack().tcp_shutdown(app.last));
  h.collect();
  wire::TcpRepr fin = c.recv();
  while (!fin.has(kFin) && h.pending() > 0) {
    fin = c.recv();
  }
  ASSERT_TRUE(fin.has(kFin));
  c.send(kFin | kAck);
  h.clear();
  ASSERT_EQ(h.stack().tcp_connection_count(), 1u);  // TIME-WAIT, with 4 bytes for the app
  EXPECT_EQ(app.closed, 0);
  // A new SYN does not take the 4-tuple while the application has bytes of the old one: it is
  // answered as the old connection's.
  Client again(h, kClientIp, 40000);
  wire::TcpRepr syn = again.segment(kSyn);
  syn.seq = c.snd_nxt() + 100000;
  again.send(syn);
  EXPECT_EQ(again.recv().flags, kAck);
  EXPECT_EQ(h.counters().count(Counter::tcp_time_wait_reused), 0u);
  // Once the application has taken them, the client's retransmitted SYN opens a connection.
  app.budget = 100;
  ASSERT_TRUE(h.stack().tcp_resume_receive(app.last));
  h.advance(milliseconds(0));
  EXPECT_EQ(app.got, "held");
  EXPECT_EQ(app.closed, 1);
  again.send(syn);
  const wire::TcpRepr synack = again.recv();
  EXPECT_EQ(synack.flags, kSyn | kAck);
  EXPECT_EQ(synack.ack, syn.seq + 1);
  EXPECT_EQ(h.counters().count(Counter::tcp_time_wait_reused), 1u);
  h.stack().check_invariants();
}

TEST(Tcp, ConnectionLimitRefusesSynsWhenNothingIsHalfOpen) {
  StackConfig config = default_config();
  config.limits.max_connections = 4;
  config.tcp.send_buffer_size = 4096;
  config.tcp.recv_buffer_size = 4096;
  Harness h(config);
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app));
  std::vector<Client> clients;
  clients.reserve(5);
  for (std::uint16_t i = 0; i < 4; ++i) {
    clients.emplace_back(h, kClientIp, static_cast<std::uint16_t>(30000 + i));
    clients.back().connect();
  }
  clients.emplace_back(h, kClientIp, 30004);
  clients.back().send(kSyn);
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::tcp_connection_limit), 1u);
  EXPECT_EQ(h.stack().tcp_connection_count(), 4u);
}

TEST(Tcp, TimersStopBeforeTheTransmitRingOverflows) {
  StackConfig config = default_config();
  config.limits.tx_ring_frames = 32;
  config.tcp.send_buffer_size = 4096;
  config.tcp.recv_buffer_size = 4096;
  Harness h(config);
  EchoHandler app(h.stack());
  ASSERT_TRUE(h.stack().tcp_listen(80, &app, 200));
  // 100 half-open connections, all with their SYN-ACK retransmission due at the same moment.
  for (std::uint16_t i = 0; i < 100; ++i) {
    Client c(h, kClientIp, static_cast<std::uint16_t>(10000 + i));
    c.send(kSyn);
    h.clear();
  }
  const Time due = h.stack().next_deadline();
  Stack& stack = h.stack();
  std::size_t sent = 0;
  int calls = 0;
  // The driver's loop: on_timer while due, draining after each call.
  while (stack.next_deadline() <= due && calls < 100) {
    stack.on_timer(due);
    ++calls;
    stack.drain([&](wire::Bytes) { ++sent; });
  }
  EXPECT_EQ(sent, 100u);
  EXPECT_GT(calls, 1);  // it stopped early at least once
  EXPECT_EQ(h.counters().drops(Drop::tx_queue_full), 0u);
}

}  // namespace
}  // namespace phalanx::stack::test
