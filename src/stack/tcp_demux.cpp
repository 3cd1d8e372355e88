// TCP demultiplexing: segments to connections by 4-tuple in O(1), listeners with a bounded SYN
// backlog, RST for segments to closed ports (RFC 9293 §3.10.7.1), and the glue between
// tcp::Connection and the application's TcpHandler: transmit, events, callbacks, timers.
//
// SYN floods: a listener holds at most `backlog` half-open connections. A SYN that finds the
// backlog full is answered with a SYN cookie (syn_cookie.hpp) and no state; the ACK carrying a
// valid cookie creates the connection. With limits.syn_cookies off, such a SYN evicts the oldest
// half-open connection instead (Drop::tcp_syn_evicted): memory stays bounded, and a legitimate
// client, whose ACK follows its SYN within a round trip, still gets through unless the flood
// sends more than `backlog` SYNs within that round trip.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "stack/stack_impl.hpp"
#include "stack/syn_cookie.hpp"
#include "wire/mix.hpp"
#include "wire/tcp.hpp"

namespace phalanx::stack {

namespace {

CloseReason to_close_reason(tcp::CloseReason r) {
  switch (r) {
    case tcp::CloseReason::reset:
      return CloseReason::reset_by_peer;
    case tcp::CloseReason::timeout:
      return CloseReason::timed_out;
    case tcp::CloseReason::normal:
    case tcp::CloseReason::aborted:  // never reported: the application knows
      return CloseReason::closed;
  }
  return CloseReason::closed;
}

// The options a SYN-ACK offers for `syn` (with timestamps), as a cookie keeps them.
CookieOptions offered_options(const tcp::Config& tc, const wire::TcpRepr& syn) {
  CookieOptions kept;
  if (syn.options.window_scale && tc.window_scaling) {
    kept.window_scale = syn.options.window_scale;
  }
  kept.sack_permitted = syn.options.sack_permitted && tc.sack;
  return kept;
}

}  // namespace

std::size_t StackImpl::TupleHash::operator()(std::uint64_t key) const {
  // Keyed with the secret: the 4-tuples are chosen by remote hosts, and an unkeyed hash would let
  // them aim at one bucket.
  return static_cast<std::size_t>(wire::fmix64(key ^ seed));
}

// ---- input ----------------------------------------------------------------------------------

void StackImpl::tcp_input(Time now, const wire::Ipv4View& ip, NextHop from) {
  auto seg = wire::TcpRepr::parse(ip.payload(), ip.src(), ip.dst());
  // A header within the datagram, the checksum with the pseudo-header, well-formed options.
  if (!seg) {
    switch (seg.error()) {
      case wire::Error::bad_checksum:
        counters_.add(Drop::tcp_bad_checksum);
        break;
      case wire::Error::bad_option:
        counters_.add(Drop::tcp_bad_option);
        break;
      default:
        counters_.add(Drop::tcp_malformed);
        break;
    }
    return;
  }
  // An existing connection: the common case, one hash lookup.
  auto it = tuples_.find(tuple_key(ip.src(), seg->src_port, seg->dst_port));
  if (it != tuples_.end()) {
    const std::uint32_t index = it->second;
    if (tcp_reopen_time_wait(now, *seg, ip.src(), from, index)) {
      return;
    }
    Slot& s = slots_[index];
    if (from.mac) {
      s.peer_mac = from.mac;
    }
    s.conn->on_segment(now, *seg);
    service(now, index);
    return;
  }
  // A listener: a plain SYN opens a connection (RFC 9293 §3.10.7.2).
  auto l = listeners_.find(seg->dst_port);
  if (l != listeners_.end()) {
    switch (tcp::Connection::classify_for_listen(*seg)) {
      case tcp::ListenVerdict::accept:
        if (filter_ != nullptr && !filter_->may_open(now, ip.src(), seg->src_port)) {
          counters_.add(Drop::tcp_open_refused);
          return;
        }
        tcp_accept(now, *seg, ip.src(), from);
        return;
      case tcp::ListenVerdict::drop:
        counters_.add(Drop::tcp_listener_refused);
        return;
      case tcp::ListenVerdict::reset:
        // An ACK completing a handshake we answered with a cookie.
        if (config_.limits.syn_cookies && tcp_accept_cookie(now, *seg, ip.src(), from)) {
          return;
        }
        break;
    }
  }
  // CLOSED: answer with RST, except an RST (RFC 9293 §3.10.7.1), unless the filter knows better.
  counters_.add(Drop::tcp_no_connection);
  if (filter_ != nullptr && !filter_->may_reset(now, ip.src(), seg->src_port)) {
    return;
  }
  send_tcp_reset(now, *seg, ip.src(), from);
}

void StackImpl::send_tcp_reset(Time now, const wire::TcpRepr& seg, wire::Ipv4Addr src,
                               NextHop from) {
  const std::optional<wire::TcpRepr> rst = tcp::Connection::reset_for(seg);
  if (!rst || from.to_group) {
    return;
  }
  if (send_ipv4(now, src, wire::ipproto::kTcp, rst->size(), from,
                [&](wire::MutBytes out) { rst->emit(out, config_.address, src); })) {
    counters_.add(Counter::tcp_rst_sent);
  }
}

bool StackImpl::tcp_reopen_time_wait(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src,
                                     NextHop from, std::uint32_t index) {
  Slot& s = slots_[index];
  // RFC 6191 §2 and RFC 1122 4.2.2.13: a SYN whose timestamp (or, without timestamps, whose
  // sequence number) is newer than anything of the old incarnation ends TIME-WAIT and opens a
  // new connection, as Linux does; any other SYN goes to the connection, which answers it with
  // an ACK of the old one. Clients that reuse ports quickly (NAT, load generators) need this.
  if (!s.conn->accepts_new_incarnation(syn) || !listeners_.contains(syn.dst_port)) {
    return false;
  }
  // TIME-WAIT may still hold bytes the application has not taken (deliver_events): they are
  // not dropped for a new connection; the SYN is answered as the old connection's, and the
  // client's retransmission finds the 4-tuple free once the application is done.
  if (s.opened && !s.app_done) {
    return false;
  }
  const tcp::SeqNum iss = s.conn->successor_iss(now);
  free_slot(index);
  counters_.add(Counter::tcp_time_wait_reused);
  // With the backlog full the SYN gets a cookie as any other would (and the cookie's ISS).
  tcp_accept(now, syn, src, from, iss);
  return true;
}

void StackImpl::tcp_accept(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src, NextHop from,
                           std::optional<tcp::SeqNum> iss) {
  Listener& l = listeners_.at(syn.dst_port);
  // A cluster's handshakes: our ISS is a cookie of the cluster's and our SYN-ACK's TSval carries
  // the options, so that whichever member serves the workset when the peer's ACK comes can
  // complete it (Stack::set_cookie_keys()). We keep the half-open connection all the same: it
  // retransmits the SYN-ACK and takes the peer's first segments in any order.
  const tcp::Config& tc = config_.tcp;
  std::optional<std::uint32_t> ts_bits;
  if (!cookie_keys_.empty() && syn.options.timestamps && tc.timestamps && !tc.no_options) {
    iss = tcp::SeqNum{cookie_for(now, syn, src).iss};
    ts_bits = cookie_ts_bits(offered_options(tc, syn));
  }
  // Room in the backlog: with cookies, the SYN-ACK carries the state; without, the oldest
  // half-open connection makes way.
  if (l.half_open >= l.backlog) {
    if (config_.limits.syn_cookies) {
      send_syn_cookie(now, syn, src, from);
      return;
    }
    counters_.add(Drop::tcp_syn_evicted);
    free_slot(l.oldest);
  }
  // Room in the table: a full one makes room only from this listener's own half-open ones.
  if (tuples_.size() >= config_.limits.max_connections) {
    if (l.half_open == 0) {
      counters_.add(Drop::tcp_connection_limit);
      return;
    }
    counters_.add(Drop::tcp_syn_evicted);
    free_slot(l.oldest);
  }
  const std::uint32_t index = alloc_slot();
  Slot& s = slots_[index];
  const tcp::FourTuple tuple{config_.address, syn.dst_port, src, syn.src_port};
  s.conn.emplace(tcp::Connection::accept(config_.tcp, tuple, now, syn, iss));
  if (ts_bits) {
    s.conn->set_syn_tsval_bits(*ts_bits, kCookieTsBits);
  }
  hold_new(*s.conn);
  s.handler = l.handler;
  s.listen_port = syn.dst_port;
  s.peer_mac = from.mac;
  s.half_open = true;
  s.backlog_prev = l.newest;
  s.backlog_next = kNoSlot;
  if (l.newest != kNoSlot) {
    slots_[l.newest].backlog_next = index;
  } else {
    l.oldest = index;
  }
  l.newest = index;
  ++l.half_open;
  tuples_.emplace(tuple_key(src, syn.src_port, syn.dst_port), index);
  service(now, index);
}

std::uint32_t StackImpl::alloc_slot() {
  if (!free_slots_.empty()) {
    const std::uint32_t index = free_slots_.back();
    free_slots_.pop_back();
    return index;
  }
  slots_.emplace_back();  // within the reserved capacity: never moves the others
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

void StackImpl::hold_new(tcp::Connection& conn) const {
  if (config_.limits.hold_until_replicated) {
    conn.set_ack_limit(conn.ack_wanted());
    conn.set_send_limit(conn.tcb().iss + 1);
  }
}

SynCookie StackImpl::cookie_for(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src) const {
  const tcp::FourTuple tuple{config_.address, syn.dst_port, src, syn.src_port};
  const std::uint16_t wanted =
      std::min<std::uint16_t>(syn.options.mss.value_or(536), config_.tcp.mss);
  if (cookie_keys_.empty()) {
    return make_syn_cookie(config_.secret, tuple, syn.seq, wanted, now);
  }
  return make_syn_cookie(cookie_keys_.front().secret, tuple, syn.seq, wanted,
                         std::int64_t{cookie_keys_.front().generation});
}

void StackImpl::send_syn_cookie(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src,
                                NextHop from) {
  const tcp::FourTuple tuple{config_.address, syn.dst_port, src, syn.src_port};
  const SynCookie cookie = cookie_for(now, syn, src);
  wire::TcpRepr synack;
  synack.src_port = syn.dst_port;
  synack.dst_port = syn.src_port;
  synack.seq = cookie.iss;
  synack.ack = syn.seq + 1;
  synack.flags = wire::tcpflag::kSyn | wire::tcpflag::kAck;
  synack.window =
      static_cast<std::uint16_t>(std::min<std::size_t>(config_.tcp.recv_buffer_size, 0xffff));
  synack.options.mss = config_.tcp.mss;
  // With timestamps, window scaling and SACK ride in our TSval's low bits (syn_cookie.hpp), and
  // are offered as a listener's SYN-ACK would offer them; without, only MSS is offered.
  const tcp::Config& tc = config_.tcp;
  if (syn.options.timestamps && tc.timestamps && !tc.no_options) {
    const CookieOptions kept = offered_options(tc, syn);
    if (kept.window_scale) {
      synack.options.window_scale = tcp::Connection::window_scale_for(tc);
    }
    synack.options.sack_permitted = kept.sack_permitted;
    synack.options.timestamps =
        wire::TcpTimestamps{cookie_tsval(tcp::Connection::tsval_at(tc, tuple, now), kept),
                            syn.options.timestamps->tsval};
  }
  if (send_ipv4(now, src, wire::ipproto::kTcp, synack.size(), from,
                [&](wire::MutBytes out) { synack.emit(out, config_.address, src); })) {
    counters_.add(Counter::syn_cookies_sent);
  }
}

bool StackImpl::tcp_accept_cookie(Time now, const wire::TcpRepr& ack, wire::Ipv4Addr src,
                                  NextHop from) {
  if (ack.has(wire::tcpflag::kSyn)) {
    return false;
  }
  const tcp::FourTuple tuple{config_.address, ack.dst_port, src, ack.src_port};
  std::optional<std::uint16_t> mss;
  for (const CookieKey& k : cookie_keys_) {
    if (!mss) {
      mss = check_syn_cookie(k.secret, tuple, ack.seq - 1, ack.ack - 1, std::int64_t{k.generation});
    }
  }
  if (!mss) {
    mss = check_syn_cookie(config_.secret, tuple, ack.seq - 1, ack.ack - 1, now);
  }
  if (!mss) {
    return false;  // forged, stale, or for a connection we evicted: RST as for any stray ACK
  }
  // Another member may have answered the SYN: the filter's reasons to open nothing (a pause, a
  // minority) hold for its cookie too.
  if (filter_ != nullptr && !filter_->may_open(now, src, ack.src_port)) {
    counters_.add(Drop::tcp_open_refused);
    return true;
  }
  if (tuples_.size() >= config_.limits.max_connections) {
    counters_.add(Drop::tcp_connection_limit);
    return true;
  }
  // Rebuild the SYN the cookie stands for and accept it with the cookie as our ISS; the SYN-ACK
  // the new connection would send went out already (as the cookie), so it is discarded.
  wire::TcpRepr syn;
  syn.src_port = ack.src_port;
  syn.dst_port = ack.dst_port;
  syn.seq = ack.seq - 1;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = ack.window;
  syn.options.mss = *mss;
  // The options our SYN-ACK offered come back in the TSecr (syn_cookie.hpp). Its TSval was up to
  // 2^kCookieTsBits - 1 ms behind our clock: the first RTT sample is as much too long, on the
  // safe side, and the next ones correct it.
  if (ack.options.timestamps && config_.tcp.timestamps && !config_.tcp.no_options) {
    const CookieOptions kept = cookie_options(ack.options.timestamps->tsecr);
    syn.options.window_scale = kept.window_scale;
    syn.options.sack_permitted = kept.sack_permitted;
    syn.options.timestamps = wire::TcpTimestamps{ack.options.timestamps->tsval, 0};
  }
  const std::uint32_t index = alloc_slot();
  Slot& s = slots_[index];
  s.conn.emplace(tcp::Connection::accept(config_.tcp, tuple, now, syn, tcp::SeqNum{ack.ack - 1}));
  if (syn.options.timestamps) {
    // The peer holds the cookie's TSval, from whichever member's clock: ours go on after it.
    s.conn->keep_tsval_after(now, ack.options.timestamps->tsecr);
  }
  hold_new(*s.conn);
  while (s.conn->poll_transmit(now)) {
  }
  s.handler = listeners_.at(ack.dst_port).handler;
  s.listen_port = ack.dst_port;
  s.peer_mac = from.mac;
  tuples_.emplace(tuple_key(src, ack.src_port, ack.dst_port), index);
  counters_.add(Counter::syn_cookies_accepted);
  s.conn->on_segment(now, ack);
  service(now, index);
  return true;
}

// ---- per-connection glue --------------------------------------------------------------------

bool StackImpl::emit_segment(Time now, Slot& slot, const wire::TcpRepr& seg) {
  const tcp::FourTuple& t = slot.conn->tuple();
  // A segment of more than one MSS piece (tcp::Config::max_offload_payload) goes to the link
  // whole, its checksum left for the link to finish per piece.
  const std::size_t mss = slot.conn->tcb().snd_mss;
  const std::size_t piece = mss > seg.options.size() ? mss - seg.options.size() : 1;
  Offload offload;
  auto checksum = wire::TcpRepr::Checksum::full;
  if (seg.payload.size() > piece) {
    offload = {static_cast<std::uint16_t>(piece), (seg.payload.size() + piece - 1) / piece};
    checksum = wire::TcpRepr::Checksum::partial;
  }
  return send_ipv4(
      now, t.remote_addr, wire::ipproto::kTcp, seg.size(), NextHop{slot.peer_mac, false},
      [&](wire::MutBytes out) { seg.emit(out, t.local_addr, t.remote_addr, checksum); }, offload);
}

bool StackImpl::transmit(Time now, Slot& s) {
  // A segment the ring cannot take would be lost until the retransmission timer found it (an
  // RTO and a collapsed cwnd for a burst the ring was merely too short for), so the connection
  // keeps it until the ring has room. A closed connection's last RST is sent or dropped at once:
  // its slot is freed on return.
  const bool closed = s.conn->state() == tcp::State::closed;
  for (;;) {
    if (!tx_room_for_segment() && !closed) {
      counters_.add(Counter::tcp_tx_deferred);
      return false;
    }
    const std::optional<wire::TcpRepr> seg = s.conn->poll_transmit(now);
    if (!seg) {
      return true;
    }
    // A half-open connection answers an unacceptable ACK with an RST (RFC 9293 §3.10.7.3). The
    // filter may know the ACK answers another host's SYN-ACK (two cluster members took the same
    // SYN): that RST would reset the client's real connection.
    if (seg->has(wire::tcpflag::kRst) && s.conn->state() == tcp::State::syn_received &&
        filter_ != nullptr &&
        !filter_->may_reset(now, s.conn->tuple().remote_addr, s.conn->tuple().remote_port)) {
      continue;
    }
    emit_segment(now, s, *seg);
  }
}

void StackImpl::service(Time now, std::uint32_t index) {
  Slot& s = slots_[index];
  if (s.in_service) {
    // Re-entered from one of this connection's own callbacks: the running loop goes again.
    s.again = true;
    return;
  }
  s.in_service = true;
  bool deferred = false;
  do {
    s.again = false;
    deferred = !transmit(now, s) || deferred;
    deliver_events(index, s.conn->take_events());
  } while (s.again);
  s.in_service = false;
  if (s.conn->state() == tcp::State::closed) {
    free_slot(index);
  } else {
    // Stopped at a full ring, or data to offer again: due at once, so that the driver drains
    // and on_timer() goes on where this left off (it waits for ring room before it runs one).
    const bool due_now = deferred || s.redeliver;
    s.redeliver = false;
    timers_.schedule(index, due_now ? now : s.conn->next_deadline());
  }
}

void StackImpl::deliver_events(std::uint32_t index, tcp::Events events) {
  Slot& s = slots_[index];
  const ConnectionId id{index, s.generation};
  if (events.has(tcp::Event::established) && !s.opened && !s.app_done) {
    s.opened = true;
    backlog_remove(index);
    counters_.add(Counter::tcp_accepted);
    s.handler->on_open(id);
  }
  if (!s.opened) {
    // Closed before the handshake completed (RST, SYN-ACK retries): the application never knew.
    if (events.has(tcp::Event::closed)) {
      s.app_done = true;
    }
    return;
  }
  if (events.has(tcp::Event::peer_fin)) {
    s.peer_fin_owed = true;
  }
  if (events.has(tcp::Event::closed)) {
    s.close_owed = true;
  }
  // In-order data, in as many pieces as the receive ring holds it, while the application takes
  // it. What it leaves stays in the ring and narrows the window.
  while (!s.app_done && !s.recv_paused && s.conn->recv_available() > 0) {
    const wire::Bytes data = s.conn->peek();
    if (data.empty()) {
      break;
    }
    s.resume_asked = false;
    const std::size_t taken = s.handler->on_data(id, data);
    if (s.app_done) {
      break;
    }
    if (taken > data.size()) {
      std::fprintf(stderr, "phalanx::stack: on_data() took %zu of %zu bytes\n", taken, data.size());
      std::abort();
    }
    if (taken > 0) {
      s.conn->consume(taken);
      s.again = true;  // the window opened: an update may be due
    }
    if (taken < data.size()) {
      if (s.resume_asked) {
        // It made room during this very call: the rest is offered again from the next
        // on_timer(), not in this loop, which a handler that never takes would spin.
        s.redeliver = true;
      } else {
        s.recv_paused = true;
        counters_.add(Counter::tcp_receive_paused);
      }
      break;
    }
  }
  if (!s.app_done && s.blocked && events.has(tcp::Event::writable) && s.conn->send_space() > 0) {
    s.blocked = false;
    s.handler->on_writable(id);
  }
  // The FIN follows the data: only once every byte before it was taken.
  if (!s.app_done && s.peer_fin_owed && s.conn->recv_available() == 0) {
    s.peer_fin_owed = false;
    s.handler->on_peer_closed(id);
  }
  // TIME-WAIT keeps the connection, and with it the held bytes: on_closed() waits for the
  // application to take them. CLOSED frees the slot on return: on_closed() now.
  const bool drained = s.conn->recv_available() == 0 && !s.peer_fin_owed;
  if (!s.app_done && s.close_owed && (drained || s.conn->state() == tcp::State::closed)) {
    s.app_done = true;
    s.handler->on_closed(
        id, to_close_reason(s.conn->close_reason().value_or(tcp::CloseReason::normal)));
  }
}

void StackImpl::backlog_remove(std::uint32_t index) {
  Slot& s = slots_[index];
  if (!s.half_open) {
    return;
  }
  s.half_open = false;
  auto l = listeners_.find(s.listen_port);
  if (l == listeners_.end()) {
    return;
  }
  Listener& L = l->second;
  if (s.backlog_prev != kNoSlot) {
    slots_[s.backlog_prev].backlog_next = s.backlog_next;
  } else {
    L.oldest = s.backlog_next;
  }
  if (s.backlog_next != kNoSlot) {
    slots_[s.backlog_next].backlog_prev = s.backlog_prev;
  } else {
    L.newest = s.backlog_prev;
  }
  s.backlog_prev = s.backlog_next = kNoSlot;
  --L.half_open;
}

void StackImpl::free_slot(std::uint32_t index) {
  Slot& s = slots_[index];
  backlog_remove(index);
  const tcp::FourTuple& t = s.conn->tuple();
  const tcp::Counters& c = s.conn->counters();
  counters_.add(Counter::tcp_retransmits, c.retransmits);
  counters_.add(Counter::tcp_fast_retransmits, c.fast_retransmits);
  counters_.add(Counter::tcp_rto_expiries, c.rto_expiries);
  tuples_.erase(tuple_key(t.remote_addr, t.remote_port, t.local_port));
  timers_.cancel(index);
  const std::uint32_t generation = s.generation + 1;
  s = Slot{};
  s.generation = generation;
  free_slots_.push_back(index);
  counters_.add(Counter::tcp_closed);
}

// ---- the application's calls ----------------------------------------------------------------

StackImpl::Slot* StackImpl::lookup(ConnectionId id) {
  if (id.index >= slots_.size()) {
    counters_.add(Counter::tcp_stale_id);
    return nullptr;
  }
  Slot& s = slots_[id.index];
  if (s.generation != id.generation || !s.conn || !s.opened || s.app_done) {
    counters_.add(Counter::tcp_stale_id);
    return nullptr;
  }
  return &s;
}

const StackImpl::Slot* StackImpl::lookup(ConnectionId id) const {
  if (id.index >= slots_.size()) {
    return nullptr;
  }
  const Slot& s = slots_[id.index];
  if (s.generation != id.generation || !s.conn || !s.opened || s.app_done) {
    return nullptr;
  }
  return &s;
}

bool StackImpl::tcp_listen(std::uint16_t port, TcpHandler* handler, std::size_t backlog) {
  if (handler == nullptr || listeners_.contains(port)) {
    return false;
  }
  Listener l;
  l.handler = handler;
  l.backlog = backlog == 0 ? config_.limits.syn_backlog : backlog;
  listeners_.emplace(port, l);
  return true;
}

bool StackImpl::tcp_unlisten(std::uint16_t port) {
  auto it = listeners_.find(port);
  if (it == listeners_.end()) {
    return false;
  }
  // Half-open connections finish their handshake with the handler, outside any backlog.
  for (std::uint32_t i = it->second.oldest; i != kNoSlot;) {
    Slot& s = slots_[i];
    i = s.backlog_next;
    s.half_open = false;
    s.backlog_prev = s.backlog_next = kNoSlot;
  }
  listeners_.erase(it);
  return true;
}

std::size_t StackImpl::tcp_send(ConnectionId id, wire::Bytes data) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return 0;
  }
  const std::size_t n = s->conn->send(data);
  // on_writable() is owed once the application has found the buffer full, whether by a short
  // count or by filling it exactly (then tcp_send_space() says 0 and it waits, as HttpServer
  // does): either way only a callback can tell it that space opened.
  if (n < data.size() || s->conn->send_space() == 0) {
    s->blocked = true;
  }
  if (n > 0) {
    service(now_, id.index);
  }
  return n;
}

