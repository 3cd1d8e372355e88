// The inside of Stack (stack.hpp), split by purpose over stack.cpp (Ethernet in, timers, the
// public calls), arp.cpp, ipv4.cpp, icmp.cpp, udp.cpp and tcp_demux.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "stack/arp_cache.hpp"
#include "stack/counters.hpp"
#include "stack/reassembly.hpp"
#include "stack/stack.hpp"
#include "stack/syn_cookie.hpp"
#include "stack/timer_wheel.hpp"
#include "stack/token_bucket.hpp"
#include "stack/tx_ring.hpp"
#include "tcp/connection.hpp"
#include "wire/addr.hpp"
#include "wire/arp.hpp"
#include "wire/bytes.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::stack {

// How an outgoing datagram finds its next hop's MAC.
struct NextHop {
  std::optional<wire::MacAddr> mac;  // known already (the frame a reply answers came from)
  // The packet being answered came to a link-layer broadcast or multicast address (other than
  // the served MAC): no ICMP error and no RST answer it (RFC 1122 §3.2.2, §4.2.3.10).
  bool to_group = false;
};

// A TCP segment past the MTU that goes out whole for the link to cut (TxMeta::gso_size).
// (Outside StackImpl: clang refuses a nested type's default initializers in its default
// arguments.)
struct Offload {
  std::uint16_t gso_size = 0;  // 0: none
  std::size_t pieces = 1;      // the link makes of it
};

class StackImpl {
 public:
  StackImpl(const StackConfig& config, TxRing& tx);
  ~StackImpl();

  // stack.cpp
  void on_frame(Time now, wire::Bytes frame, bool filtered);
  void on_timer(Time now);
  Time next_deadline() const;

  // arp.cpp
  void announce();

  // udp.cpp
  bool udp_bind(std::uint16_t port, UdpHandler* handler);
  bool udp_unbind(std::uint16_t port);
  std::optional<SendError> udp_send(Time now, std::uint16_t from_port, Endpoint to,
                                    wire::Bytes payload);

  // tcp_demux.cpp
  bool tcp_listen(std::uint16_t port, TcpHandler* handler, std::size_t backlog);
  bool tcp_unlisten(std::uint16_t port);
  std::size_t tcp_send(ConnectionId id, wire::Bytes data);
  std::size_t tcp_send_space(ConnectionId id) const;
  bool tcp_shutdown(ConnectionId id);
  bool tcp_abort(ConnectionId id);
  bool tcp_resume_receive(ConnectionId id);
  bool set_nodelay(ConnectionId id, bool on);
  std::optional<TcpInfo> tcp_info(ConnectionId id) const;
  std::optional<ConnectionId> tcp_adopt(tcp::Connection conn, TcpHandler* handler,
                                        const wire::Bytes* app_state = nullptr);
  void tcp_for_each_open(
      const std::function<void(ConnectionId, const tcp::Connection&, TcpHandler&)>& fn) const;
  bool tcp_solicit_ack(ConnectionId id);
  bool tcp_hand_over(ConnectionId id);
  TcpHandler* tcp_listener(std::uint16_t port) const {
    const auto it = listeners_.find(port);
    return it == listeners_.end() ? nullptr : it->second.handler;
  }
  const tcp::Connection* tcp_connection(ConnectionId id) const;
  bool tcp_set_limits(ConnectionId id, std::optional<tcp::AckLimit> ack,
                      std::optional<tcp::SeqNum> send);
  std::size_t tcp_connection_count() const { return tuples_.size(); }
  void tcp_for_each(const std::function<void(Endpoint, tcp::State)>& fn) const {
    for (const auto& [key, index] : tuples_) {
      const Slot& slot = slots_[index];
      if (slot.conn) {
        fn(Endpoint{wire::Ipv4Addr{static_cast<std::uint32_t>(key >> 32)},
                    static_cast<std::uint16_t>(key >> 16)},
           slot.conn->state());
      }
    }
  }
  void check_invariants() const;

  StackConfig config_;
  Counters counters_;
  FrameFilter* filter_ = nullptr;
  std::vector<CookieKey> cookie_keys_;  // Stack::set_cookie_keys(), newest first
  // The time of the call in progress: the application calls (tcp_send, udp_send...) carry no
  // `now` of their own and use the latest one the driver gave.
  Time now_{0};

 private:
  // ---- arp.cpp ----
  void arp_input(Time now, const wire::EthernetView& eth);
  void send_arp(const wire::ArpRepr& arp, wire::MacAddr dst);
  void send_arp_request(wire::Ipv4Addr target);

