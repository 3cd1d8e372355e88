// The member's IPv4 stack (DESIGN §5): ARP, IPv4 in and out with bounded fragment reassembly,
// ICMP echo and port unreachable, UDP sockets, and TCP demultiplexing to tcp::Connection.
//
// Pure (DESIGN §2): frames and `now` in, frames and a deadline out. No clock, socket, thread or
// randomness; random values (the ISN secret) come in through StackConfig. The driver (runtime/ or
// sim/) does, in one thread:
//
//   Stack stack(config);
//   stack.tcp_listen(80, &http);           // the applications register their handlers
//   loop:
//     stack.on_frame(now, frame);          // for every frame received on the LAN interface
//     stack.on_timer(now);                 // whenever now >= stack.next_deadline()
//     stack.drain([&](wire::Bytes f, TxMeta m) { send(f, m); });  // after every call above
//
// Frames in are Ethernet II without FCS and without an 802.1Q tag (AF_PACKET strips it); frames
// out are the same, with source MAC = config.mac and source IP = config.address. With
// StackLimits::offload_max a frame out may be a TCP segment for the link to cut (TxMeta); a
// sink taking only wire::Bytes gets it cut already. The transmit ring is bounded
// (StackConfig::tx_ring_frames): drain after every call. When the ring fills inside on_timer(),
// the stack stops early and next_deadline() returns a time already past, so the driver drains
// and calls on_timer() again. A TCP connection that finds the ring full in
// any call keeps its segments (nothing is dropped) and goes on the same way, from on_timer().
//
// Cluster dispatch (spec FIG. 9): every IPv4 packet to the served address passes the
// FrameFilter, if one is set, before the stack acts on it. A fragment is reassembled first and
// the whole datagram is filtered. Without a filter everything is `mine`.
//
// Time of application calls. tcp_send, udp_send and the rest carry no `now`: they use the one of
// the latest on_frame()/on_timer(). A driver that calls them from outside a callback (its own
// timer, another socket) calls on_timer(now) first; it costs nothing when nothing is due.
//
// Callbacks and re-entrancy. TcpHandler and UdpHandler callbacks run inside on_frame(),
// inject(), on_timer() and the tcp_* calls listed below, on the driver's thread. From a callback
// a handler may call: tcp_send, tcp_send_space, tcp_shutdown, tcp_abort, tcp_resume_receive,
// set_nodelay, tcp_info, udp_send, tcp_listen, tcp_unlisten, udp_bind, udp_unbind — for its own
// connection or any other. It must not call on_frame, inject, on_timer or drain, nor destroy the
// Stack. tcp_send, tcp_shutdown, tcp_resume_receive and set_nodelay never call back into the
// handler; tcp_abort never does either (the aborted id is dead on return and gets no on_closed).
// A handler pointer is borrowed: it
// must stay valid until its port is unbound / unlistened and every connection it was given has
// been reported closed or aborted.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "stack/counters.hpp"
#include "stack/gso.hpp"
#include "stack/tx_ring.hpp"
#include "stack/types.hpp"
#include "tcp/config.hpp"
#include "tcp/connection.hpp"
#include "tcp/tcb.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"

namespace phalanx::stack {

struct StackLimits {
  // ARP (RFC 826, RFC 1122 §2.3.2.1).
  std::size_t arp_cache_entries = 1024;  // full: the least recently used entry goes
  Duration arp_entry_ttl = std::chrono::seconds(60);
  Duration arp_retry_interval = std::chrono::seconds(1);
  std::uint32_t arp_max_requests = 3;    // then the waiting packets are dropped
  std::size_t arp_pending_packets = 64;  // packets awaiting resolution, all hosts
  std::size_t arp_pending_per_host = 8;  // RFC 1122 asks for at least 1

  // Fragment reassembly (RFC 791, RFC 815; overlaps per RFC 5722).
  std::size_t reassembly_bytes = 1 << 20;  // buffers of all incomplete datagrams
  std::size_t reassembly_datagrams = 64;   // incomplete datagrams at once
  Duration reassembly_timeout = std::chrono::seconds(30);

