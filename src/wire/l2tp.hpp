// The L2TP version 2 header (RFC 2661 §3.1), as carried in a UDP payload on port 1701. Only the
// header is decoded here: control-message AVPs and the PPP frames of data messages are payload.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
// |           Tunnel ID           |           Session ID          |
// |             Ns (opt)          |             Nr (opt)          |
// |      Offset Size (opt)        |    Offset pad... (opt)
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "wire/bytes.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

inline constexpr std::uint16_t kL2tpPort = 1701;

class L2tpView {
 public:
  static constexpr std::size_t kFlagsVersion = 0;
  static constexpr std::uint16_t kFlagType = 0x8000;      // T: 1 = control message
  static constexpr std::uint16_t kFlagLength = 0x4000;    // L: Length field present
  static constexpr std::uint16_t kFlagSequence = 0x0800;  // S: Ns and Nr present
  static constexpr std::uint16_t kFlagOffset = 0x0200;    // O: Offset Size field present
  static constexpr std::uint16_t kFlagPriority = 0x0100;  // P: data message to be queued first
  static constexpr std::uint16_t kVersionMask = 0x000f;
  static constexpr std::uint16_t kVersion = 2;
  static constexpr std::size_t kMinHeaderSize = 6;   // flags/version, tunnel id, session id
  static constexpr std::size_t kMaxHeaderSize = 16;  // ... + length, Ns, Nr, offset size

  // Validates the header once. Fails with:
  //  - `truncated` when the buffer ends inside the header or before the Length field says;
  //  - `bad_version` when Ver is not 2 (1 is L2F, 3 is L2TPv3: neither is ours);
  //  - `malformed` for a control message without the L and S bits or with the O bit (all three
  //    are MUSTs of RFC 2661 §3.1), or when the offset size points past the end of the message;
  //  - `bad_total_length` when the Length field is smaller than the header itself.
  // Without the L bit the message runs to the end of the buffer. Reserved bits are ignored.
  static Result<L2tpView> parse(Bytes udp_payload) {
    const Bytes b = udp_payload;
    if (b.size() < 2) {
      return Error::truncated;
    }
    const std::uint16_t fv = read_u16(b, kFlagsVersion);
    if ((fv & kVersionMask) != kVersion) {
      return Error::bad_version;
    }
    const bool control = (fv & kFlagType) != 0;
    if (control &&
        ((fv & kFlagLength) == 0 || (fv & kFlagSequence) == 0 || (fv & kFlagOffset) != 0)) {
      return Error::malformed;
    }
    const std::size_t fixed = fixed_header_size(fv);
    if (b.size() < fixed) {
      return Error::truncated;
    }
    Bytes msg = b;
    if ((fv & kFlagLength) != 0) {
      const std::size_t length = read_u16(b, 2);
      if (length < fixed) {
        return Error::bad_total_length;
      }
      if (length > b.size()) {
        return Error::truncated;
      }
      msg = b.first(length);
    }
    std::size_t payload_off = fixed;
    if ((fv & kFlagOffset) != 0) {
      payload_off += read_u16(msg, fixed - 2);
      if (payload_off > msg.size()) {
        return Error::malformed;
      }
    }
    return L2tpView{msg, payload_off};
  }

  bool is_control() const { return (flags() & kFlagType) != 0; }
  bool has_length() const { return (flags() & kFlagLength) != 0; }
  bool has_sequence() const { return (flags() & kFlagSequence) != 0; }
  bool has_offset() const { return (flags() & kFlagOffset) != 0; }
  bool priority() const { return (flags() & kFlagPriority) != 0; }
  std::optional<std::uint16_t> length() const {
    return has_length() ? std::optional<std::uint16_t>(read_u16(b_, 2)) : std::nullopt;
  }
  std::uint16_t tunnel_id() const { return read_u16(b_, ids_offset()); }
  std::uint16_t session_id() const { return read_u16(b_, ids_offset() + 2); }
  std::optional<std::uint16_t> ns() const {
    return has_sequence() ? std::optional<std::uint16_t>(read_u16(b_, ids_offset() + 4))
                          : std::nullopt;
  }
  std::optional<std::uint16_t> nr() const {
    return has_sequence() ? std::optional<std::uint16_t>(read_u16(b_, ids_offset() + 6))
                          : std::nullopt;
  }
  // The Offset Size field: how many bytes of padding follow it before the payload.
  std::optional<std::uint16_t> offset_size() const {
    return has_offset() ? std::optional<std::uint16_t>(read_u16(b_, fixed_header_size(flags()) - 2))
                        : std::nullopt;
  }
  // Header size including the offset padding: where the payload starts.
  std::size_t header_size() const { return payload_off_; }
  // The AVPs of a control message or the PPP frame of a data message; stops at Length when present.
  Bytes payload() const { return b_.subspan(payload_off_); }
  Bytes bytes() const { return b_; }

