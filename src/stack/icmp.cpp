// ICMP (RFC 792, RFC 1122 §3.2.2): echo replies, destination-unreachable errors with a rate
// limit (RFC 1812 §4.3.2.8), and the count of errors received.
#include <algorithm>
#include <cstring>

#include "stack/stack_impl.hpp"
#include "wire/checksum.hpp"
#include "wire/icmp.hpp"
#include "wire/mix.hpp"

namespace phalanx::stack {

using wire::IcmpView;

void StackImpl::icmp_input(Time now, const wire::Ipv4View& ip, NextHop from) {
  auto icmp = IcmpView::parse(ip.payload());
  // At least the 8-byte header.
  if (!icmp) {
    counters_.add(Drop::icmp_malformed);
    return;
  }
  // The checksum over the whole message.
  if (!icmp->checksum_ok()) {
    counters_.add(Drop::icmp_bad_checksum);
    return;
  }
  // Errors about datagrams we sent: counted; the transport layers do not use them yet.
  if (wire::icmp::is_error(icmp->type())) {
    counters_.add(Counter::icmp_errors_in);
    return;
  }
  // Echo requests are answered; every other type is not ours to act on.
  if (icmp->type() != wire::icmp::kEchoRequest) {
    counters_.add(Drop::icmp_unsupported);
    return;
  }
  auto echo = wire::IcmpEchoRepr::parse(icmp->bytes());
  // Code 0 only (RFC 792).
  if (!echo) {
    counters_.add(Drop::icmp_malformed);
    return;
  }
  // The reply carries the same identifier, sequence and data, with a checksum computed afresh
  // over the whole message (not patched incrementally: RFC 1624's corner case).
  const wire::IcmpEchoRepr reply = echo->reply();
  if (send_ipv4(now, ip.src(), wire::ipproto::kIcmp, reply.size(), from,
                [&](wire::MutBytes out) { reply.emit(out); })) {
    counters_.add(Counter::icmp_echo_replies);
  }
}

bool StackImpl::icmp_error_allowed(Time now, wire::Ipv4Addr to) {
  // A destination new to its slot takes it over with a full bucket (Linux's inetpeer entries
  // come and go the same way); the table's size bounds the memory whatever the sources.
  IcmpDestination& d = icmp_destinations_[wire::fmix64(to.value()) % icmp_destinations_.size()];
  if (d.addr != to) {
    d = {to, TokenBucket(config_.limits.icmp_error_interval_per_destination,
                         config_.limits.icmp_errors_per_destination_burst, now)};
  }
  // The global allowance first, as Linux; a refusal there spends nothing of the destination's.
  if (!icmp_all_.can_take(now)) {
    counters_.add(Drop::icmp_rate_limited);
    return false;
  }
  if (!d.bucket.take(now)) {
    counters_.add(Drop::icmp_dest_limited);
    return false;
  }
  icmp_all_.take(now);
  return true;
}

void StackImpl::send_unreachable(Time now, const wire::Ipv4View& offending, std::uint8_t code,
                                 NextHop to) {
  // Never an error about a packet sent to a group, nor about an error (RFC 1122 §3.2.2).
  if (to.to_group) {
    return;
  }
  if (offending.protocol() == wire::ipproto::kIcmp) {
    auto inner = IcmpView::parse(offending.payload());
    if (!inner || wire::icmp::is_error(inner->type())) {
      return;
    }
  }
  if (!icmp_error_allowed(now, offending.src())) {
    return;
  }
  // As much of the offending datagram as fits in 576 bytes (RFC 1812 §4.3.2.3); at least its
  // header and 8 bytes (RFC 792).
  constexpr std::size_t kMaxError = 576 - wire::Ipv4View::kMinHeaderSize - IcmpView::kHeaderSize;
  const wire::Bytes quoted = offending.bytes().first(std::min(offending.bytes().size(), kMaxError));
  const std::size_t size = IcmpView::kHeaderSize + quoted.size();
  const bool sent =
      send_ipv4(now, offending.src(), wire::ipproto::kIcmp, size, to, [&](wire::MutBytes out) {
        wire::write_u8(out, IcmpView::kType, wire::icmp::kDestUnreachable);
        wire::write_u8(out, IcmpView::kCode, code);
        wire::write_u16(out, IcmpView::kChecksum, 0);
        wire::write_u32(out, IcmpView::kRest, 0);
        std::memcpy(out.data() + IcmpView::kHeaderSize, quoted.data(), quoted.size());
        wire::write_u16(out, IcmpView::kChecksum, wire::checksum::compute(out.first(size)));
      });
  if (sent) {
    counters_.add(Counter::icmp_unreachables);
  }
}

}  // namespace phalanx::stack