  // ---- ipv4.cpp ----
  void ipv4_input(Time now, const wire::EthernetView& eth, bool filtered);
  // A whole (unfragmented or reassembled) datagram to the served address, header checked.
  void ipv4_deliver(Time now, const wire::Ipv4View& ip, NextHop from);
  // Sends a datagram of `payload_len` bytes written by `write` into the span it is given, whole
  // when `offload` says so. False when it was dropped (counted).
  template <class W>
  bool send_ipv4(Time now, wire::Ipv4Addr dst, std::uint8_t protocol, std::size_t payload_len,
                 NextHop hop, W&& write, Offload offload = {});
  // The header for an outgoing datagram (a fresh identification each; an offloaded one takes
  // one per piece).
  wire::Ipv4Repr ipv4_header(wire::Ipv4Addr dst, std::uint8_t protocol, std::size_t payload_len,
                             std::size_t pieces = 1);
  // A datagram marked for offload that must wait for ARP: cut here, each piece queued.
  bool queue_pieces_for_arp(Time now, wire::Ipv4Addr next_hop, wire::Bytes datagram,
                            std::uint16_t gso_size);
  bool on_link(wire::Ipv4Addr a) const;
  // Transmits a whole datagram (fragmenting it past the MTU) to `mac`.
  bool transmit_datagram(wire::MacAddr mac, wire::Bytes datagram);
  // The next-hop address for `dst`, or nullopt (no route).
  std::optional<wire::Ipv4Addr> route(wire::Ipv4Addr dst) const;
  // Hands a datagram in scratch_ to ARP for `next_hop`.
  bool queue_for_arp(Time now, wire::Ipv4Addr next_hop, wire::Bytes datagram);
  // Reserves room for a frame of `bytes` (default: one MTU) and writes the Ethernet header;
  // empty (and counted) when the ring is full.
  wire::MutBytes begin_frame(wire::MacAddr dst, std::uint16_t ethertype, std::size_t bytes = 0);
  // Whether a TCP segment fits the ring now: one of the largest a connection may send.
  bool tx_room_for_segment() const;

  // ---- icmp.cpp ----
  void icmp_input(Time now, const wire::Ipv4View& ip, NextHop from);
  // Destination unreachable (code) about `offending` (the datagram as received), rate-limited.
  void send_unreachable(Time now, const wire::Ipv4View& offending, std::uint8_t code, NextHop to);
  // Spends an ICMP error from the global and the destination's allowance, or counts the refusal.
  bool icmp_error_allowed(Time now, wire::Ipv4Addr to);

  // ---- udp.cpp ----
  void udp_input(Time now, const wire::Ipv4View& ip, NextHop from);

  // ---- tcp_demux.cpp ----
  static constexpr std::uint32_t kNoSlot = 0xffffffffu;
  struct Listener {
    TcpHandler* handler = nullptr;
    std::size_t backlog = 0;
    std::size_t half_open = 0;
    std::uint32_t oldest = kNoSlot;  // FIFO of half-open connections, for eviction
    std::uint32_t newest = kNoSlot;
  };
  struct Slot {
    std::optional<tcp::Connection> conn;
    std::uint32_t generation = 0;
    TcpHandler* handler = nullptr;
    std::uint16_t listen_port = 0;
    bool half_open = false;      // counted in its listener's backlog
    bool opened = false;         // on_open() delivered
    bool app_done = false;       // on_closed() delivered or tcp_abort() called: no more callbacks
    bool in_service = false;     // service() is running for it (callbacks may re-enter)
    bool again = false;          // an API call during service() left work for it
    bool blocked = false;        // the application found the send buffer full: on_writable() owed
    bool recv_paused = false;    // on_data() took less than offered: no on_data() until resumed
    bool resume_asked = false;   // tcp_resume_receive() was called during the running on_data()
    bool redeliver = false;      // held bytes to offer again from the next on_timer()
    bool peer_fin_owed = false;  // the peer's FIN came: on_peer_closed() once the data is taken
    bool close_owed = false;     // TIME-WAIT came: on_closed() once the data and FIN are taken
    std::optional<wire::MacAddr> peer_mac;
    std::uint32_t backlog_prev = kNoSlot;
    std::uint32_t backlog_next = kNoSlot;
  };
  struct TupleHash {
    std::uint64_t seed;
    std::size_t operator()(std::uint64_t key) const;
  };