 private:
  L2tpView(Bytes b, std::size_t payload_off) : b_(b), payload_off_(payload_off) {}

  std::uint16_t flags() const { return read_u16(b_, kFlagsVersion); }
  std::size_t ids_offset() const { return has_length() ? 4 : 2; }

  // Header size up to and including the Offset Size field (not the padding).
  static std::size_t fixed_header_size(std::uint16_t fv) {
    return kMinHeaderSize + ((fv & kFlagLength) != 0 ? 2 : 0) +
           ((fv & kFlagSequence) != 0 ? 4 : 0) + ((fv & kFlagOffset) != 0 ? 2 : 0);
  }

  Bytes b_;
  std::size_t payload_off_;
};

// An L2TPv2 message header plus its payload. The offset padding is emitted as zeros; reserved
// bits are dropped on parse and emitted as zero.
struct L2tpRepr {
  struct Sequence {
    std::uint16_t ns = 0;
    std::uint16_t nr = 0;
    bool operator==(const Sequence&) const = default;
  };

  bool control = false;
  bool with_length = false;  // must be true for control messages
  bool priority = false;     // data messages only (RFC 2661 §3.1)
  std::uint16_t tunnel_id = 0;
  std::uint16_t session_id = 0;
  std::optional<Sequence> sequence;          // must be present for control messages
  std::optional<std::uint16_t> offset_size;  // must be absent for control messages
  Bytes payload;

  static Result<L2tpRepr> parse(Bytes udp_payload) {
    auto v = L2tpView::parse(udp_payload);
    if (!v) {
      return v.error();
    }
    L2tpRepr r;
    r.control = v->is_control();
    r.with_length = v->has_length();
    r.priority = v->priority();
    r.tunnel_id = v->tunnel_id();
    r.session_id = v->session_id();
    if (v->has_sequence()) {
      r.sequence = Sequence{*v->ns(), *v->nr()};
    }
    r.offset_size = v->offset_size();
    r.payload = v->payload();
    return r;
  }

  std::size_t header_size() const {
    return L2tpView::kMinHeaderSize + (with_length ? 2 : 0) + (sequence ? 4 : 0) +
           (offset_size ? 2 + std::size_t{*offset_size} : 0);
  }
  std::size_t size() const { return header_size() + payload.size(); }

  // Writes header and payload into `out` (at least size() bytes; the payload may already be in
  // place). A control repr without length or sequence or with an offset, or a message longer
  // than the 16-bit Length field, is a caller bug and aborts.
  void emit(MutBytes out) const {
    if (control && (!with_length || !sequence || offset_size)) {
      std::abort();
    }
    if (with_length && size() > 0xffff) {
      std::abort();
    }
    // The payload moves first: it may sit in `out` already, possibly where the header goes.
    if (!payload.empty()) {
      std::memmove(out.data() + header_size(), payload.data(), payload.size());
    }
    std::uint16_t fv = L2tpView::kVersion;
    fv |= control ? L2tpView::kFlagType : 0;
    fv |= with_length ? L2tpView::kFlagLength : 0;
    fv |= sequence ? L2tpView::kFlagSequence : 0;
    fv |= offset_size ? L2tpView::kFlagOffset : 0;
    fv |= priority ? L2tpView::kFlagPriority : 0;
    std::size_t off = 0;
    write_u16(out, off, fv);
    off += 2;
    if (with_length) {
      write_u16(out, off, static_cast<std::uint16_t>(size()));
      off += 2;
    }
    write_u16(out, off, tunnel_id);
    write_u16(out, off + 2, session_id);
    off += 4;
    if (sequence) {
      write_u16(out, off, sequence->ns);
      write_u16(out, off + 2, sequence->nr);
      off += 4;
    }
    if (offset_size) {
      write_u16(out, off, *offset_size);
      off += 2;
      std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(off), *offset_size, std::byte{0});
      off += *offset_size;
    }
  }

  bool operator==(const L2tpRepr& o) const {
    return control == o.control && with_length == o.with_length && priority == o.priority &&
           tunnel_id == o.tunnel_id && session_id == o.session_id && sequence == o.sequence &&
           offset_size == o.offset_size && std::ranges::equal(payload, o.payload);
  }
};

}  // namespace phalanx::wire