  // ICMP errors (port unreachable): a token bucket, RFC 1812 §4.3.2.8, for all destinations
  // together; and, as Linux (icmp_ratelimit), one per destination so that one host cannot draw
  // them all. Per-destination buckets live in a fixed table of icmp_destinations slots (a new
  // destination takes its slot over: memory stays bounded whatever the sources).
  std::uint32_t icmp_error_burst = 50;
  std::uint32_t icmp_errors_per_second = 1000;
  std::uint32_t icmp_errors_per_destination_burst = 6;
  Duration icmp_error_interval_per_destination = std::chrono::seconds(1);
  std::size_t icmp_destinations = 256;

  // TCP.
  std::size_t max_connections = 16384;  // all states, TIME-WAIT included
  // A SYN that finds its listener's backlog full gets a SYN cookie (no state); off: it evicts
  // the oldest half-open connection instead.
  bool syn_cookies = true;
  // Output commit from the first ACK (session replication, DESIGN §6): a passively opened
  // connection starts with an ack limit at the handshake (the peer's ISN + 1, the window edge
  // of our SYN-ACK) and a send limit at our ISS + 1 (tcp::Connection::set_ack_limit(),
  // set_send_limit()): it acknowledges none of the peer's data and sends none of its own until
  // the layer above moves or lifts the limits (its backup holds the session). Whoever completes
  // the handshake from a cookie then finds the peer where the handshake left it.
  bool hold_until_replicated = false;
  std::size_t syn_backlog = 128;  // half-open per listener, unless tcp_listen()
                                  // says otherwise

