#include "sim/tcp_peer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string_view>

#include "sim/sim_content.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::sim {

namespace {

constexpr std::size_t kMaxHeader = 8192;
constexpr std::string_view kHeaderEnd = "\r\n\r\n";

// The Content-Length of a response head, or nullopt.
std::optional<std::uint64_t> content_length(std::string_view head) {
  constexpr std::string_view kName = "\r\ncontent-length:";
  for (std::size_t i = 0; i + kName.size() <= head.size(); ++i) {
    bool match = true;
    for (std::size_t j = 0; j < kName.size() && match; ++j) {
      const char c = head[i + j];
      const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      match = lower == kName[j];
    }
    if (!match) {
      continue;
    }
    std::size_t p = i + kName.size();
    while (p < head.size() && head[p] == ' ') {
      ++p;
    }
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(head.data() + p, head.data() + head.size(), v);
    if (ec != std::errc{} || end == head.data() + p) {
      return std::nullopt;
    }
    return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(StreamKind k) {
  switch (k) {
    case StreamKind::download:
      return "download";
    case StreamKind::echo:
      return "echo";
    case StreamKind::idle:
      return "idle";
  }
  return "unknown";
}

std::string_view to_string(ConnOutcome o) {
  switch (o) {
    case ConnOutcome::running:
      return "running";
    case ConnOutcome::completed:
      return "completed";
    case ConnOutcome::reset:
      return "reset";
    case ConnOutcome::timed_out:
      return "timed_out";
    case ConnOutcome::truncated:
      return "truncated";
    case ConnOutcome::bad_response:
      return "bad_response";
  }
  return "unknown";
}

struct TcpPeer::Conn {
  explicit Conn(tcp::Connection c) : tcp(std::move(c)) {}
  tcp::Connection tcp;
  std::string request;  // download: the request, sent from request_sent on
  std::size_t request_sent = 0;
  std::uint64_t echo_sent = 0;  // echo: stream bytes queued
  std::string header;           // download: the response head, until kHeaderEnd
  bool header_done = false;
  bool shut = false;
  Time next_write{0};    // echo: when the next chunk may go
  Time last_arrival{0};  // the last segment received (or the open)
  bool paused = false;   // idle: the head came back; quiet until quiet_until, then the rest
  Time quiet_until{0};
};

TcpPeer::TcpPeer(PeerConfig config, PeerObserver* observer)
    : config_(std::move(config)), observer_(observer), next_port_(config_.first_port) {}

TcpPeer::~TcpPeer() = default;

std::size_t TcpPeer::open_download(Time now, const std::string& path, std::uint64_t key,
                                   std::uint64_t size) {
  PeerConnection info;
  info.kind = StreamKind::download;
  info.key = key;
  info.length = size;
  info.remote_port = config_.http_port;
  std::string request = "GET /" + path + " HTTP/1.1\r\nHost: cluster\r\nConnection: close\r\n\r\n";
  return open(now, std::move(info), std::move(request));
}

std::size_t TcpPeer::open_echo(Time now, std::uint64_t key, std::uint64_t length) {
  PeerConnection info;
  info.kind = StreamKind::echo;
  info.key = key;
  info.length = length;
  info.remote_port = config_.echo_port;
  return open(now, std::move(info), {});
}

std::size_t TcpPeer::open_idle(Time now, std::uint64_t key, std::uint64_t head, Duration idle,
                               std::uint64_t length) {
  if (head == 0 || head >= length) {
    std::abort();  // no quiet phase between two parts: a caller bug
  }
  PeerConnection info;
  info.kind = StreamKind::idle;
  info.key = key;
  info.length = length;
  info.remote_port = config_.echo_port;
  info.head = head;
  info.idle = idle;
  return open(now, std::move(info), {});
}

std::size_t TcpPeer::open_burst(Time now, std::vector<ShortRequest> requests) {
  const std::size_t b = bursts_.size();
  queued_ += requests.size();
  bursts_.push_back(Burst{std::move(requests), 0, now});
  open_due_bursts(now);
  return b;
}

void TcpPeer::open_due_bursts(Time now) {
  for (std::size_t b = 0; b < bursts_.size(); ++b) {
    Burst& burst = bursts_[b];
    if (!burst.due || *burst.due > now || burst.next >= burst.requests.size()) {
      continue;
    }
    burst.due.reset();
    const ShortRequest r = burst.requests[burst.next++];
    --queued_;
    PeerConnection info;
    info.kind = StreamKind::download;
    info.key = r.key;
    info.length = r.size;
    info.remote_port = config_.http_port;
    info.burst = b;
    open(now, std::move(info),
         "GET /" + r.path + " HTTP/1.1\r\nHost: cluster\r\nConnection: close\r\n\r\n");
  }
}

std::uint16_t TcpPeer::take_port() {
  const std::size_t range = std::size_t{config_.last_ephemeral} - config_.first_ephemeral + 1;
  for (std::size_t tries = 0; tries < range; ++tries) {
    const std::uint16_t port = next_port_;
    next_port_ = port >= config_.last_ephemeral || port < config_.first_ephemeral
                     ? config_.first_ephemeral
                     : static_cast<std::uint16_t>(port + 1);
    const auto it = by_port_.find(port);
    if (it == by_port_.end() || conns_[it->second]->tcp.state() == tcp::State::closed) {
      return port;
    }
    ++counters_.ports_skipped;
  }
  std::abort();  // every ephemeral port held by a connection: a scenario bug
}

std::size_t TcpPeer::open(Time now, PeerConnection info, std::string request) {
  const std::uint16_t port = take_port();
  const tcp::FourTuple tuple{config_.address, port, config_.cluster_ip, info.remote_port};
  const std::size_t id = info_.size();
  info.peer = config_.index;
  info.id = id;
  info.local_port = port;
  info.opened = now;
  tcp::Config tcp = config_.tcp;
  if (info.kind == StreamKind::idle) {
    tcp.keepalive = true;
    tcp.keepalive_idle = config_.keepalive_idle;
    tcp.keepalive_interval = config_.keepalive_interval;
    tcp.keepalive_count = config_.keepalive_count;
  }
  info_.push_back(std::move(info));
  conns_.push_back(std::make_unique<Conn>(tcp::Connection::connect(tcp, tuple, now)));
  conns_.back()->request = std::move(request);
  conns_.back()->last_arrival = now;
  by_port_[port] = id;
  ++running_;
  if (observer_ != nullptr) {
    observer_->on_open(info_[id]);
  }
  pump(now, id);
  return id;
}

bool TcpPeer::quiet(std::size_t id, Time now) const {
  return info_[id].kind == StreamKind::idle && conns_[id]->paused && now < conns_[id]->quiet_until;
}

// --- input --------------------------------------------------------------------------------------

void TcpPeer::on_frame(Time now, wire::Bytes frame) {
  ++counters_.frames_in;
  auto eth = wire::EthernetView::parse(frame);
  if (!eth || eth->has_vlan()) {
    ++counters_.drop_malformed;
    return;
  }
  if (eth->dst() != config_.mac && !eth->dst().is_broadcast()) {
    ++counters_.drop_not_for_us;
    return;
  }
  const wire::Bytes payload = frame.subspan(wire::EthernetView::kHeaderSize);
  if (eth->ethertype() == wire::ethertype::kArp) {
    on_arp(now, payload);
    return;
  }
  if (eth->ethertype() != wire::ethertype::kIpv4) {
    ++counters_.drop_not_for_us;
    return;
  }
  auto ip = wire::Ipv4View::parse(payload);
  if (!ip || !ip->checksum_ok() || ip->is_fragment()) {
    ++counters_.drop_malformed;  // fragments are not modelled
    return;
  }
  if (ip->dst() != config_.address || ip->protocol() != wire::ipproto::kTcp) {
    ++counters_.drop_not_for_us;
    return;
  }
  on_tcp(now, eth->src(), ip->payload(), ip->src());
}

void TcpPeer::on_arp(Time now, wire::Bytes bytes) {
  auto arp = wire::ArpRepr::parse(bytes);
  if (!arp) {
    ++counters_.drop_malformed;
    return;
  }
  if (arp->sender_ip == config_.cluster_ip) {
    const bool first = !cluster_mac_;
    cluster_mac_ = arp->sender_mac;
    if (first) {
      for (std::size_t id = 0; id < conns_.size(); ++id) {
        transmit(now, id);
      }
    }
  }
  if (arp->operation == wire::ArpOperation::request && arp->target_ip == config_.address) {
    ++counters_.arp_replies;
    const wire::ArpRepr reply = wire::ArpRepr::reply_to(*arp, config_.mac);
    std::vector<std::byte> f(wire::EthernetView::kHeaderSize + wire::ArpView::kSize);
    wire::EthernetRepr{arp->sender_mac, config_.mac, std::nullopt, wire::ethertype::kArp}.emit(f);
    reply.emit(wire::MutBytes(f).subspan(wire::EthernetView::kHeaderSize));
    tx_.push_back(std::move(f));
  }
}

void TcpPeer::on_tcp(Time now, wire::MacAddr src_mac, wire::Bytes bytes, wire::Ipv4Addr src) {
  auto seg = wire::TcpRepr::parse(bytes, src, config_.address);
  if (!seg) {
    ++counters_.drop_malformed;
    return;
  }
  const auto it = by_port_.find(seg->dst_port);
  if (src != config_.cluster_ip || it == by_port_.end() ||
      info_[it->second].remote_port != seg->src_port) {
    // No connection: RFC 9293 §3.10.7.1, as Linux answers.
    ++counters_.drop_no_connection;
    if (const auto rst = tcp::Connection::reset_for(*seg)) {
      std::vector<std::byte> f(wire::EthernetView::kHeaderSize + wire::Ipv4View::kMinHeaderSize +
                               rst->size());
      wire::EthernetRepr{src_mac, config_.mac, std::nullopt, wire::ethertype::kIpv4}.emit(f);
      wire::Ipv4Repr ip;
      ip.src = config_.address;
      ip.dst = src;
      ip.protocol = wire::ipproto::kTcp;
      ip.ident = ident_++;
      ip.payload_len = static_cast<std::uint16_t>(rst->size());
      ip.emit(wire::MutBytes(f).subspan(wire::EthernetView::kHeaderSize));
      rst->emit(wire::MutBytes(f).subspan(wire::EthernetView::kHeaderSize +
                                          wire::Ipv4View::kMinHeaderSize),
                config_.address, src);
      tx_.push_back(std::move(f));
    }
    return;
  }
  const std::size_t id = it->second;
  if (seg->has(wire::tcpflag::kRst)) {
    info_[id].reset_by = src_mac;
  }
  if (quiet(id, now)) {
    ++info_[id].quiet_segments_in;
  }
  conns_[id]->last_arrival = now;
  conns_[id]->tcp.on_segment(now, *seg);
  pump(now, id);
}

// --- the application
// ------------------------------------------------------------------------------

void TcpPeer::pump(Time now, std::size_t id) {
  Conn& c = *conns_[id];
  (void)c.tcp.take_events();
  if (info_[id].outcome == ConnOutcome::running) {
    write(now, id);
    read(now, id);
  }
  PeerConnection& info = info_[id];
  if (info.kind == StreamKind::idle && info.outcome == ConnOutcome::running && !c.paused &&
      c.echo_sent == info.head && info.received == info.head) {
    // The head came back: quiet now; keepalive probes are all that leave until quiet_until.
    c.paused = true;
    c.quiet_until = now + info.idle;
    c.next_write = c.quiet_until;
  }
  if (info.outcome == ConnOutcome::running) {
    if (const auto reason = c.tcp.close_reason()) {
      const std::string phase = info.kind != StreamKind::idle ? std::string()
                                : quiet(id, now)              ? std::string(" in the quiet phase")
                                : c.paused ? std::string(" after the quiet phase")
                                           : std::string(" before the quiet phase");
      switch (*reason) {
        case tcp::CloseReason::reset:
          finish(now, id, ConnOutcome::reset,
                 fmt::format("RST from {}{}",
                             info.reset_by ? info.reset_by->to_string() : std::string("?"), phase));
          break;
        case tcp::CloseReason::timeout:
          finish(now, id, ConnOutcome::timed_out,
                 fmt::format("TCP gave up{} ({} retransmission timeouts; {} segments sent and {} "
                             "received while quiet)",
                             phase, c.tcp.counters().rto_expiries, info.quiet_segments_out,
                             info.quiet_segments_in));
          break;
        case tcp::CloseReason::normal:
        case tcp::CloseReason::aborted:
          finish(now, id, ConnOutcome::truncated, "closed before every byte arrived");
          break;
      }
    }
  }
  transmit(now, id);
}

void TcpPeer::write(Time now, std::size_t id) {
  Conn& c = *conns_[id];
  PeerConnection& info = info_[id];
  if (info.kind == StreamKind::download) {
    while (c.request_sent < c.request.size()) {
      const auto rest = std::as_bytes(std::span(c.request)).subspan(c.request_sent);
      const std::size_t n = c.tcp.send(rest);
      if (n == 0) {
        break;
      }
      c.request_sent += n;
    }
    return;
  }
  // Idle: the head first; the rest once the quiet phase is over.
  const std::uint64_t limit = info.kind == StreamKind::idle && !c.paused ? info.head : info.length;
  if (c.echo_sent < limit && now >= c.next_write) {
    const std::size_t room = c.tcp.send_space();
    if (room == 0) {
      c.next_write = now + config_.echo_interval;  // try again then
      return;
    }
    const auto n = static_cast<std::size_t>(
        std::min<std::uint64_t>({room, config_.echo_chunk, limit - c.echo_sent}));
    scratch_.resize(n);
    fill_content(info.key, c.echo_sent, scratch_);
    c.echo_sent += c.tcp.send(scratch_);
    c.next_write = now + config_.echo_interval;
  }
}

void TcpPeer::read(Time now, std::size_t id) {
  Conn& c = *conns_[id];
  PeerConnection& info = info_[id];
  for (;;) {
    const wire::Bytes ready = c.tcp.peek();
    if (ready.empty()) {
      break;
    }
    std::size_t used = 0;
    if (info.kind == StreamKind::download && !c.header_done) {
      // The head, byte by byte until its blank line: the body may follow in the same segment.
      while (used < ready.size() && !c.header_done) {
        c.header.push_back(static_cast<char>(ready[used++]));
        c.header_done = c.header.ends_with(kHeaderEnd);
        if (c.header.size() > kMaxHeader) {
          c.tcp.consume(used);
          finish(now, id, ConnOutcome::bad_response, "response head too long");
          return;
        }
      }
      c.tcp.consume(used);
      if (c.header_done) {
        if (!c.header.starts_with("HTTP/1.1 200 ")) {
          finish(now, id, ConnOutcome::bad_response,
                 "status line: " + c.header.substr(0, c.header.find('\r')));
          return;
        }
        const auto len = content_length(c.header);
        if (!len || *len != info.length) {
          finish(now, id, ConnOutcome::bad_response,
                 "Content-Length " + (len ? std::to_string(*len) : std::string("missing")) +
                     ", expected " + std::to_string(info.length));
          return;
        }
      }
      continue;
    }
    if (ready.size() > info.length - info.received) {
      c.tcp.consume(ready.size());
      finish(now, id, ConnOutcome::bad_response, "more bytes than expected");
      return;
    }
    if (observer_ != nullptr) {
      observer_->on_stream_bytes(info, info.received, ready);
    }
    info.received += ready.size();
    c.tcp.consume(ready.size());
  }
  const bool all =
      info.received == info.length && (info.kind != StreamKind::download || c.header_done);
  if (all && !c.shut) {
    c.shut = true;
    c.tcp.shutdown();
  }
  if (c.tcp.recv_finished()) {
    if (all) {
      finish(now, id, ConnOutcome::completed);
    } else {
      finish(now, id, ConnOutcome::truncated, "FIN before every byte arrived");
    }
  }
}

void TcpPeer::finish(Time now, std::size_t id, ConnOutcome outcome, std::string detail) {
  PeerConnection& info = info_[id];
  if (info.outcome != ConnOutcome::running) {
    return;
  }
  info.outcome = outcome;
  info.ended = now;
  info.detail = std::move(detail);
  --running_;
  if (outcome == ConnOutcome::bad_response) {
    conns_[id]->tcp.abort();
  }
  if (info.burst && bursts_[*info.burst].next < bursts_[*info.burst].requests.size()) {
    bursts_[*info.burst].due = now + config_.burst_gap;
  }
  if (observer_ != nullptr) {
    observer_->on_outcome(info);
  }
}

bool TcpPeer::wants_write(std::size_t id) const {
  const PeerConnection& info = info_[id];
  const Conn& c = *conns_[id];
  if (info.kind == StreamKind::download) {
    return false;
  }
  // Idle: nothing to write between the head and the quiet phase (waiting for the head's echo).
  const std::uint64_t limit = info.kind == StreamKind::idle && !c.paused ? info.head : info.length;
  return c.echo_sent < limit && c.tcp.state() == tcp::State::established;
}

// --- output -------------------------------------------------------------------------------------

void TcpPeer::transmit(Time now, std::size_t id) {
  if (!cluster_mac_) {
    ask_cluster_mac(now);
    return;  // the connection's own timers retransmit once the address is known
  }
  Conn& c = *conns_[id];
  while (auto seg = c.tcp.poll_transmit(now)) {
    if (quiet(id, now)) {
      ++info_[id].quiet_segments_out;
      // RFC 1122 4.2.3.6: a probe carries SND.UNA - 1 and no data.
      if (seg->payload.empty() && tcp::SeqNum{seg->seq} + 1 == c.tcp.tcb().snd_una) {
        ++info_[id].keepalive_probes;
      }
    }
    emit_tcp(*seg, *cluster_mac_);
  }
}

void TcpPeer::emit_tcp(const wire::TcpRepr& seg, wire::MacAddr dst_mac) {
  constexpr std::size_t kIp = wire::EthernetView::kHeaderSize;
  constexpr std::size_t kTcp = kIp + wire::Ipv4View::kMinHeaderSize;
  std::vector<std::byte> f(kTcp + seg.size());
  wire::EthernetRepr{dst_mac, config_.mac, std::nullopt, wire::ethertype::kIpv4}.emit(f);
  wire::Ipv4Repr ip;
  ip.src = config_.address;
  ip.dst = config_.cluster_ip;
  ip.protocol = wire::ipproto::kTcp;
  ip.ident = ident_++;
  ip.payload_len = static_cast<std::uint16_t>(seg.size());
  ip.emit(wire::MutBytes(f).subspan(kIp));
  seg.emit(wire::MutBytes(f).subspan(kTcp), config_.address, config_.cluster_ip);
  tx_.push_back(std::move(f));
}

void TcpPeer::ask_cluster_mac(Time now) {
  if (last_arp_ask_ && now < *last_arp_ask_ + kArpRetry) {
    return;
  }
  last_arp_ask_ = now;
  ++counters_.arp_requests;
  std::vector<std::byte> f(wire::EthernetView::kHeaderSize + wire::ArpView::kSize);
  wire::EthernetRepr{wire::MacAddr::broadcast(), config_.mac, std::nullopt, wire::ethertype::kArp}
      .emit(f);
  wire::ArpRepr::request(config_.mac, config_.address, config_.cluster_ip)
      .emit(wire::MutBytes(f).subspan(wire::EthernetView::kHeaderSize));
  tx_.push_back(std::move(f));
}

void TcpPeer::on_timer(Time now) {
  for (std::size_t id = 0; id < conns_.size(); ++id) {
    Conn& c = *conns_[id];
    const bool running = info_[id].outcome == ConnOutcome::running;
    if (running && now >= std::max(c.last_arrival, c.quiet_until) + config_.idle_timeout) {
      finish(now, id, ConnOutcome::timed_out, "nothing arrived for the idle timeout");
      c.tcp.abort();
      transmit(now, id);
      continue;
    }
    if (c.tcp.next_deadline() <= now || (running && wants_write(id) && now >= c.next_write)) {
      c.tcp.on_timer(now);
      pump(now, id);
    }
  }
  if (!cluster_mac_ && running_ > 0) {
    ask_cluster_mac(now);
  }
  open_due_bursts(now);
}

Time TcpPeer::next_deadline() const {
  Time t = kNever;
  for (std::size_t id = 0; id < conns_.size(); ++id) {
    const Conn& c = *conns_[id];
    t = std::min(t, c.tcp.next_deadline());
    if (info_[id].outcome == ConnOutcome::running) {
      t = std::min(t, std::max(c.last_arrival, c.quiet_until) + config_.idle_timeout);
      if (wants_write(id)) {
        t = std::min(t, c.next_write);
      }
    }
  }
  if (!cluster_mac_ && running_ > 0 && last_arp_ask_) {
    t = std::min(t, *last_arp_ask_ + kArpRetry);
  }
  for (const Burst& b : bursts_) {
    if (b.due) {
      t = std::min(t, *b.due);
    }
  }
  return t;
}

void TcpPeer::drain(const FrameSink& sink) {
  for (const auto& f : tx_) {
    ++counters_.frames_out;
    sink(f);
  }
  tx_.clear();
}

void TcpPeer::give_up(Time now) {
  for (Burst& b : bursts_) {
    b.due.reset();
    b.next = b.requests.size();
  }
  abandoned_ += queued_;
  queued_ = 0;
  for (std::size_t id = 0; id < conns_.size(); ++id) {
    if (info_[id].outcome == ConnOutcome::running) {
      finish(now, id, ConnOutcome::timed_out, "the scenario's time limit");
      conns_[id]->tcp.abort();
      transmit(now, id);
    }
  }
}

}  // namespace phalanx::sim
