// Stack's public calls, the Ethernet input and the timers. The protocols live in arp.cpp,
// ipv4.cpp, icmp.cpp, udp.cpp and tcp_demux.cpp.
#include "stack/stack.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "stack/stack_impl.hpp"
#include "wire/ethernet.hpp"

namespace phalanx::stack {

namespace {

// Every frame we send: Ethernet header (no tag) and at most an MTU of IPv4.
std::size_t slot_size(const StackConfig& c) {
  return wire::EthernetView::kHeaderSize + c.limits.mtu;
}

[[noreturn]] void bad_config(const char* what) {
  std::fprintf(stderr, "phalanx::stack: bad StackConfig: %s\n", what);
  std::abort();
}

const StackConfig& validated(const StackConfig& c) {
  if (c.address.is_unspecified() || c.address.is_broadcast() || c.address.is_multicast()) {
    bad_config("address must be a unicast address");
  }
  if (c.prefix_length > 32) {
    bad_config("prefix_length over 32");
  }
  if (c.mac.is_zero() || c.mac.is_multicast()) {
    bad_config("mac must be a unicast MAC");
  }
  const StackLimits& l = c.limits;
  if (l.mtu < 576 || l.max_connections == 0 || l.max_connections >= TimerWheel::kNil ||
      l.tx_ring_frames == 0 || l.syn_backlog == 0 || l.reassembly_datagrams == 0 ||
      l.icmp_errors_per_second == 0 || l.icmp_error_burst == 0 ||
      l.icmp_errors_per_destination_burst == 0 ||
      l.icmp_error_interval_per_destination <= Duration::zero() || l.icmp_destinations == 0 ||
      l.ttl == 0) {
    bad_config("a limit is zero, out of range, or the MTU is below 576");
  }
  if (l.offload_max != 0 && (l.offload_max <= l.mtu || l.offload_max > 0xffff ||
                             l.tx_ring_frames * l.mtu < 4 * l.offload_max)) {
    bad_config("offload_max must exceed the MTU, be at most 65535, and fit the ring four times");
  }
  if (l.arp_cache_entries <= l.arp_pending_packets || l.arp_max_requests == 0) {
    bad_config("arp_cache_entries must exceed arp_pending_packets; arp_max_requests >= 1");
  }
  return c;
}

}  // namespace

// ---- Stack: the public face, forwarding to StackImpl ----------------------------------------

Stack::Stack(const StackConfig& config)
    : tx_(validated(config).limits.tx_ring_frames, slot_size(config)),
      impl_(std::make_unique<StackImpl>(config, tx_)) {}

Stack::~Stack() = default;

void Stack::on_frame(Time now, wire::Bytes frame) {
  impl_->on_frame(now, frame, true);
}
void Stack::inject(Time now, wire::Bytes frame) {
  impl_->on_frame(now, frame, false);
}
void Stack::on_timer(Time now) {
  impl_->on_timer(now);
}
Time Stack::next_deadline() const {
  return impl_->next_deadline();
}

void Stack::set_filter(FrameFilter* filter) {
  impl_->filter_ = filter;
}
void Stack::set_arp_replies(bool on) {
  impl_->config_.answer_arp = on;
}
void Stack::set_cookie_keys(std::vector<CookieKey> newest_first) {
  impl_->cookie_keys_ = std::move(newest_first);
}
void Stack::announce() {
  impl_->announce();
}

bool Stack::tcp_listen(std::uint16_t port, TcpHandler* handler, std::size_t backlog) {
  return impl_->tcp_listen(port, handler, backlog);
}
bool Stack::tcp_unlisten(std::uint16_t port) {
  return impl_->tcp_unlisten(port);
}
std::size_t Stack::tcp_send(ConnectionId id, wire::Bytes data) {
  return impl_->tcp_send(id, data);
}
std::size_t Stack::tcp_send_space(ConnectionId id) const {
  return impl_->tcp_send_space(id);
}
bool Stack::tcp_shutdown(ConnectionId id) {
  return impl_->tcp_shutdown(id);
}
bool Stack::tcp_abort(ConnectionId id) {
  return impl_->tcp_abort(id);
}
bool Stack::tcp_resume_receive(ConnectionId id) {
  return impl_->tcp_resume_receive(id);
}
bool Stack::set_nodelay(ConnectionId id, bool on) {
  return impl_->set_nodelay(id, on);
}
std::optional<ConnectionId> Stack::tcp_adopt(tcp::Connection conn, TcpHandler* handler) {
  return impl_->tcp_adopt(std::move(conn), handler);
}

std::optional<ConnectionId> Stack::tcp_adopt(tcp::Connection conn, TcpHandler* handler,
                                             wire::Bytes app_state) {
  return impl_->tcp_adopt(std::move(conn), handler, &app_state);
}

void Stack::tcp_for_each_open(
    const std::function<void(ConnectionId, const tcp::Connection&, TcpHandler&)>& fn) const {
  impl_->tcp_for_each_open(fn);
}

bool Stack::tcp_hand_over(ConnectionId id) {
  return impl_->tcp_hand_over(id);
}

bool Stack::tcp_solicit_ack(ConnectionId id) {
  return impl_->tcp_solicit_ack(id);
}

TcpHandler* Stack::tcp_listener(std::uint16_t port) const {
  return impl_->tcp_listener(port);
}

const tcp::Connection* Stack::tcp_connection(ConnectionId id) const {
  return impl_->tcp_connection(id);
}

bool Stack::tcp_set_limits(ConnectionId id, std::optional<tcp::AckLimit> ack,
                           std::optional<tcp::SeqNum> send) {
  return impl_->tcp_set_limits(id, ack, send);
}

std::optional<TcpInfo> Stack::tcp_info(ConnectionId id) const {
  return impl_->tcp_info(id);
}
std::size_t Stack::tcp_connection_count() const {
  return impl_->tcp_connection_count();
}
void Stack::tcp_for_each(const std::function<void(Endpoint, tcp::State)>& fn) const {
  impl_->tcp_for_each(fn);
}

bool Stack::udp_bind(std::uint16_t port, UdpHandler* handler) {
  return impl_->udp_bind(port, handler);
}
bool Stack::udp_unbind(std::uint16_t port) {
  return impl_->udp_unbind(port);
}
std::optional<SendError> Stack::udp_send(std::uint16_t from_port, Endpoint to,
                                         wire::Bytes payload) {
  return impl_->udp_send(impl_->now_, from_port, to, payload);
}

const Counters& Stack::counters() const {
  return impl_->counters_;
}
const StackConfig& Stack::config() const {
  return impl_->config_;
}
void Stack::check_invariants() const {
  impl_->check_invariants();
}

// ---- StackImpl: Ethernet input and timers ---------------------------------------------------

StackImpl::StackImpl(const StackConfig& config, TxRing& tx)
    : config_(config),
      tx_(tx),
      served_mac_(config.served_mac.value_or(config.mac)),
      ident_(static_cast<std::uint16_t>(config.secret.key[0])),
      arp_(config.limits),
      reassembler_(config.limits),
      tuples_(0, TupleHash{config.secret.key[1] | 1}),
      timers_(config.limits.max_connections) {
  config_.tcp.isn_secret = config_.secret;
  // Segments must fit one frame: IPv4 and TCP headers without options take 40 bytes.
  config_.tcp.mss =
      std::min<std::uint16_t>(config_.tcp.mss, static_cast<std::uint16_t>(config_.limits.mtu - 40));
  // Offloaded segments must fit one datagram: 20 bytes of IPv4 header, up to 60 of TCP.
  config_.tcp.max_offload_payload =
      config_.limits.offload_max == 0 ? 0
                                      : static_cast<std::uint32_t>(config_.limits.offload_max - 80);
  const StackLimits& l = config_.limits;
  icmp_all_ = TokenBucket(Duration(std::chrono::seconds(1)) / l.icmp_errors_per_second,
                          l.icmp_error_burst, Time{0});
  icmp_destinations_.resize(l.icmp_destinations);
  slots_.reserve(l.max_connections);
  free_slots_.reserve(l.max_connections);
  tuples_.reserve(l.max_connections);
}

StackImpl::~StackImpl() = default;

void StackImpl::on_frame(Time now, wire::Bytes frame, bool filtered) {
  now_ = now;
  counters_.add(Counter::frames_in);
  auto eth = wire::EthernetView::parse(frame);
  // The frame holds at least an Ethernet header, with at most one tag.
  if (!eth) {
    counters_.add(Drop::eth_malformed);
    return;
  }
  // The driver gives us untagged frames; a tag means a misconfigured interface.
  if (eth->has_vlan()) {
    counters_.add(Drop::eth_vlan_tagged);
    return;
  }
  // Ours, the served (cluster) MAC, or broadcast.
  const wire::MacAddr dst = eth->dst();
  if (dst != config_.mac && dst != served_mac_ && !dst.is_broadcast()) {
    counters_.add(Drop::eth_not_for_us);
    return;
  }
  switch (eth->ethertype()) {
    case wire::ethertype::kArp:
      arp_input(now, *eth);
      return;
    case wire::ethertype::kIpv4:
      ipv4_input(now, *eth, filtered);
      return;
    default:
      counters_.add(Drop::eth_unknown_type);
      return;
  }
}

void StackImpl::on_timer(Time now) {
  now_ = now;
  if (arp_.next_deadline() <= now) {
    arp_.on_timer(
        now, [&](wire::Ipv4Addr ip) { send_arp_request(ip); },
        [&](std::size_t dropped) { counters_.add(Drop::arp_unresolved, dropped); });
  }
  reassembler_.on_timer(now, counters_);
  // Connection timers, until the transmit ring is nearly full: the rest stay due, so
  // next_deadline() says "now" and the driver drains and calls again. A connection may send a
  // few segments per timer; a drained ring always has room for one more.
  const std::size_t reserve = std::min<std::size_t>(8, tx_.capacity());
  timers_.expire(now, [&](std::uint32_t index) {
    if (tx_.free_slots() < reserve) {
      return false;
    }
    counters_.add(Counter::timers_fired);
    slots_[index].conn->on_timer(now);
    service(now, index);
    return true;
  });
}

Time StackImpl::next_deadline() const {
  return std::min({arp_.next_deadline(), reassembler_.next_deadline(), timers_.next_deadline()});
}

}  // namespace phalanx::stack