  // Output.
  std::size_t tx_ring_frames = 1024;  // frames awaiting drain()
  std::uint16_t mtu = 1500;           // IPv4 bytes per frame; larger datagrams are
                                      // fragmented (ICMP, UDP) or segmented (TCP)
  std::uint8_t ttl = 64;              // of every datagram sent
  // Segmentation offload: when non-zero, a TCP segment of new data may leave in one IPv4
  // datagram of up to this many bytes, marked TxMeta::gso_size, for the link (Linux GSO, a NIC's
  // TSO) to cut into MTU-sized frames. At most 65535 and above the MTU; the transmit ring
  // (tx_ring_frames * MTU) must hold four of them. 0: every frame fits the MTU.
  std::size_t offload_max = 0;
};

struct StackConfig {
  wire::MacAddr mac;                      // this member's own MAC: the source of every frame sent
  wire::Ipv4Addr address;                 // the served address (the cluster IP)
  std::uint8_t prefix_length = 24;        // of the served address's subnet
  std::optional<wire::Ipv4Addr> gateway;  // next hop off the subnet; none: on-link only
  // The MAC that ARP binds to `address`: the cluster MAC in unicast/multicast mode, or `mac`
  // (when unset) in forwarding mode and for a stand-alone stack. Frames to it are accepted.
  std::optional<wire::MacAddr> served_mac;
  // Answer ARP requests for `address`. In a cluster only the master does (DESIGN §3); the
  // cluster layer flips it with Stack::set_arp_replies().
  bool answer_arp = true;
  // Send replies to the MAC a packet came from instead of resolving the peer with ARP. Right on
  // a LAN (an off-link peer's packets come from the gateway, where the reply goes too); wrong in
  // forwarding mode, where the master relays frames with its own MAC as the source.
  bool reply_to_frame_source = true;
  // 128 random bits drawn by the driver: the ISN secret of RFC 6528 and any SYN-handling key.
  // It replaces tcp.isn_secret.
  tcp::IsnSecret secret;
  StackLimits limits;
  // Per-connection TCP settings: MSS (capped to fit the MTU), buffer sizes (allocated per
  // connection: size them for max_connections), options, timers.
  tcp::Config tcp;
};

// What the cluster filter decides for a packet to the served address (spec FIG. 9).
enum class FilterVerdict : std::uint8_t {
  mine,      // this member serves it: the stack processes it
  not_mine,  // another member serves it: dropped, counted as Drop::filter_not_mine
  taken,     // the cluster layer took it (copied it to hold or forward): counted, not processed
};

// The hook where the cluster dispatch of FIG. 9 plugs in front of the stack.
class FrameFilter {
 public:
  virtual ~FrameFilter() = default;
  // An Ethernet frame carrying an unfragmented IPv4 packet to the served address, its IPv4
  // header already checked (version, lengths, checksum, source); the layers above are not.
  virtual FilterVerdict on_frame(Time now, wire::Bytes frame) = 0;
  // An IPv4 datagram (no Ethernet header) to the served address, reassembled from fragments.
  virtual FilterVerdict on_datagram(Time now, wire::Bytes datagram) = 0;
  // A TCP segment from `remote` that matches no connection and no listener, which the stack
  // answers with an RST (RFC 9293 §3.10.7.1) unless this says no: the filter may know that the
  // segment's connection lives elsewhere (a cluster member handed a frame its previous owner has
  // handled already). Asked during the on_frame()/on_datagram()/inject() that delivered it.
  virtual bool may_reset(Time /*now*/, wire::Ipv4Addr /*remote*/, std::uint16_t /*port*/) {
    return true;
  }
  // A SYN from `remote` that would open a connection on a listener: dropped without an answer
  // (counted, Drop::tcp_open_refused) unless this says yes. A cluster member cut off from the
  // others cannot tell whether they serve the same flows (DESIGN §4 quorum).
  virtual bool may_open(Time /*now*/, wire::Ipv4Addr /*remote*/, std::uint16_t /*port*/) {
    return true;
  }
};

// The application side of a TCP connection accepted on a listening port (DESIGN §8). Each
// connection gets on_open() once, then any of on_data/on_writable/on_peer_closed, then exactly
// one on_closed() — unless the application aborts it, which ends it silently.
//
// Flow control runs both ways through these calls. Sending: tcp_send() takes what fits in the
// send buffer; once the application has found the buffer full (a short count, or a tcp_send()
// that filled it exactly, after which tcp_send_space() says 0) on_writable() follows when
// acknowledged data frees space. Receiving: on_data() returns how many bytes it took; the rest
// stays in the connection's receive buffer, where it narrows the window the peer may fill (down
// to zero: the peer then probes), and on_data() pauses until tcp_resume_receive().
// What TcpHandler::snapshot() gives: the state, and how far the output stream is a function of
// it (the owner sends nothing beyond that until a newer snapshot is replicated: output derived
// from input a new owner would not know could not be regenerated).
struct AppSnapshot {
  std::vector<std::byte> state;
  std::uint64_t determined = 0;  // output stream offset
};

class TcpHandler {
 public:
  virtual ~TcpHandler() = default;
  // The handshake completed (ESTABLISHED). The id stays valid until on_closed() or tcp_abort().
  virtual void on_open(ConnectionId id) = 0;
  // In-order bytes from the peer, valid only during the call. Returns how many it took, from
  // the front (at most data.size(); more is a handler bug and aborts). Taken bytes leave the
  // receive buffer and reopen the window. Fewer than offered pauses delivery: the rest, and
  // whatever arrives after it, waits until the handler calls tcp_resume_receive(id); then
  // on_data() offers it again from the first byte not taken.
  virtual std::size_t on_data(ConnectionId id, wire::Bytes data) = 0;
  // Send space grew after the handler found the send buffer full (see above).
  virtual void on_writable(ConnectionId id) = 0;
  // The peer sent FIN and every byte before it was taken: no more data will come. The
  // application may still send, then shut down.
  virtual void on_peer_closed(ConnectionId id) = 0;
  // The connection is over; the id is dead on return. The handler may free its state here.
  // After a normal close (TIME-WAIT) it comes only once the held bytes were taken and
  // on_peer_closed() was delivered; after a reset, a timeout, or the end of LAST-ACK it comes at
  // once and bytes still held are discarded.
  virtual void on_closed(ConnectionId id, CloseReason reason) = 0;
  // A connection restored from replicated state was given to this handler by
  // Stack::tcp_adopt() (session takeover, DESIGN §6), in place of on_open(): called once, from
  // within tcp_adopt(), before it returns; then the other callbacks follow as for any
  // connection (the peer's FIN and data the old owner's application saw are not delivered
  // again). An application that replicates its state overrides it to attach that state (find
  // the session by tcp_info(id)); the default treats the connection as a new one.
  virtual void on_adopted(ConnectionId id) { on_open(id); }

