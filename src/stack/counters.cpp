#include "stack/counters.hpp"

#include "stack/types.hpp"

namespace phalanx::stack {

std::string_view to_string(Drop d) {
  switch (d) {
    case Drop::eth_malformed:
      return "drop.eth_malformed";
    case Drop::eth_vlan_tagged:
      return "drop.eth_vlan_tagged";
    case Drop::eth_not_for_us:
      return "drop.eth_not_for_us";
    case Drop::eth_unknown_type:
      return "drop.eth_unknown_type";
    case Drop::arp_malformed:
      return "drop.arp_malformed";
    case Drop::arp_unsupported:
      return "drop.arp_unsupported";
    case Drop::arp_not_for_us:
      return "drop.arp_not_for_us";
    case Drop::arp_replies_off:
      return "drop.arp_replies_off";
    case Drop::arp_bad_sender:
      return "drop.arp_bad_sender";
    case Drop::arp_queue_full:
      return "drop.arp_queue_full";
    case Drop::arp_unresolved:
      return "drop.arp_unresolved";
    case Drop::ip_malformed:
      return "drop.ip_malformed";
    case Drop::ip_bad_version:
      return "drop.ip_bad_version";
    case Drop::ip_bad_checksum:
      return "drop.ip_bad_checksum";
    case Drop::ip_not_for_us:
      return "drop.ip_not_for_us";
    case Drop::ip_bad_source:
      return "drop.ip_bad_source";
    case Drop::ip_unknown_protocol:
      return "drop.ip_unknown_protocol";
    case Drop::filter_not_mine:
      return "drop.filter_not_mine";
    case Drop::frag_malformed:
      return "drop.frag_malformed";
    case Drop::frag_too_big:
      return "drop.frag_too_big";
    case Drop::frag_overlap:
      return "drop.frag_overlap";
    case Drop::frag_duplicate:
      return "drop.frag_duplicate";
    case Drop::frag_timeout:
      return "drop.frag_timeout";
    case Drop::frag_no_memory:
      return "drop.frag_no_memory";
    case Drop::icmp_malformed:
      return "drop.icmp_malformed";
    case Drop::icmp_bad_checksum:
      return "drop.icmp_bad_checksum";
    case Drop::icmp_unsupported:
      return "drop.icmp_unsupported";
    case Drop::icmp_rate_limited:
      return "drop.icmp_rate_limited";
    case Drop::icmp_dest_limited:
      return "drop.icmp_dest_rate_limited";
    case Drop::udp_malformed:
      return "drop.udp_malformed";
    case Drop::udp_bad_checksum:
      return "drop.udp_bad_checksum";
    case Drop::udp_no_listener:
      return "drop.udp_no_listener";
    case Drop::tcp_malformed:
      return "drop.tcp_malformed";
    case Drop::tcp_bad_checksum:
      return "drop.tcp_bad_checksum";
    case Drop::tcp_bad_option:
      return "drop.tcp_bad_option";
    case Drop::tcp_no_connection:
      return "drop.tcp_no_connection";
    case Drop::tcp_listener_refused:
      return "drop.tcp_listener_refused";
    case Drop::tcp_open_refused:
      return "drop.tcp_open_refused";
    case Drop::tcp_connection_limit:
      return "drop.tcp_connection_limit";
    case Drop::tcp_syn_evicted:
      return "drop.tcp_syn_evicted";
    case Drop::tcp_adopt_in_use:
      return "drop.tcp_adopt_in_use";
    case Drop::tcp_adopt_invalid:
      return "drop.tcp_adopt_invalid";
    case Drop::tx_queue_full:
      return "drop.tx_queue_full";
    case Drop::tx_too_big:
      return "drop.tx_too_big";
    case Drop::tx_no_route:
      return "drop.tx_no_route";
  }
  return "drop.unknown";
}

std::string_view to_string(Counter c) {
  switch (c) {
    case Counter::frames_in:
      return "frames_in";
    case Counter::frames_out:
      return "frames_out";
    case Counter::filter_taken:
      return "filter_taken";
    case Counter::arp_replies_sent:
      return "arp_replies_sent";
    case Counter::arp_requests_sent:
      return "arp_requests_sent";
    case Counter::arp_announcements:
      return "arp_announcements";
    case Counter::arp_conflicts:
      return "arp_conflicts";
    case Counter::arp_cache_evictions:
      return "arp_cache_evictions";
    case Counter::ip_fragments_sent:
      return "ip_fragments_sent";
    case Counter::frag_reassembled:
      return "frag_reassembled";
    case Counter::icmp_echo_replies:
      return "icmp_echo_replies";
    case Counter::icmp_errors_in:
      return "icmp_errors_in";
    case Counter::icmp_unreachables:
      return "icmp_unreachables";
    case Counter::udp_delivered:
      return "udp_delivered";
    case Counter::udp_sent:
      return "udp_sent";
    case Counter::tcp_rst_sent:
      return "tcp_rst_sent";
    case Counter::tcp_accepted:
      return "tcp_accepted";
    case Counter::syn_cookies_sent:
      return "syn_cookies_sent";
    case Counter::syn_cookies_accepted:
      return "syn_cookies_accepted";
    case Counter::tcp_time_wait_reused:
      return "tcp_time_wait_reused";
    case Counter::tcp_closed:
      return "tcp_closed";
    case Counter::tcp_handed_over:
      return "tcp_handed_over";
    case Counter::tcp_stale_id:
      return "tcp_stale_id";
    case Counter::timers_fired:
      return "timers_fired";
    case Counter::tcp_receive_paused:
      return "tcp_receive_paused";
    case Counter::tcp_tx_deferred:
      return "tcp_tx_deferred";
    case Counter::tcp_adopted:
      return "tcp_adopted";
    case Counter::tcp_retransmits:
      return "tcp_retransmits";
    case Counter::tcp_fast_retransmits:
      return "tcp_fast_retransmits";
    case Counter::tcp_rto_expiries:
      return "tcp_rto_expiries";
  }
  return "unknown";
}

std::uint64_t Counters::total_drops() const {
  std::uint64_t n = 0;
  for (std::uint64_t d : drops_) {
    n += d;
  }
  return n;
}

const char* to_string(CloseReason r) {
  switch (r) {
    case CloseReason::closed:
      return "closed";
    case CloseReason::reset_by_peer:
      return "reset by peer";
    case CloseReason::timed_out:
      return "timed out";
    case CloseReason::handed_over:
      return "handed over";
  }
  return "unknown";
}

}  // namespace phalanx::stack
