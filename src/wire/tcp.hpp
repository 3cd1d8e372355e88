// TCP segments (RFC 9293 §3.1) over IPv4 and the options we use: MSS (RFC 9293 §3.2), window
// scale and timestamps (RFC 7323), SACK-permitted and SACK blocks (RFC 2018). Unknown options are
// skipped by their length. Sequence numbers are plain 32-bit values here; src/tcp wraps them.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

namespace tcpflag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
inline constexpr std::uint8_t kUrg = 0x20;
inline constexpr std::uint8_t kEce = 0x40;
inline constexpr std::uint8_t kCwr = 0x80;
}  // namespace tcpflag

namespace tcpopt {
inline constexpr std::uint8_t kEnd = 0;
inline constexpr std::uint8_t kNop = 1;
inline constexpr std::uint8_t kMss = 2;
inline constexpr std::uint8_t kWindowScale = 3;
inline constexpr std::uint8_t kSackPermitted = 4;
inline constexpr std::uint8_t kSack = 5;
inline constexpr std::uint8_t kTimestamps = 8;

inline constexpr std::uint8_t kMssLength = 4;
inline constexpr std::uint8_t kWindowScaleLength = 3;
inline constexpr std::uint8_t kSackPermittedLength = 2;
inline constexpr std::uint8_t kSackBaseLength = 2;
inline constexpr std::uint8_t kSackBlockLength = 8;
inline constexpr std::uint8_t kTimestampsLength = 10;
}  // namespace tcpopt

class TcpView {
 public:
  static constexpr std::size_t kSrcPort = 0;
  static constexpr std::size_t kDstPort = 2;
  static constexpr std::size_t kSeq = 4;
  static constexpr std::size_t kAck = 8;
  static constexpr std::size_t kDataOffset = 12;  // high nibble, in 32-bit words
  static constexpr std::size_t kFlags = 13;
  static constexpr std::size_t kWindow = 14;
  static constexpr std::size_t kChecksum = 16;
  static constexpr std::size_t kUrgent = 18;
  static constexpr std::size_t kMinHeaderSize = 20;
  static constexpr std::size_t kMaxHeaderSize = 60;

  // Validates the structure (not the checksum: see checksum_ok(); not the options: see
  // TcpOptions::parse()). `b` is the whole segment, e.g. the IPv4 payload. Fails with `truncated`
  // when the buffer is shorter than the fixed header or than the data offset says, and with
  // `bad_header_length` for a data offset below 5 words.
  static Result<TcpView> parse(Bytes b) {
    if (b.size() < kMinHeaderSize) {
      return Error::truncated;
    }
    const std::size_t hs = header_size(b);
    if (hs < kMinHeaderSize) {
      return Error::bad_header_length;
    }
    if (hs > b.size()) {
      return Error::truncated;
    }
    return TcpView{b};
  }

  std::uint16_t src_port() const { return read_u16(b_, kSrcPort); }
  std::uint16_t dst_port() const { return read_u16(b_, kDstPort); }
  std::uint32_t seq() const { return read_u32(b_, kSeq); }
  std::uint32_t ack() const { return read_u32(b_, kAck); }
  std::size_t header_size() const { return header_size(b_); }
  std::uint8_t flags() const { return read_u8(b_, kFlags); }
  // True when every bit of `flag` (a tcpflag:: constant or an or of them) is set.
  bool has(std::uint8_t flag) const { return (flags() & flag) == flag; }
  std::uint16_t window() const { return read_u16(b_, kWindow); }
  std::uint16_t checksum() const { return read_u16(b_, kChecksum); }
  std::uint16_t urgent() const { return read_u16(b_, kUrgent); }
  // False also for a buffer too long for the pseudo-header's 16-bit length.
  bool checksum_ok(Ipv4Addr src, Ipv4Addr dst) const {
    if (b_.size() > 0xffff) {
      return false;
    }
    const auto length = static_cast<std::uint16_t>(b_.size());
    return checksum::verify(b_, checksum::pseudo_header(src, dst, ipproto::kTcp, length));
  }
  Bytes options() const { return b_.subspan(kMinHeaderSize, header_size() - kMinHeaderSize); }
  Bytes payload() const { return b_.subspan(header_size()); }
  Bytes bytes() const { return b_; }

