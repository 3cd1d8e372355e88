// ARP (RFC 826) for the served address: answer requests (when this member answers, DESIGN §3),
// learn neighbours, announce (RFC 5227 §2.3). Next-hop resolution for outgoing datagrams is in
// ipv4.cpp on top of ArpCache.
#include "wire/arp.hpp"
#include "stack/stack_impl.hpp"

namespace phalanx::stack {

void StackImpl::send_arp(const wire::ArpRepr& arp, wire::MacAddr dst) {
  const wire::MutBytes frame = begin_frame(dst, wire::ethertype::kArp);
  if (frame.empty()) {
    return;
  }
  arp.emit(frame.subspan(wire::EthernetView::kHeaderSize));
  tx_.commit(wire::EthernetView::kHeaderSize + arp.size());
  counters_.add(Counter::frames_out);
}

// A request must not rebind the served address in the neighbours' caches (RFC 826 merge: every
// host holding an entry for the sender updates it): it names the served MAC, the binding the
// cluster wants; and a member that does not answer ARP for the served address (a follower) asks
// with sender address 0.0.0.0, as an RFC 5227 probe, which updates nobody's cache. The reply is
// addressed to the served MAC, and the frame leaves from our own MAC (DESIGN §3).
void StackImpl::send_arp_request(wire::Ipv4Addr target) {
  const wire::Ipv4Addr sender = config_.answer_arp ? config_.address : wire::Ipv4Addr{};
  send_arp(wire::ArpRepr::request(served_mac_, sender, target), wire::MacAddr::broadcast());
  counters_.add(Counter::arp_requests_sent);
}

void StackImpl::announce() {
  send_arp(wire::ArpRepr::gratuitous(served_mac_, config_.address), wire::MacAddr::broadcast());
  counters_.add(Counter::arp_announcements);
}

void StackImpl::arp_input(Time now, const wire::EthernetView& eth) {
  auto parsed = wire::ArpRepr::parse(eth.payload());
  // Ethernet/IPv4 request or reply, 28 bytes.
  if (!parsed) {
    counters_.add(parsed.error() == wire::Error::unsupported ? Drop::arp_unsupported
                                                             : Drop::arp_malformed);
    return;
  }
  const wire::ArpRepr& arp = *parsed;
  // A sender that cannot be a neighbour: a group address, or one of our own MACs looped back.
  if (arp.sender_ip.is_broadcast() || arp.sender_ip.is_multicast() ||
      !arp.sender_mac.is_unicast() || arp.sender_mac == config_.mac ||
      arp.sender_mac == served_mac_) {
    counters_.add(Drop::arp_bad_sender);
    return;
  }
  // Someone else claims the served address: the cluster layer sees the counter (two masters,
  // or a misconfigured host). We neither learn nor answer it.
  if (arp.sender_ip == config_.address) {
    counters_.add(Counter::arp_conflicts);
    return;
  }
  const bool for_us = arp.target_ip == config_.address;
  // A reply to one of our probes (sent as a follower) names 0.0.0.0 as its target.
  const bool reply_to_probe = arp.operation == wire::ArpOperation::reply &&
                              arp.target_ip.is_unspecified() && arp_.contains(arp.sender_ip);
  // RFC 826 merge: refresh an entry we hold; create one only when the packet is for us. A
  // sender without an address yet (an RFC 5227 probe, sender 0.0.0.0) teaches nothing.
  if (!arp.sender_ip.is_unspecified()) {
    arp_.learn(now, arp.sender_ip, arp.sender_mac, for_us,
               [&](wire::Bytes datagram) { transmit_datagram(arp.sender_mac, datagram); });
  }
  // Requests for the served address are answered; everything else ends here.
  if (!for_us || arp.operation != wire::ArpOperation::request) {
    if (!for_us && !reply_to_probe) {
      counters_.add(Drop::arp_not_for_us);
    }
    return;
  }
  if (!config_.answer_arp) {
    counters_.add(Drop::arp_replies_off);
    return;
  }
  // The reply binds the served address to the served MAC; the frame leaves from our own MAC
  // (DESIGN §3) to the asker.
  send_arp(wire::ArpRepr::reply_to(arp, served_mac_), arp.sender_mac);
  counters_.add(Counter::arp_replies_sent);
}

}  // namespace phalanx::stack
