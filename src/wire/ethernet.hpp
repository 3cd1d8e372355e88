// Ethernet II frames (IEEE 802.3 framing with an EtherType), with at most one 802.1Q tag.
// The FCS is not part of the frame here: Linux hands frames to AF_PACKET without it.
#pragma once

#include <cstdint>
#include <optional>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

namespace ethertype {
inline constexpr std::uint16_t kIpv4 = 0x0800;
inline constexpr std::uint16_t kArp = 0x0806;
inline constexpr std::uint16_t kVlan = 0x8100;
inline constexpr std::uint16_t kIpv6 = 0x86dd;
}  // namespace ethertype

class EthernetView {
 public:
  static constexpr std::size_t kDst = 0;
  static constexpr std::size_t kSrc = 6;
  static constexpr std::size_t kType = 12;
  static constexpr std::size_t kHeaderSize = 14;
  static constexpr std::size_t kVlanTci = 14;
  static constexpr std::size_t kVlanInnerType = 16;
  static constexpr std::size_t kVlanHeaderSize = 18;

  // Fails with `truncated` when the buffer is shorter than the (tagged) header, and with
  // `malformed` for a second, stacked 802.1Q tag (not supported).
  static Result<EthernetView> parse(Bytes frame) {
    if (frame.size() < kHeaderSize) {
      return Error::truncated;
    }
    if (read_u16(frame, kType) != ethertype::kVlan) {
      return EthernetView{frame, false};
    }
    if (frame.size() < kVlanHeaderSize) {
      return Error::truncated;
    }
    if (read_u16(frame, kVlanInnerType) == ethertype::kVlan) {
      return Error::malformed;
    }
    return EthernetView{frame, true};
  }

  MacAddr dst() const { return MacAddr::read(b_, kDst); }
  MacAddr src() const { return MacAddr::read(b_, kSrc); }
  bool has_vlan() const { return vlan_; }
  // The 802.1Q tag control information (PCP, DEI, VID), when tagged.
  std::optional<std::uint16_t> vlan_tci() const {
    return vlan_ ? std::optional<std::uint16_t>(read_u16(b_, kVlanTci)) : std::nullopt;
  }
  // The EtherType of the payload (the inner one when tagged).
  std::uint16_t ethertype() const { return read_u16(b_, vlan_ ? kVlanInnerType : kType); }
  std::size_t header_size() const { return vlan_ ? kVlanHeaderSize : kHeaderSize; }
  Bytes payload() const { return b_.subspan(header_size()); }
  Bytes bytes() const { return b_; }

 private:
  EthernetView(Bytes b, bool vlan) : b_(b), vlan_(vlan) {}
  Bytes b_;
  bool vlan_;
};

struct EthernetRepr {
  MacAddr dst;
  MacAddr src;
  std::optional<std::uint16_t> vlan_tci;
  std::uint16_t ethertype = 0;

  static Result<EthernetRepr> parse(Bytes frame) {
    auto v = EthernetView::parse(frame);
    if (!v) {
      return v.error();
    }
    return EthernetRepr{v->dst(), v->src(), v->vlan_tci(), v->ethertype()};
  }

  std::size_t size() const {
    return vlan_tci ? EthernetView::kVlanHeaderSize : EthernetView::kHeaderSize;
  }

  // Writes the header into the first size() bytes of `out` (the caller sized it).
  void emit(MutBytes out) const {
    dst.write(out, EthernetView::kDst);
    src.write(out, EthernetView::kSrc);
    if (vlan_tci) {
      write_u16(out, EthernetView::kType, ethertype::kVlan);
      write_u16(out, EthernetView::kVlanTci, *vlan_tci);
      write_u16(out, EthernetView::kVlanInnerType, ethertype);
    } else {
      write_u16(out, EthernetView::kType, ethertype);
    }
  }

  bool operator==(const EthernetRepr&) const = default;
};

}  // namespace phalanx::wire