  void tcp_input(Time now, const wire::Ipv4View& ip, NextHop from);
  // `iss` overrides the RFC 6528 ISS (a new incarnation of a 4-tuple in TIME-WAIT).
  void tcp_accept(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src, NextHop from,
                  std::optional<tcp::SeqNum> iss = std::nullopt);
  // True when `syn` ended the TIME-WAIT of slot `index` and opened a new connection.
  bool tcp_reopen_time_wait(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src, NextHop from,
                            std::uint32_t index);
  void send_syn_cookie(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src, NextHop from);
  // StackLimits::hold_until_replicated, on a connection just accepted.
  void hold_new(tcp::Connection& conn) const;
  // The cookie for `syn` from `src`: with the cluster's newest key, or our own secret and clock.
  SynCookie cookie_for(Time now, const wire::TcpRepr& syn, wire::Ipv4Addr src) const;
  // True when `ack` carried a valid cookie (and was consumed).
  bool tcp_accept_cookie(Time now, const wire::TcpRepr& ack, wire::Ipv4Addr src, NextHop from);
  std::uint32_t alloc_slot();
  void send_tcp_reset(Time now, const wire::TcpRepr& seg, wire::Ipv4Addr src, NextHop from);
  // Transmits, runs the callbacks, re-arms the timer and frees the slot once closed.
  void service(Time now, std::uint32_t index);
  // Hands the connection's segments to the ring while it has room; false when it stopped at a
  // full ring with more to send.
  bool transmit(Time now, Slot& slot);
  void deliver_events(std::uint32_t index, tcp::Events events);
  bool emit_segment(Time now, Slot& slot, const wire::TcpRepr& seg);
  void free_slot(std::uint32_t index);
  void backlog_remove(std::uint32_t index);
  Slot* lookup(ConnectionId id);
  const Slot* lookup(ConnectionId id) const;
  static std::uint64_t tuple_key(wire::Ipv4Addr remote, std::uint16_t remote_port,
                                 std::uint16_t local_port) {
    return (std::uint64_t{remote.value()} << 32) | (std::uint64_t{remote_port} << 16) | local_port;
  }

  TxRing& tx_;
  wire::MacAddr served_mac_;
  std::uint16_t ident_ = 0;
  ArpCache arp_;
  Reassembler reassembler_;
  std::vector<std::byte> scratch_;  // datagrams that need fragmenting or must wait for ARP

  // ICMP error rate limits (StackLimits): all destinations, then one bucket per destination in
  // a direct-mapped table.
  struct IcmpDestination {
    wire::Ipv4Addr addr;
    TokenBucket bucket;
  };
  TokenBucket icmp_all_;
  std::vector<IcmpDestination> icmp_destinations_;

  std::unordered_map<std::uint16_t, UdpHandler*> udp_ports_;
  // The source of the packet being processed, so that a reply sent from a callback goes back
  // the way the packet came without ARP.
  std::optional<wire::Ipv4Addr> current_src_;
  NextHop current_hop_;

  std::unordered_map<std::uint16_t, Listener> listeners_;
  std::vector<Slot> slots_;  // reserved for max_connections: never reallocates
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<std::uint64_t, std::uint32_t, TupleHash> tuples_;
  TimerWheel timers_;
};

}  // namespace phalanx::stack

// ---- the output template (ipv4.cpp holds the rest of IPv4 out) ----------------------------------

namespace phalanx::stack {

template <class W>
bool StackImpl::send_ipv4(Time now, wire::Ipv4Addr dst, std::uint8_t protocol,
                          std::size_t payload_len, NextHop hop, W&& write, Offload offload) {
  constexpr std::size_t kEth = wire::EthernetView::kHeaderSize;
  constexpr std::size_t kIp = wire::Ipv4View::kMinHeaderSize;
  const std::size_t total = kIp + payload_len;
  if (total > 0xffff) {
    counters_.add(Drop::tx_too_big);
    return false;
  }
  std::optional<wire::MacAddr> mac = hop.mac;
  std::optional<wire::Ipv4Addr> next_hop;
  if (!mac) {
    next_hop = route(dst);
    if (!next_hop) {
      counters_.add(Drop::tx_no_route);
      return false;
    }
    mac = arp_.lookup(now, *next_hop);
  }
  // Marked whenever it holds more than one MSS piece, even when it would fit the MTU whole: the
  // peer's MSS (536 without the option, 1400 behind a VPN clamp) is often below the MTU's, and
  // such a segment carries only the pseudo-header sum until the link cuts it.
  const bool cut = offload.gso_size > 0 && offload.pieces > 1;
  const std::size_t pieces = cut ? offload.pieces : 1;
  const wire::Ipv4Repr header = ipv4_header(dst, protocol, payload_len, pieces);
  if (mac && (total <= config_.limits.mtu || cut)) {
    // The common case: written straight into the transmit ring.
    const wire::MutBytes frame = begin_frame(*mac, wire::ethertype::kIpv4, kEth + total);
    if (frame.empty()) {
      return false;
    }
    const wire::MutBytes datagram = frame.subspan(kEth, total);
    header.emit(datagram);
    write(datagram.subspan(kIp));
    tx_.commit(kEth + total, TxMeta{cut ? offload.gso_size : std::uint16_t{0}});
    counters_.add(Counter::frames_out, pieces);
    return true;
  }
  // Built aside: it must be fragmented, or wait for ARP.
  scratch_.resize(total);
  const wire::MutBytes datagram(scratch_);
  header.emit(datagram);
  write(datagram.subspan(kIp));
  if (cut) {  // and no MAC yet
    return queue_pieces_for_arp(now, *next_hop, datagram, offload.gso_size);
  }
  if (mac) {
    return transmit_datagram(*mac, datagram);
  }
  return queue_for_arp(now, *next_hop, datagram);
}

}  // namespace phalanx::stack
