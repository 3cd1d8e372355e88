#include "wire/tcp.hpp"

#include <cstdlib>
#include <cstring>

namespace phalanx::wire {

Result<TcpOptions> TcpOptions::parse(Bytes b) {
  TcpOptions o;
  std::size_t i = 0;
  while (i < b.size()) {
    const std::uint8_t kind = read_u8(b, i);
    if (kind == tcpopt::kEnd) {
      break;  // the rest is padding
    }
    if (kind == tcpopt::kNop) {
      ++i;
      continue;
    }
    // Every other kind, known or not, has a length byte that counts kind and length too.
    if (i + 1 >= b.size()) {
      return Error::bad_option;
    }
    const std::size_t len = read_u8(b, i + 1);
    if (len < 2 || len > b.size() - i) {
      return Error::bad_option;
    }
    const std::size_t body = i + 2;
    switch (kind) {
      case tcpopt::kMss:
        if (len != tcpopt::kMssLength) {
          return Error::bad_option;
        }
        o.mss = read_u16(b, body);
        break;
      case tcpopt::kWindowScale:
        if (len != tcpopt::kWindowScaleLength) {
          return Error::bad_option;
        }
        o.window_scale = read_u8(b, body);  // > 14 is clamped by the TCB (RFC 7323 §2.3), not here
        break;
      case tcpopt::kSackPermitted:
        if (len != tcpopt::kSackPermittedLength) {
          return Error::bad_option;
        }
        o.sack_permitted = true;
        break;
      case tcpopt::kSack: {
        const std::size_t blocks = (len - tcpopt::kSackBaseLength) / tcpopt::kSackBlockLength;
        if ((len - tcpopt::kSackBaseLength) % tcpopt::kSackBlockLength != 0 || blocks == 0 ||
            blocks > kMaxSackBlocks) {
          return Error::bad_option;
        }
        o.sack_count = static_cast<std::uint8_t>(blocks);
        for (std::size_t k = 0; k < blocks; ++k) {
          const std::size_t at = body + k * tcpopt::kSackBlockLength;
          o.sack_blocks[k] = TcpSackBlock{read_u32(b, at), read_u32(b, at + 4)};
        }
        break;
      }
      case tcpopt::kTimestamps:
        if (len != tcpopt::kTimestampsLength) {
          return Error::bad_option;
        }
        o.timestamps = TcpTimestamps{read_u32(b, body), read_u32(b, body + 4)};
        break;
      default:
        break;  // unknown: skipped by its length (RFC 9293 §3.1, MUST-6)
    }
    i += len;
  }
  return o;
}

std::size_t TcpOptions::size() const {
  std::size_t n = 0;
  if (mss) {
    n += 4;
  }
  if (timestamps) {
    n += 12;  // SACK-permitted rides in the TS word's padding when both are present
  } else if (sack_permitted) {
    n += 4;
  }
  if (window_scale) {
    n += 4;
  }
  if (sack_count != 0) {
    n += 4 + std::size_t{sack_count} * tcpopt::kSackBlockLength;
  }
  return n;
}

void TcpOptions::emit(MutBytes out) const {
  std::size_t i = 0;
  auto put8 = [&](std::uint8_t v) { write_u8(out, i++, v); };
  auto put32 = [&](std::uint32_t v) {
    write_u32(out, i, v);
    i += 4;
  };
  if (mss) {
    put8(tcpopt::kMss);
    put8(tcpopt::kMssLength);
    write_u16(out, i, *mss);
    i += 2;
  }
  if (timestamps) {
    if (sack_permitted) {
      put8(tcpopt::kSackPermitted);
      put8(tcpopt::kSackPermittedLength);
    } else {
      put8(tcpopt::kNop);
      put8(tcpopt::kNop);
    }
    put8(tcpopt::kTimestamps);
    put8(tcpopt::kTimestampsLength);
    put32(timestamps->tsval);
    put32(timestamps->tsecr);
  } else if (sack_permitted) {
    put8(tcpopt::kNop);
    put8(tcpopt::kNop);
    put8(tcpopt::kSackPermitted);
    put8(tcpopt::kSackPermittedLength);
  }
  if (window_scale) {
    put8(tcpopt::kNop);
    put8(tcpopt::kWindowScale);
    put8(tcpopt::kWindowScaleLength);
    put8(*window_scale);
  }
  if (sack_count != 0) {
    put8(tcpopt::kNop);
    put8(tcpopt::kNop);
    put8(tcpopt::kSack);
    put8(static_cast<std::uint8_t>(tcpopt::kSackBaseLength +
                                   std::size_t{sack_count} * tcpopt::kSackBlockLength));
    for (const TcpSackBlock& s : sacks()) {
      put32(s.left);
      put32(s.right);
    }
  }
}

Result<TcpRepr> TcpRepr::parse(Bytes b, Ipv4Addr src, Ipv4Addr dst) {
  auto v = TcpView::parse(b);
  if (!v) {
    return v.error();
  }
  if (!v->checksum_ok(src, dst)) {
    return Error::bad_checksum;
  }
  auto opts = TcpOptions::parse(v->options());
  if (!opts) {
    return opts.error();
  }
  TcpRepr r;
  r.src_port = v->src_port();
  r.dst_port = v->dst_port();
  r.seq = v->seq();
  r.ack = v->ack();
  r.flags = v->flags();
  r.window = v->window();
  r.urgent = v->urgent();
  r.options = *opts;
  r.payload = v->payload();
  return r;
}

void TcpRepr::emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst, Checksum checksum) const {
  const std::size_t opts = options.size();
  if (opts > TcpOptions::kMaxSize || size() > 0xffff) {
    std::abort();
  }
  const std::size_t hs = header_size();
  const auto length = static_cast<std::uint16_t>(size());
  // The payload moves first: it may sit in `out` already, possibly where the header goes.
  if (!payload.empty()) {
    std::memmove(out.data() + hs, payload.data(), payload.size());
  }
  write_u16(out, TcpView::kSrcPort, src_port);
  write_u16(out, TcpView::kDstPort, dst_port);
  write_u32(out, TcpView::kSeq, seq);
  write_u32(out, TcpView::kAck, ack);
  write_u8(out, TcpView::kDataOffset, static_cast<std::uint8_t>((hs / 4) << 4));
  write_u8(out, TcpView::kFlags, flags);
  write_u16(out, TcpView::kWindow, window);
  write_u16(out, TcpView::kChecksum, 0);
  write_u16(out, TcpView::kUrgent, urgent);
  options.emit(out.subspan(TcpView::kMinHeaderSize, opts));
  const std::uint32_t pseudo = checksum::pseudo_header(src, dst, ipproto::kTcp, length);
  write_u16(out, TcpView::kChecksum,
            checksum == Checksum::partial ? static_cast<std::uint16_t>(pseudo)
                                          : checksum::compute(Bytes(out.data(), length), pseudo));
}

}  // namespace phalanx::wire
