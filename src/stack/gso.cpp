#include "stack/gso.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::stack {

namespace {

using wire::Ipv4View;
using wire::TcpView;

struct Layout {
  std::size_t ip_header = 0;
  std::size_t tcp_header = 0;
  std::size_t payload = 0;
};

bool layout_of(wire::Bytes d, std::uint16_t gso_size, Layout& l) {
  if (gso_size == 0 || d.size() < Ipv4View::kMinHeaderSize ||
      (wire::read_u8(d, Ipv4View::kVersionIhl) >> 4) != 4 ||
      wire::read_u8(d, Ipv4View::kProtocol) != wire::ipproto::kTcp) {
    return false;
  }
  l.ip_header = std::size_t{wire::read_u8(d, Ipv4View::kVersionIhl) & 0x0fu} * 4;
  const std::size_t total = wire::read_u16(d, Ipv4View::kTotalLength);
  if (l.ip_header < Ipv4View::kMinHeaderSize || total != d.size() ||
      total < l.ip_header + TcpView::kMinHeaderSize) {
    return false;
  }
  l.tcp_header = std::size_t{wire::read_u8(d, l.ip_header + TcpView::kDataOffset)} / 16 * 4;
  if (l.tcp_header < TcpView::kMinHeaderSize || l.ip_header + l.tcp_header >= total) {
    return false;
  }
  l.payload = total - l.ip_header - l.tcp_header;
  return true;
}

}  // namespace

std::size_t gso_pieces(wire::Bytes datagram, std::uint16_t gso_size) {
  Layout l;
  if (!layout_of(datagram, gso_size, l)) {
    return 0;
  }
  return (l.payload + gso_size - 1) / gso_size;
}

std::size_t gso_piece(wire::Bytes datagram, std::uint16_t gso_size, std::size_t index,
                      wire::MutBytes out) {
  Layout l;
  if (!layout_of(datagram, gso_size, l) || index * gso_size >= l.payload) {
    gso_bad_frame();
  }
  const std::size_t headers = l.ip_header + l.tcp_header;
  const std::size_t offset = index * gso_size;
  const std::size_t len = std::min<std::size_t>(gso_size, l.payload - offset);
  const bool first = index == 0;
  const bool last = offset + len == l.payload;
  if (out.size() < headers + len) {
    gso_bad_frame();
  }
  std::memcpy(out.data(), datagram.data(), headers);
  std::memcpy(out.data() + headers, datagram.data() + headers + offset, len);

  const wire::MutBytes ip = out.first(l.ip_header);
  wire::write_u16(ip, Ipv4View::kTotalLength, static_cast<std::uint16_t>(headers + len));
  wire::write_u16(ip, Ipv4View::kIdent,
                  static_cast<std::uint16_t>(wire::read_u16(ip, Ipv4View::kIdent) + index));
  wire::write_u16(ip, Ipv4View::kChecksum, 0);
  wire::write_u16(ip, Ipv4View::kChecksum, wire::checksum::compute(ip));

  const wire::MutBytes tcp = out.subspan(l.ip_header, l.tcp_header + len);
  wire::write_u32(tcp, TcpView::kSeq,
                  wire::read_u32(tcp, TcpView::kSeq) + static_cast<std::uint32_t>(offset));
  std::uint8_t flags = wire::read_u8(tcp, TcpView::kFlags);
  if (!last) {
    flags &= static_cast<std::uint8_t>(~(wire::tcpflag::kFin | wire::tcpflag::kPsh));
  }
  if (!first) {
    flags &= static_cast<std::uint8_t>(~wire::tcpflag::kCwr);
  }
  wire::write_u8(tcp, TcpView::kFlags, flags);
  const wire::Ipv4Addr src = wire::Ipv4Addr::read(ip, Ipv4View::kSrc);
  const wire::Ipv4Addr dst = wire::Ipv4Addr::read(ip, Ipv4View::kDst);
  wire::write_u16(tcp, TcpView::kChecksum, 0);
  wire::write_u16(tcp, TcpView::kChecksum,
                  wire::checksum::compute(
                      tcp, wire::checksum::pseudo_header(src, dst, wire::ipproto::kTcp,
                                                         static_cast<std::uint16_t>(tcp.size()))));
  return headers + len;
}

void gso_bad_frame() {
  std::fprintf(stderr, "phalanx::stack: a frame marked for segmentation offload is not TCP\n");
  std::abort();
}

}  // namespace phalanx::stack
