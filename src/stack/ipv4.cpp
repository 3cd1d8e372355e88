// IPv4 (RFC 791, RFC 1122 §3.2.1): the input checklist, fragment reassembly hand-off, the
// cluster filter, delivery to ICMP/UDP/TCP; routing to a next hop and output with fragmentation.
#include <algorithm>
#include <cstring>

#include "stack/gso.hpp"
#include "stack/stack_impl.hpp"
#include "wire/arp.hpp"
#include "wire/checksum.hpp"
#include "wire/icmp.hpp"

namespace phalanx::stack {

using wire::Ipv4View;

void StackImpl::ipv4_input(Time now, const wire::EthernetView& eth, bool filtered) {
  auto ip = Ipv4View::parse(eth.payload());
  // Version 4, a header length of at least 20, a total length within the frame.
  if (!ip) {
    counters_.add(ip.error() == wire::Error::bad_version ? Drop::ip_bad_version
                                                         : Drop::ip_malformed);
    return;
  }
  // The header checksum (RFC 1122 §3.2.1.2: silently discard).
  if (!ip->checksum_ok()) {
    counters_.add(Drop::ip_bad_checksum);
    return;
  }
  // To the served address only: we are no router, and broadcasts are not ours to serve.
  if (ip->dst() != config_.address) {
    counters_.add(Drop::ip_not_for_us);
    return;
  }
  // A source no reply could go to (RFC 1122 §3.2.1.3), or our own address reflected back.
  const wire::Ipv4Addr src = ip->src();
  if (src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src == config_.address) {
    counters_.add(Drop::ip_bad_source);
    return;
  }
  const NextHop from{config_.reply_to_frame_source ? std::optional(eth.src()) : std::nullopt,
                     eth.dst().is_multicast() && eth.dst() != served_mac_};

  // Fragments are reassembled first; the cluster filter then sees the whole datagram.
  if (ip->is_fragment()) {
    const std::optional<wire::Bytes> whole = reassembler_.add(now, *ip, counters_);
    if (!whole) {
      return;
    }
    if (filtered && filter_ != nullptr) {
      const FilterVerdict v = filter_->on_datagram(now, *whole);
      if (v == FilterVerdict::not_mine) {
        counters_.add(Drop::filter_not_mine);
        return;
      }
      if (v == FilterVerdict::taken) {
        counters_.add(Counter::filter_taken);
        return;
      }
    }
    ipv4_deliver(now, Ipv4View::parse(*whole).value(), from);
    return;
  }
  // The cluster filter (FIG. 9): mine, someone else's, or taken by the cluster layer.
  if (filtered && filter_ != nullptr) {
    const FilterVerdict v = filter_->on_frame(now, eth.bytes());
    if (v == FilterVerdict::not_mine) {
      counters_.add(Drop::filter_not_mine);
      return;
    }
    if (v == FilterVerdict::taken) {
      counters_.add(Counter::filter_taken);
      return;
    }
  }
  ipv4_deliver(now, *ip, from);
}

void StackImpl::ipv4_deliver(Time now, const Ipv4View& ip, NextHop from) {
  current_src_ = ip.src();
  current_hop_ = from;
  switch (ip.protocol()) {
    case wire::ipproto::kIcmp:
      icmp_input(now, ip, from);
      break;
    case wire::ipproto::kUdp:
      udp_input(now, ip, from);
      break;
    case wire::ipproto::kTcp:
      tcp_input(now, ip, from);
      break;
    default:
      // RFC 1122 §3.2.2.1: protocol unreachable.
      counters_.add(Drop::ip_unknown_protocol);
      send_unreachable(now, ip, wire::icmp::kProtocolUnreachable, from);
      break;
  }
  current_src_.reset();
  current_hop_ = NextHop{};
}

bool StackImpl::on_link(wire::Ipv4Addr a) const {
  const std::uint32_t mask =
      config_.prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - config_.prefix_length);
  return (a.value() & mask) == (config_.address.value() & mask);
}

std::optional<wire::Ipv4Addr> StackImpl::route(wire::Ipv4Addr dst) const {
  if (dst.is_unspecified() || dst.is_broadcast() || dst.is_multicast() || dst == config_.address) {
    return std::nullopt;
  }
  if (on_link(dst)) {
    return dst;
  }
  return config_.gateway;
}