  // Session replication (DESIGN §6): the one interface an application implements to have its
  // connections survive their member. snapshot() gives what a new owner's application needs to
  // resume the connection: everything that determines the output stream from offset `acked`
  // on (the peer has acknowledged every output byte before it: the application may forget
  // them) and what it made of the input it took. It is called whenever the connection's state
  // changed, so keep it small (http: the requests not yet answered in full, and where their
  // answer begins; no file data). nullopt (the default): the application cannot resume, and
  // its connections are served unprotected. The only Stack call allowed from it is
  // tcp_resume_receive() (what `acked` freed may let the application take input again).
  virtual std::optional<AppSnapshot> snapshot(ConnectionId /*id*/, std::uint64_t /*acked*/) {
    return std::nullopt;
  }
  // The connection is not replicated now (no backup, not ours, closing): no snapshot will ask
  // for the output before `acked`, which the peer acknowledged, so the application may forget
  // it. Called instead of snapshot(), as often; keep it cheap. As from snapshot(), the only Stack
  // call allowed is tcp_resume_receive().
  virtual void on_acknowledged(ConnectionId /*id*/, std::uint64_t /*acked*/) {}
  // A connection restored on a new owner (Stack::tcp_adopt() with a snapshot), in place of
  // on_open(): the application rebuilds its state from `state` and resumes its output stream
  // at offset `resume_at` (the next byte it gives tcp_send() is the byte at that offset). False
  // when it cannot (the stack then aborts the connection: an RST beats a corrupt stream).
  virtual bool on_adopted(ConnectionId /*id*/, wire::Bytes /*state*/, std::uint64_t /*resume_at*/) {
    return false;
  }
};

class UdpHandler {
 public:
  virtual ~UdpHandler() = default;
  // One datagram to the bound port; `payload` is valid only during the call.
  virtual void on_datagram(Endpoint from, std::uint16_t to_port, wire::Bytes payload) = 0;
};

// Why udp_send() did not send.
enum class SendError : std::uint8_t {
  too_big,     // more than 65507 bytes of payload
  no_route,    // off-link destination without a gateway, or a bad destination address
  queue_full,  // the transmit ring or the ARP queue is full (counted as the matching Drop)
};

struct TcpInfo {
  Endpoint local;
  Endpoint remote;
};

// A SYN-cookie key that the members of a cluster share (DESIGN §6), so that a handshake one
// member answered can be completed by another: the cookie's slot is the key's generation
// (syn_cookie.hpp), which counts the key's rotations.
struct CookieKey {
  tcp::IsnSecret secret;
  std::uint32_t generation = 0;
};

class StackImpl;

class Stack {
 public:
  // A config with a zero or broadcast address, a prefix over 32, a zero MAC, zero limits or an
  // MTU below 576 aborts (a config bug; the driver validates its TOML before).
  explicit Stack(const StackConfig& config);
  // Drops every connection silently: no callbacks, no RST.
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // --- driver side ---------------------------------------------------------------------------

  // One received frame. Never fails: bad input is dropped and counted.
  void on_frame(Time now, wire::Bytes frame);
  // A frame the cluster layer held and now knows is this member's: processed without consulting
  // the filter.
  void inject(Time now, wire::Bytes frame);
  // Runs everything due at `now` (TCP timers, ARP retries, reassembly timeouts). Work is
  // O(expired), not O(connections).
  void on_timer(Time now);
  // When on_timer() must next run; kNever when nothing is pending. May be early (a spurious
  // call is harmless), never late.
  Time next_deadline() const;