std::size_t StackImpl::tcp_send_space(ConnectionId id) const {
  const Slot* s = lookup(id);
  return s == nullptr ? 0 : s->conn->send_space();
}

bool StackImpl::tcp_shutdown(ConnectionId id) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return false;
  }
  s->conn->shutdown();
  service(now_, id.index);
  return true;
}

bool StackImpl::tcp_abort(ConnectionId id) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return false;
  }
  s->app_done = true;
  s->conn->abort();
  service(now_, id.index);  // sends the RST; frees the slot unless a callback of it is running
  return true;
}

bool StackImpl::tcp_resume_receive(ConnectionId id) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return false;
  }
  s->resume_asked = true;
  if (!s->recv_paused) {
    return true;
  }
  s->recv_paused = false;
  if (s->in_service) {
    s->again = true;  // the running service() loop delivers when the callback returns
  } else {
    timers_.schedule(id.index, now_);  // the next on_timer() delivers (never a call back now)
  }
  return true;
}

bool StackImpl::set_nodelay(ConnectionId id, bool on) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return false;
  }
  s->conn->set_nodelay(on);
  service(now_, id.index);
  return true;
}

std::optional<TcpInfo> StackImpl::tcp_info(ConnectionId id) const {
  const Slot* s = lookup(id);
  if (s == nullptr) {
    return std::nullopt;
  }
  const tcp::FourTuple& t = s->conn->tuple();
  return TcpInfo{Endpoint{t.local_addr, t.local_port}, Endpoint{t.remote_addr, t.remote_port}};
}

