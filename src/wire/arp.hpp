// ARP for IPv4 over Ethernet (RFC 826), the only combination a cluster member speaks. Gratuitous
// ARP follows RFC 5227 §2.3 (an "ARP Announcement"): a request whose sender and target protocol
// addresses are both the announced address, target hardware address zero.
#pragma once

#include <cstdint>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

enum class ArpOperation : std::uint16_t {
  request = 1,
  reply = 2,
};

class ArpView {
 public:
  static constexpr std::size_t kHardwareType = 0;
  static constexpr std::size_t kProtocolType = 2;
  static constexpr std::size_t kHardwareLength = 4;
  static constexpr std::size_t kProtocolLength = 5;
  static constexpr std::size_t kOperation = 6;
  static constexpr std::size_t kFixedSize = 8;  // everything before the addresses
  static constexpr std::size_t kSenderMac = 8;
  static constexpr std::size_t kSenderIp = 14;
  static constexpr std::size_t kTargetMac = 18;
  static constexpr std::size_t kTargetIp = 24;
  static constexpr std::size_t kSize = 28;

  static constexpr std::uint16_t kHardwareEthernet = 1;  // RFC 826 ar$hrd for Ethernet
  static constexpr std::uint16_t kProtocolIpv4 = 0x0800;

  // Fails with `truncated` when the buffer ends before the fixed part or the addresses, and with
  // `unsupported` for anything but Ethernet/IPv4 (type or length fields) or an operation other
  // than request/reply (RARP, InARP). The buffer may be longer (Ethernet padding): bytes() stops
  // at kSize.
  static Result<ArpView> parse(Bytes b) {
    if (b.size() < kFixedSize) {
      return Error::truncated;
    }
    // The type and length fields come first so that a foreign ARP is `unsupported`, not
    // `truncated`, whatever its address sizes.
    if (read_u16(b, kHardwareType) != kHardwareEthernet ||
        read_u16(b, kProtocolType) != kProtocolIpv4 ||
        read_u8(b, kHardwareLength) != MacAddr::kSize || read_u8(b, kProtocolLength) != 4) {
      return Error::unsupported;
    }
    const std::uint16_t op = read_u16(b, kOperation);
    if (op != static_cast<std::uint16_t>(ArpOperation::request) &&
        op != static_cast<std::uint16_t>(ArpOperation::reply)) {
      return Error::unsupported;
    }
    if (b.size() < kSize) {
      return Error::truncated;
    }
    return ArpView{b.first(kSize)};
  }

  // Request or reply; parse() rejected every other value.
  ArpOperation operation() const { return ArpOperation{read_u16(b_, kOperation)}; }
  // Hardware address of the sender (the one to learn).
  MacAddr sender_mac() const { return MacAddr::read(b_, kSenderMac); }
  // Protocol address of the sender.
  Ipv4Addr sender_ip() const { return Ipv4Addr::read(b_, kSenderIp); }
  // Hardware address of the target: meaningless in a request (zero or broadcast by convention).
  MacAddr target_mac() const { return MacAddr::read(b_, kTargetMac); }
  // Protocol address being asked for (request) or answered to (reply).
  Ipv4Addr target_ip() const { return Ipv4Addr::read(b_, kTargetIp); }
  // The 28 bytes of the ARP packet, without any padding that followed it.
  Bytes bytes() const { return b_; }

 private:
  explicit ArpView(Bytes b) : b_(b) {}
  Bytes b_;
};

// Every field of an Ethernet/IPv4 ARP packet that varies; the fixed type and length fields are
// implied, so emit(parse(x)) reproduces x byte for byte.
struct ArpRepr {
  ArpOperation operation = ArpOperation::request;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;

  // "Who has `target_ip`? Tell `sender_ip`": target MAC zero, as the Linux kernel sends it.
  static ArpRepr request(MacAddr sender_mac, Ipv4Addr sender_ip, Ipv4Addr target_ip) {
    return ArpRepr{ArpOperation::request, sender_mac, sender_ip, MacAddr{}, target_ip};
  }

  // "`sender_ip` is at `sender_mac`", addressed to the asker.
  static ArpRepr reply(MacAddr sender_mac, Ipv4Addr sender_ip, MacAddr target_mac,
                       Ipv4Addr target_ip) {
    return ArpRepr{ArpOperation::reply, sender_mac, sender_ip, target_mac, target_ip};
  }

  // The answer to `req` from the owner of req.target_ip at `my_mac` (RFC 826 "swap fields").
  static ArpRepr reply_to(const ArpRepr& req, MacAddr my_mac) {
    return reply(my_mac, req.target_ip, req.sender_mac, req.sender_ip);
  }

  // RFC 5227 §2.3 ARP Announcement: a request for our own address, so that every neighbour
  // updates its cache (e.g. after a cluster IP moves to this member).
  static ArpRepr gratuitous(MacAddr mac, Ipv4Addr ip) {
    return ArpRepr{ArpOperation::request, mac, ip, MacAddr{}, ip};
  }

  // True for an announcement of either operation (sender and target IP equal); such a packet
  // asks nobody anything and must never be answered.
  bool is_gratuitous() const { return sender_ip == target_ip; }

  // Fails as ArpView::parse().
  static Result<ArpRepr> parse(Bytes b) {
    auto v = ArpView::parse(b);
    if (!v) {
      return v.error();
    }
    return ArpRepr{v->operation(), v->sender_mac(), v->sender_ip(), v->target_mac(),
                   v->target_ip()};
  }

  std::size_t size() const { return ArpView::kSize; }

  // Writes the 28-byte packet into the first size() bytes of `out` (the caller sized it).
  void emit(MutBytes out) const {
    write_u16(out, ArpView::kHardwareType, ArpView::kHardwareEthernet);
    write_u16(out, ArpView::kProtocolType, ArpView::kProtocolIpv4);
    write_u8(out, ArpView::kHardwareLength, MacAddr::kSize);
    write_u8(out, ArpView::kProtocolLength, 4);
    write_u16(out, ArpView::kOperation, static_cast<std::uint16_t>(operation));
    sender_mac.write(out, ArpView::kSenderMac);
    sender_ip.write(out, ArpView::kSenderIp);
    target_mac.write(out, ArpView::kTargetMac);
    target_ip.write(out, ArpView::kTargetIp);
  }

  bool operator==(const ArpRepr&) const = default;
};

}  // namespace phalanx::wire