wire::Ipv4Repr StackImpl::ipv4_header(wire::Ipv4Addr dst, std::uint8_t protocol,
                                      std::size_t payload_len, std::size_t pieces) {
  wire::Ipv4Repr r;
  r.src = config_.address;
  r.dst = dst;
  r.protocol = protocol;
  r.ttl = config_.limits.ttl;
  r.ident = ident_;
  ident_ = static_cast<std::uint16_t>(ident_ + pieces);
  // TCP sizes its segments to the MTU (or the link cuts them to it: pieces > 1) and wants to
  // hear if a path is narrower (RFC 1191); ICMP and UDP may be fragmented on the way.
  r.dont_fragment =
      protocol == wire::ipproto::kTcp &&
      (pieces > 1 || wire::Ipv4View::kMinHeaderSize + payload_len <= config_.limits.mtu);
  r.payload_len = static_cast<std::uint16_t>(payload_len);
  return r;
}

wire::MutBytes StackImpl::begin_frame(wire::MacAddr dst, std::uint16_t ethertype,
                                      std::size_t bytes) {
  const wire::MutBytes slot = tx_.reserve(bytes);
  if (slot.empty()) {
    counters_.add(Drop::tx_queue_full);
    return {};
  }
  wire::EthernetRepr{dst, config_.mac, std::nullopt, ethertype}.emit(slot);
  return slot;
}

bool StackImpl::tx_room_for_segment() const {
  const std::size_t largest =
      config_.limits.offload_max != 0 ? config_.limits.offload_max : config_.limits.mtu;
  return tx_.has_room(wire::EthernetView::kHeaderSize + largest);
}

bool StackImpl::queue_pieces_for_arp(Time now, wire::Ipv4Addr next_hop, wire::Bytes datagram,
                                     std::uint16_t gso_size) {
  const std::size_t n = gso_pieces(datagram, gso_size);
  std::vector<std::byte> piece(config_.limits.mtu);
  bool queued = n > 0;
  for (std::size_t i = 0; i < n && queued; ++i) {
    const std::size_t len = gso_piece(datagram, gso_size, i, piece);
    queued = queue_for_arp(now, next_hop, wire::Bytes(piece.data(), len));
  }
  return queued;
}

bool StackImpl::queue_for_arp(Time now, wire::Ipv4Addr next_hop, wire::Bytes datagram) {
  switch (arp_.enqueue(now, next_hop, datagram)) {
    case ArpCache::Queued::full:
      counters_.add(Drop::arp_queue_full);
      return false;
    case ArpCache::Queued::send_request:
      send_arp_request(next_hop);
      return true;
    case ArpCache::Queued::queued:
      return true;
  }
  return false;
}

bool StackImpl::transmit_datagram(wire::MacAddr mac, wire::Bytes datagram) {
  constexpr std::size_t kEth = wire::EthernetView::kHeaderSize;
  const std::size_t mtu = config_.limits.mtu;
  if (datagram.size() <= mtu) {
    const wire::MutBytes frame = begin_frame(mac, wire::ethertype::kIpv4);
    if (frame.empty()) {
      return false;
    }
    std::memcpy(frame.data() + kEth, datagram.data(), datagram.size());
    tx_.commit(kEth + datagram.size());
    counters_.add(Counter::frames_out);
    return true;
  }
  // RFC 791 fragmentation: each fragment repeats the header (ours has no options) and carries a
  // multiple of 8 bytes but the last. All fragments or none: a partial datagram is only waste.
  const Ipv4View ip = Ipv4View::parse(datagram).value();
  const std::size_t hs = ip.header_size();
  const wire::Bytes payload = ip.payload();
  const std::size_t chunk = (mtu - hs) & ~std::size_t{7};
  const std::size_t count = (payload.size() + chunk - 1) / chunk;
  if (tx_.free_slots() < count) {
    counters_.add(Drop::tx_queue_full);
    return false;
  }
  for (std::size_t off = 0; off < payload.size(); off += chunk) {
    const std::size_t len = std::min(chunk, payload.size() - off);
    const wire::MutBytes frame = begin_frame(mac, wire::ethertype::kIpv4);
    const wire::MutBytes out = frame.subspan(kEth, hs + len);
    std::memcpy(out.data(), datagram.data(), hs);
    std::memcpy(out.data() + hs, payload.data() + off, len);
    std::uint16_t ff = static_cast<std::uint16_t>(off / 8);
    if (off + len < payload.size()) {
      ff |= Ipv4View::kFlagMoreFragments;
    }
    wire::write_u16(out, Ipv4View::kTotalLength, static_cast<std::uint16_t>(hs + len));
    wire::write_u16(out, Ipv4View::kFlagsFragment, ff);
    wire::write_u16(out, Ipv4View::kChecksum, 0);
    wire::write_u16(out, Ipv4View::kChecksum, wire::checksum::compute(out.first(hs)));
    tx_.commit(kEth + hs + len);
    counters_.add(Counter::frames_out);
    counters_.add(Counter::ip_fragments_sent);
  }
  return true;
}

}  // namespace phalanx::stack