 private:
  explicit TcpView(Bytes b) : b_(b) {}
  static std::size_t header_size(Bytes b) {
    return static_cast<std::size_t>(read_u8(b, kDataOffset) >> 4) * 4;
  }
  Bytes b_;
};

struct TcpSackBlock {
  std::uint32_t left = 0;   // first sequence number of the block
  std::uint32_t right = 0;  // sequence number just past the block
  bool operator==(const TcpSackBlock&) const = default;
};

struct TcpTimestamps {
  std::uint32_t tsval = 0;
  std::uint32_t tsecr = 0;
  bool operator==(const TcpTimestamps&) const = default;
};

// The options of one segment, as values. Each option appears at most once (a repeated one in the
// input: the last wins); NOP, EOL and unknown options are not kept.
struct TcpOptions {
  static constexpr std::size_t kMaxSackBlocks = 4;  // 2 + 4 * 8 = 34 of the 40 option bytes
  static constexpr std::size_t kMaxSize = TcpView::kMaxHeaderSize - TcpView::kMinHeaderSize;

  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_scale;
  bool sack_permitted = false;
  std::optional<TcpTimestamps> timestamps;
  std::array<TcpSackBlock, kMaxSackBlocks> sack_blocks{};
  std::uint8_t sack_count = 0;  // blocks in use at the front of sack_blocks

  std::span<const TcpSackBlock> sacks() const { return {sack_blocks.data(), sack_count}; }

  // Parses an option list (the bytes between the fixed header and the data). Fails with
  // `bad_option` for an option whose length byte is missing, below 2, runs past the end, or is
  // not the fixed size of its kind (MSS 4, WS 3, SACK-permitted 2, TS 10), and for a SACK option
  // not of length 2 + 8k with 1 <= k <= 4. Parsing stops at EOL.
  static Result<TcpOptions> parse(Bytes options);

  // Bytes emit() writes: Linux's layout, already a multiple of 4. May exceed kMaxSize (e.g. TS
  // with 4 SACK blocks); TcpRepr::emit() refuses such a set.
  std::size_t size() const;

  // Writes size() bytes in the order Linux's tcp_options_write() uses: MSS; SACK-permitted + TS
  // (or NOP NOP TS, or NOP NOP SACK-permitted); NOP WS; NOP NOP SACK blocks.
  void emit(MutBytes out) const;

  bool operator==(const TcpOptions& o) const {
    return mss == o.mss && window_scale == o.window_scale && sack_permitted == o.sack_permitted &&
           timestamps == o.timestamps && std::ranges::equal(sacks(), o.sacks());
  }
};

// A segment's header fields, options and payload. The checksum is not kept: parse() verifies it
// and emit() computes it. Reserved header bits are dropped.
struct TcpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;  // tcpflag:: bits
  std::uint16_t window = 0;
  std::uint16_t urgent = 0;
  TcpOptions options;
  Bytes payload;

  // Parses the header, verifies the checksum with the IPv4 pseudo-header (`bad_checksum`) and
  // parses the options (`bad_option`); structural errors as TcpView::parse().
  static Result<TcpRepr> parse(Bytes b, Ipv4Addr src, Ipv4Addr dst);

  bool has(std::uint8_t flag) const { return (flags & flag) == flag; }
  std::size_t header_size() const { return TcpView::kMinHeaderSize + options.size(); }
  std::size_t size() const { return header_size() + payload.size(); }

  // How emit() fills the checksum field. `partial` writes only the pseudo-header sum (folded,
  // not complemented) for the kernel or NIC to finish over the segment: Linux's
  // CHECKSUM_PARTIAL, which segmentation offload requires.
  enum class Checksum : std::uint8_t { full, partial };

  // Writes header, options and payload into `out` (at least size() bytes; the payload may already
  // be in place) with the checksum filled as `checksum` says. Options longer than 40 bytes or a
  // segment longer than 65535 bytes are caller bugs and abort.
  void emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst, Checksum checksum = Checksum::full) const;

  bool operator==(const TcpRepr& o) const {
    return src_port == o.src_port && dst_port == o.dst_port && seq == o.seq && ack == o.ack &&
           flags == o.flags && window == o.window && urgent == o.urgent && options == o.options &&
           std::ranges::equal(payload, o.payload);
  }
};

}  // namespace phalanx::wire