  // Calls tx(wire::Bytes, TxMeta) for every frame to send, in order; each span is valid only
  // during its call, and tx must not call back into the stack. A tx that takes only wire::Bytes
  // gets segments marked for offload (StackLimits::offload_max) already cut, by gso.hpp. No
  // allocation after the first offloaded segment.
  template <class F>
  void drain(F&& tx) {
    if constexpr (std::is_invocable_v<F&, wire::Bytes, TxMeta>) {
      tx_.drain(tx);
    } else {
      tx_.drain([&](wire::Bytes frame, TxMeta meta) {
        if (meta.gso_size == 0) {
          tx(frame);
        } else {
          for_each_gso_frame(frame, meta.gso_size, gso_scratch_, tx);
        }
      });
    }
  }
  std::size_t pending_frames() const { return tx_.size(); }

  // --- cluster side --------------------------------------------------------------------------

  // The FIG. 9 dispatch; nullptr (the default) means every packet is mine. Borrowed.
  void set_filter(FrameFilter* filter);
  // Answer ARP for the served address or not (only the master does).
  void set_arp_replies(bool on);
  // Handshakes any member can complete: the cluster's cookie keys, newest first. With keys, the
  // ISS we answer a SYN that offers timestamps with is a SYN cookie of the newest key, and our
  // SYN-ACK's TSval carries the peer's options (syn_cookie.hpp); the half-open connection is
  // kept as without keys. An ACK that finds no connection but brings back a cookie any of the
  // keys made opens the connection here, whichever member answered the SYN (if the filter's
  // may_open() agrees), and our TSvals then start after the cookie's, whatever clock made it. A
  // SYN without timestamps is answered as before: only our TSval can carry its window scale and
  // SACK. No keys (the default): cookies only when a backlog is full, with our own secret and
  // clock.
  void set_cookie_keys(std::vector<CookieKey> newest_first);
  // Queues a gratuitous ARP announcement (RFC 5227 §2.3) binding the served address to the
  // served MAC, e.g. on becoming master.
  void announce();

  // --- application side: TCP ----------------------------------------------------------------

  // Accept connections to `port` and report them to `handler`, with at most `backlog` half-open
  // (0: limits.syn_backlog). False when the port already has a listener or handler is null.
  bool tcp_listen(std::uint16_t port, TcpHandler* handler, std::size_t backlog = 0);
  // Stops accepting; existing connections carry on with their handler. False when not listening.
  bool tcp_unlisten(std::uint16_t port);
  // Queues bytes to send; returns how many were accepted (0 for a stale id, after shutdown, or
  // when the send buffer is full; on_writable() follows when space opens).
  std::size_t tcp_send(ConnectionId id, wire::Bytes data);
  // Bytes tcp_send() would accept now; 0 for a stale id.
  std::size_t tcp_send_space(ConnectionId id) const;
  // Sends FIN after the queued data. False for a stale id.
  bool tcp_shutdown(ConnectionId id);
  // Ends a pause that on_data() started by taking less than offered: delivery resumes with the
  // held bytes, from the running callback's return when called from one of this connection's
  // callbacks, else from the next on_timer() (next_deadline() says now). Never calls back
  // itself. True when the id is open (paused or not); false for a stale id.
  bool tcp_resume_receive(ConnectionId id);
  // Sends RST and forgets the connection at once; no on_closed() follows. False for a stale id.
  bool tcp_abort(ConnectionId id);
  // Nagle off (true) or on (false). False for a stale id.
  bool set_nodelay(ConnectionId id, bool on);
  // Addresses of an open connection; nullopt for a stale id.
  std::optional<TcpInfo> tcp_info(ConnectionId id) const;
  // --- session replication (DESIGN §6) -------------------------------------------------------

