// The stack's counters (STYLE 6): every dropped frame is counted under one named reason, and the
// notable things the stack does (answers, announcements, connections) are counted too. The
// status endpoint and the metrics read them through Stack::counters().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace phalanx::stack {

// Why a frame (or a datagram, or a packet waiting for ARP) was dropped. One line each.
enum class Drop : std::uint8_t {
  eth_malformed,         // shorter than an Ethernet header, or two stacked 802.1Q tags
  eth_vlan_tagged,       // 802.1Q-tagged: the driver hands us untagged frames only
  eth_not_for_us,        // destination MAC neither ours, the served MAC, nor broadcast
  eth_unknown_type,      // neither IPv4 nor ARP (IPv6 among them, for now)
  arp_malformed,         // ARP shorter than 28 bytes
  arp_unsupported,       // ARP for another hardware/protocol pair, or another opcode
  arp_not_for_us,        // a request (or reply, or announcement) not about the served address
  arp_replies_off,       // a request for the served address while replies are off (not master)
  arp_bad_sender,        // sender IP broadcast/multicast, sender MAC ours or not unicast
  arp_queue_full,        // an outgoing packet found the queue awaiting resolution full
  arp_unresolved,        // an outgoing packet waited for ARP, and no reply came after retries
  ip_malformed,          // IPv4 header truncated or inconsistent with the frame
  ip_bad_version,        // version field not 4
  ip_bad_checksum,       // IPv4 header checksum does not verify
  ip_not_for_us,         // destination is not the served address
  ip_bad_source,         // source is broadcast, multicast, zero or the served address itself
  ip_unknown_protocol,   // neither ICMP, UDP nor TCP
  filter_not_mine,       // the cluster filter says another member serves this packet
  frag_malformed,        // a fragment other than the last whose length is not a multiple of 8
  frag_too_big,          // fragments that would make a datagram longer than 65535 bytes
  frag_overlap,          // overlapping fragments: the whole datagram is discarded (RFC 5722)
  frag_duplicate,        // an exact copy of a fragment already held
  frag_timeout,          // a datagram not complete within the reassembly timeout (per datagram)
  frag_no_memory,        // reassembly memory or datagram count exhausted (per fragment)
  icmp_malformed,        // ICMP shorter than its header
  icmp_bad_checksum,     // ICMP checksum does not verify
  icmp_unsupported,      // an ICMP type we do not act on (echo reply, errors, ...)
  icmp_rate_limited,     // an ICMP error we would have sent, over the rate limit
  icmp_dest_limited,     // ... over its destination's own rate limit
  udp_malformed,         // UDP header truncated or its length field inconsistent
  udp_bad_checksum,      // UDP checksum does not verify
  udp_no_listener,       // no socket bound to the destination port (port unreachable sent)
  tcp_malformed,         // TCP header truncated or data offset below 5
  tcp_bad_checksum,      // TCP checksum does not verify
  tcp_bad_option,        // TCP options malformed
  tcp_no_connection,     // no connection and no listener (RST sent unless it was a RST)
  tcp_listener_refused,  // to a listener, but no plain SYN: an RST or odd flags (RFC 9293)
  tcp_open_refused,      // a SYN the cluster filter would not let open a connection (may_open)
  tcp_connection_limit,  // a SYN while max_connections are in use
  tcp_syn_evicted,       // a half-open connection evicted from a full backlog by a newer SYN
  tcp_adopt_in_use,      // tcp_adopt() of a connection whose 4-tuple is already in use
  tcp_adopt_invalid,     // tcp_adopt() of a closed connection, or one not on the served address
  tx_queue_full,         // an outgoing frame found the transmit ring full
  tx_too_big,            // an outgoing datagram larger than 65535 bytes
  tx_no_route,           // an outgoing packet to an off-link address without a gateway
};
inline constexpr std::size_t kDropCount = static_cast<std::size_t>(Drop::tx_no_route) + 1;

std::string_view to_string(Drop d);

// Things the stack did, counted.
enum class Counter : std::uint8_t {
  frames_in,             // frames given to on_frame()/inject()
  frames_out,            // frames placed on the transmit ring
  filter_taken,          // frames the cluster filter took (held or forwarded by the cluster)
  arp_replies_sent,      // requests for the served address answered
  arp_requests_sent,     // next-hop resolutions (first requests and retries)
  arp_announcements,     // gratuitous ARP sent by announce()
  arp_conflicts,         // ARP from another host claiming the served address
  arp_cache_evictions,   // entries evicted from a full cache
  ip_fragments_sent,     // outgoing fragments (large echo replies and UDP datagrams)
  frag_reassembled,      // datagrams completed from fragments
  icmp_echo_replies,     // echo requests answered
  icmp_errors_in,        // ICMP errors received (not yet passed to the transport layer)
  icmp_unreachables,     // port-unreachable messages sent
  udp_delivered,         // datagrams handed to a UdpHandler
  udp_sent,              // datagrams sent by udp_send()
  tcp_rst_sent,          // RSTs sent for segments to closed ports
  tcp_accepted,          // connections that reached ESTABLISHED from a listener
  syn_cookies_sent,      // SYN-ACKs carrying a cookie (the listener's backlog was full)
  syn_cookies_accepted,  // connections created from an ACK with a valid cookie
  tcp_time_wait_reused,  // a SYN to a 4-tuple in TIME-WAIT opened a new connection (RFC 6191)
  tcp_closed,            // connections whose slot was freed
  tcp_handed_over,       // connections forgotten by tcp_hand_over(): another member serves them
  tcp_stale_id,          // API calls with a ConnectionId that is no longer open
  timers_fired,          // connection timers that came due
  tcp_receive_paused,    // on_data() took less than offered: the rest waits in the window
  tcp_tx_deferred,       // a connection stopped sending at a full transmit ring, to resume
  tcp_adopted,           // restored connections put in the table by tcp_adopt()
  tcp_retransmits,       // segments sent again, summed over closed connections
  tcp_fast_retransmits,  // entries into fast recovery (duplicate ACKs or SACK) of those
  tcp_rto_expiries,      // retransmission timeouts of closed connections
};
inline constexpr std::size_t kCounterCount =
    static_cast<std::size_t>(Counter::tcp_rto_expiries) + 1;

std::string_view to_string(Counter c);

class Counters {
 public:
  std::uint64_t drops(Drop d) const { return drops_[static_cast<std::size_t>(d)]; }
  std::uint64_t count(Counter c) const { return counts_[static_cast<std::size_t>(c)]; }
  std::uint64_t total_drops() const;

  void add(Drop d, std::uint64_t n = 1) { drops_[static_cast<std::size_t>(d)] += n; }
  void add(Counter c, std::uint64_t n = 1) { counts_[static_cast<std::size_t>(c)] += n; }

  // Calls f(name, value) for every drop reason ("drop.<reason>") and counter, for metrics.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < kDropCount; ++i) {
      f(to_string(static_cast<Drop>(i)), drops_[i]);
    }
    for (std::size_t i = 0; i < kCounterCount; ++i) {
      f(to_string(static_cast<Counter>(i)), counts_[i]);
    }
  }

 private:
  std::array<std::uint64_t, kDropCount> drops_{};
  std::array<std::uint64_t, kCounterCount> counts_{};
};

}  // namespace phalanx::stack