// ---- session replication --------------------------------------------------------------------

std::optional<ConnectionId> StackImpl::tcp_adopt(tcp::Connection conn, TcpHandler* handler,
                                                 const wire::Bytes* app_state) {
  const tcp::FourTuple t = conn.tuple();
  // A restored connection for the served address, open, with an application to give it to.
  if (handler == nullptr || conn.state() == tcp::State::closed || t.local_addr != config_.address) {
    counters_.add(Drop::tcp_adopt_invalid);
    return std::nullopt;
  }
  // Its 4-tuple free: a connection we hold for it (the same one or an older incarnation) wins.
  const std::uint64_t key = tuple_key(t.remote_addr, t.remote_port, t.local_port);
  if (tuples_.contains(key)) {
    counters_.add(Drop::tcp_adopt_in_use);
    return std::nullopt;
  }
  // Room in the table: adoption evicts nothing.
  if (tuples_.size() >= config_.limits.max_connections) {
    counters_.add(Drop::tcp_connection_limit);
    return std::nullopt;
  }
  const std::uint32_t index = alloc_slot();
  Slot& s = slots_[index];
  s.conn.emplace(std::move(conn));
  s.handler = handler;
  s.listen_port = t.local_port;
  s.opened = true;  // on_adopted() stands for on_open(): Event::established is not delivered
  tuples_.emplace(key, index);
  counters_.add(Counter::tcp_adopted);
  const ConnectionId id{index, s.generation};
  if (app_state != nullptr) {
    const tcp::Connection& c = *s.conn;
    const std::uint64_t resume_at = tcp::seq_len(c.export_initial().iss + 1, c.send_end());
    if (!handler->on_adopted(id, *app_state, resume_at)) {
      counters_.add(Drop::tcp_adopt_invalid);
      tcp_abort(id);
      return std::nullopt;
    }
  } else {
    handler->on_adopted(id);
  }
  // The handler may have aborted it (freed at once) or sent already (serviced): go on only with
  // the same incarnation.
  if (slots_[index].conn && slots_[index].generation == id.generation) {
    service(now_, index);
  }
  return id;
}