  // Puts a restored connection (tcp::Connection::restore()) into the 4-tuple table and the
  // timer wheel with `handler` as its application, as if accepted on a listening port (no
  // listener is needed): handler->on_adopted(id) runs before this returns, then the connection
  // sends what it owes (e.g. a FIN in flight) and lives as any other: data, timers, close. Its
  // peer's MAC is learned from its first segment, or resolved by ARP. nullopt, counted, when the
  // 4-tuple is already in use (Drop::tcp_adopt_in_use), the table is full
  // (Drop::tcp_connection_limit), or the connection is closed, not on the served address, or
  // handler is null (Drop::tcp_adopt_invalid). The id is dead on return if the handler aborted
  // it from on_adopted().
  std::optional<ConnectionId> tcp_adopt(tcp::Connection conn, TcpHandler* handler);
  // The same with the application's snapshot (TcpHandler::snapshot()): handler->on_adopted(id,
  // app_state, resume_at) instead, with resume_at the output stream offset of conn.send_end()
  // (stream origin: InitialState::iss); a handler that refuses has the connection aborted (and
  // nullopt returned, counted as Drop::tcp_adopt_invalid).
  std::optional<ConnectionId> tcp_adopt(tcp::Connection conn, TcpHandler* handler,
                                        wire::Bytes app_state);
  // Calls fn(id, connection, handler) for every connection an application holds (on_open() or
  // on_adopted() delivered, on_closed() not yet), in slot order. fn must not call into the
  // stack.
  void tcp_for_each_open(
      const std::function<void(ConnectionId, const tcp::Connection&, TcpHandler&)>& fn) const;
  // Forgets an open connection at once without a segment: another member took it over with its
  // replicated state (a live move). The handler's on_closed(id, CloseReason::handed_over)
  // follows before this returns. False for a stale id, and when called from one of the
  // connection's own callbacks.
  bool tcp_hand_over(ConnectionId id);
  // tcp::Connection::solicit_ack() on an open connection, sent at once. False for a stale id.
  bool tcp_solicit_ack(ConnectionId id);
  // The application listening on `port`, or nullptr: who a restored connection is given to.
  TcpHandler* tcp_listener(std::uint16_t port) const;
  // The connection behind an open id, for export_initial()/export_essential(); nullptr for a
  // stale id. Valid until the next call into the stack.
  const tcp::Connection* tcp_connection(ConnectionId id) const;
  // Output commit: tcp::Connection::set_ack_limit() and set_send_limit() on an open connection,
  // then what the new limits release leaves, in as few segments as they allow (data carries the
  // ACK that one limit released and the other would have sent alone). False for a stale id.
  bool tcp_set_limits(ConnectionId id, std::optional<tcp::AckLimit> ack,
                      std::optional<tcp::SeqNum> send);

  // Connections held, in every state (half-open and TIME-WAIT included).
  std::size_t tcp_connection_count() const;
  // Calls fn(remote, state) for every connection held, as tcp_connection_count() counts them,
  // in no particular order. O(connections). fn must not call into the stack.
  void tcp_for_each(const std::function<void(Endpoint remote, tcp::State state)>& fn) const;

  // --- application side: UDP ----------------------------------------------------------------

  // Deliver datagrams to `port` to `handler`. False when the port is bound or handler is null.
  bool udp_bind(std::uint16_t port, UdpHandler* handler);
  bool udp_unbind(std::uint16_t port);
  // Sends one datagram from the served address. Larger than the MTU: fragmented. Sent or queued
  // for ARP resolution on success.
  std::optional<SendError> udp_send(std::uint16_t from_port, Endpoint to, wire::Bytes payload);

  // --- observation --------------------------------------------------------------------------

  const Counters& counters() const;
  const StackConfig& config() const;
  // Aborts with a message when internal tables disagree (debug and simulation builds).
  void check_invariants() const;

 private:
  TxRing tx_;
  std::vector<std::byte> gso_scratch_;
  std::unique_ptr<StackImpl> impl_;
};

}  // namespace phalanx::stack
