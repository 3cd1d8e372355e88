#include "node/checksum_fixup.hpp"

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"

namespace phalanx::node {

namespace {

constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint8_t kProtocolTcp = 6;
constexpr std::uint8_t kProtocolUdp = 17;
constexpr std::size_t kTcpChecksum = 16;
constexpr std::size_t kUdpChecksum = 6;

}  // namespace

bool complete_l4_checksum(wire::MutBytes frame) {
  using wire::EthernetView;
  using wire::Ipv4View;
  if (frame.size() < EthernetView::kHeaderSize ||
      wire::read_u16(frame, EthernetView::kType) != kEtherTypeIpv4) {
    return false;
  }
  wire::MutBytes packet = frame.subspan(EthernetView::kHeaderSize);
  auto ip = Ipv4View::parse(packet);
  if (!ip || ip->is_fragment()) {
    return false;
  }
  const std::uint8_t protocol = wire::read_u8(packet, Ipv4View::kProtocol);
  const std::size_t field = protocol == kProtocolTcp   ? kTcpChecksum
                            : protocol == kProtocolUdp ? kUdpChecksum
                                                       : 0;
  const std::size_t header = ip->header_size();
  const std::size_t length = ip->payload().size();  // bounded by the total-length field
  if (field == 0 || length < field + 2 || length > 0xffff) {
    return false;
  }
  wire::MutBytes segment = packet.subspan(header, length);
  wire::write_u16(segment, field, 0);
  const auto pseudo = wire::checksum::pseudo_header(wire::Ipv4Addr::read(packet, Ipv4View::kSrc),
                                                    wire::Ipv4Addr::read(packet, Ipv4View::kDst),
                                                    protocol, static_cast<std::uint16_t>(length));
  std::uint16_t sum = wire::checksum::compute(segment, pseudo);
  if (protocol == kProtocolUdp && sum == 0) {
    sum = 0xffff;  // RFC 768: a computed zero is sent as all ones
  }
  wire::write_u16(segment, field, sum);
  return true;
}

}  // namespace phalanx::node
