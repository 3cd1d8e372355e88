// UDP (RFC 768, RFC 1122 §4.1): sockets bound by port, checksum checked on input and computed on
// output, port unreachable for datagrams to closed ports.
#include "wire/udp.hpp"
#include "stack/stack_impl.hpp"
#include "wire/icmp.hpp"

namespace phalanx::stack {

void StackImpl::udp_input(Time now, const wire::Ipv4View& ip, NextHop from) {
  auto udp = wire::UdpView::parse(ip.payload());
  // A header, and a length field within the datagram.
  if (!udp) {
    counters_.add(Drop::udp_malformed);
    return;
  }
  // The checksum with the pseudo-header, when the sender computed one (RFC 1122 §4.1.3.4).
  if (!udp->checksum_ok(ip.src(), ip.dst())) {
    counters_.add(Drop::udp_bad_checksum);
    return;
  }
  // A bound port; otherwise port unreachable (RFC 1122 §4.1.3.1), rate-limited.
  auto it = udp_ports_.find(udp->dst_port());
  if (it == udp_ports_.end()) {
    counters_.add(Drop::udp_no_listener);
    send_unreachable(now, ip, wire::icmp::kPortUnreachable, from);
    return;
  }
  counters_.add(Counter::udp_delivered);
  it->second->on_datagram(Endpoint{ip.src(), udp->src_port()}, udp->dst_port(), udp->payload());
}

bool StackImpl::udp_bind(std::uint16_t port, UdpHandler* handler) {
  if (handler == nullptr) {
    return false;
  }
  return udp_ports_.emplace(port, handler).second;
}

bool StackImpl::udp_unbind(std::uint16_t port) {
  return udp_ports_.erase(port) > 0;
}

std::optional<SendError> StackImpl::udp_send(Time now, std::uint16_t from_port, Endpoint to,
                                             wire::Bytes payload) {
  constexpr std::size_t kMaxPayload =
      0xffff - wire::Ipv4View::kMinHeaderSize - wire::UdpView::kHeaderSize;
  if (payload.size() > kMaxPayload) {
    return SendError::too_big;
  }
  const auto drops_before = counters_.drops(Drop::tx_no_route);
  // A reply to the packet being processed goes back the way it came.
  const NextHop hop = current_src_ == to.addr ? current_hop_ : NextHop{};
  const wire::UdpRepr udp{from_port, to.port, payload};
  const bool sent = send_ipv4(now, to.addr, wire::ipproto::kUdp, udp.size(), hop,
                              [&](wire::MutBytes out) { udp.emit(out, config_.address, to.addr); });
  if (!sent) {
    return counters_.drops(Drop::tx_no_route) != drops_before ? SendError::no_route
                                                              : SendError::queue_full;
  }
  counters_.add(Counter::udp_sent);
  return std::nullopt;
}

}  // namespace phalanx::stack