const tcp::Connection* StackImpl::tcp_connection(ConnectionId id) const {
  const Slot* s = lookup(id);
  return s == nullptr ? nullptr : &*s->conn;
}

void StackImpl::tcp_for_each_open(
    const std::function<void(ConnectionId, const tcp::Connection&, TcpHandler&)>& fn) const {
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.conn && s.handler != nullptr && s.opened && !s.app_done) {
      fn(ConnectionId{i, s.generation}, *s.conn, *s.handler);
    }
  }
}

bool StackImpl::tcp_hand_over(ConnectionId id) {
  Slot* s = lookup(id);
  if (s == nullptr || s->in_service) {
    return false;
  }
  TcpHandler* handler = s->handler;
  s->app_done = true;
  counters_.add(Counter::tcp_handed_over);
  free_slot(id.index);
  handler->on_closed(id, CloseReason::handed_over);
  return true;
}

bool StackImpl::tcp_solicit_ack(ConnectionId id) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return false;
  }
  s->conn->solicit_ack();
  service(now_, id.index);
  return true;
}

bool StackImpl::tcp_set_limits(ConnectionId id, std::optional<tcp::AckLimit> ack,
                               std::optional<tcp::SeqNum> send) {
  Slot* s = lookup(id);
  if (s == nullptr) {
    return false;
  }
  s->conn->set_ack_limit(ack);
  s->conn->set_send_limit(send);
  service(now_, id.index);
  return true;
}

// ---- invariants -----------------------------------------------------------------------------

void StackImpl::check_invariants() const {
  auto fail = [](const char* what) {
    std::fprintf(stderr, "phalanx::stack invariant broken: %s\n", what);
    std::abort();
  };
  std::size_t live = 0;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (!s.conn) {
      if (timers_.deadline(i) != kNever) {
        fail("a free slot has a timer");
      }
      continue;
    }
    ++live;
    const tcp::FourTuple& t = s.conn->tuple();
    auto it = tuples_.find(tuple_key(t.remote_addr, t.remote_port, t.local_port));
    if (it == tuples_.end() || it->second != i) {
      fail("a connection is missing from the 4-tuple table");
    }
    if (s.conn->state() == tcp::State::closed) {
      fail("a closed connection was not freed");
    }
    if (s.in_service) {
      fail("service() left in_service set");
    }
    s.conn->check_invariants();
  }
  if (live != tuples_.size() || live + free_slots_.size() != slots_.size()) {
    fail("the 4-tuple table, the slots and the free list disagree");
  }
  for (const auto& [port, l] : listeners_) {
    std::size_t n = 0;
    for (std::uint32_t i = l.oldest; i != kNoSlot; i = slots_[i].backlog_next) {
      if (!slots_[i].half_open || slots_[i].listen_port != port) {
        fail("a backlog lists a connection that is not half-open on it");
      }
      ++n;
    }
    if (n != l.half_open || n > l.backlog) {
      fail("a backlog's count is wrong or over its bound");
    }
  }
}

}  // namespace phalanx::stack
