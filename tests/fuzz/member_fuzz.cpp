// Stateful fuzz target for cluster::Member (issue 9 part 3: nothing a peer sends may reach an
// abort or an assertion). The input is a script, not a datagram: each step advances the clock,
// runs the member's timers when they are due, and hands it one thing a hostile LAN host could
// send — a well-formed message of any type, from any sender (the member itself, a few peers, the
// master it follows, strangers never seen before), of any epoch (its own, one either side, 0, the
// largest), with any fields the encoder accepts, encoded with the real encoder; or a data frame
// to assign, a pause (on_resume), raw bytes, a session opening or ending in a workset
// (SessionView), or the node's answer to a deferred release. After every call check_invariants()
// must hold (it aborts otherwise), and every datagram the member sends must decode.
//
// The script format is private to this file: a byte stream read front to back, where a missing
// byte reads as zero, so every input is a valid script.
#include <algorithm>
#include <bitset>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "cluster/member.hpp"
#include "cluster/messages.hpp"
#include "filter/workset.hpp"

namespace {

using namespace phalanx;
using namespace phalanx::cluster;
using namespace std::chrono_literals;

constexpr std::size_t kMaxSteps = 400;
constexpr std::string_view kCluster = "fuzz";
const Ipv4Addr kSelf{198, 18, 0, 3};

class Script {
 public:
  Script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16()) << 16 | u16(); }
  std::uint64_t u64() { return static_cast<std::uint64_t>(u32()) << 32 | u32(); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Live sessions in whichever worksets the script says (a SessionView op flips one), and clients
// heard or not (the same op, high bit: a master doubts its silent followers without clients).
class Sessions : public SessionView {
 public:
  std::bitset<filter::kWorksetCount> busy_worksets() const override { return busy; }
  std::optional<ClientTraffic> client_traffic() const override { return traffic; }
  std::bitset<filter::kWorksetCount> busy;
  ClientTraffic traffic{};
  bool clients = true;
};

class Fuzz {
 public:
  // The first byte picks immediate or deferred releases and assignments (bit 0:
  // MemberConfig::deferred_release, bit 1: deferred_assign, bit 2: live_moves).
  explicit Fuzz(Script& s) : s_(s), member_(config(s_.u8())) { member_.set_sessions(&sessions_); }

  void run() {
    member_.start(now_);
    after("start");
    for (std::size_t step = 0; step < kMaxSteps && !s_.done(); ++step) {
      advance(std::chrono::microseconds(250) * s_.u8());
      if (sessions_.clients) {
        sessions_.traffic.last = now_;
      }
      const std::uint8_t op = s_.u8();
      switch (op % 18) {
        case 16: {
          const std::uint16_t v = s_.u16();
          sessions_.busy.flip(v % filter::kWorksetCount);
          if ((v & 0x8000) != 0) {
            sessions_.clients = !sessions_.clients;
            sessions_.traffic.resumed = sessions_.clients ? now_ : sessions_.traffic.resumed;
          }
          break;
        }
        case 17: {
          // The node answers a release or an assignment it may or may not have been asked for.
          const filter::WorksetId ws{static_cast<std::uint16_t>(s_.u16() % filter::kWorksetCount)};
          switch (s_.u8() % 3) {
            case 0:
              member_.release_ready(now_, ws);
              break;
            case 1:
              member_.refuse_release(now_, ws);
              break;
            default:
              member_.assign_ready(now_, ws);
              break;
          }
          after("release or assignment answer");
          break;
        }
        case 12: {
          const filter::WorksetId ws{static_cast<std::uint16_t>(s_.u16() % filter::kWorksetCount)};
          std::vector<std::byte> frame(s_.u8() % 64 + 14, std::byte{0x42});
          member_.on_unassigned_packet(now_, ws, wire::Bytes(frame));
          after("on_unassigned_packet");
          break;
        }
        case 13: {
          const Duration away = std::chrono::milliseconds(s_.u16() % 4000);
          now_ += away;
          member_.on_resume(now_, away);
          after("on_resume");
          break;
        }
        case 14: {
          std::vector<std::byte> junk(s_.u8());
          for (auto& b : junk) {
            b = std::byte{s_.u8()};
          }
          deliver(junk);
          break;
        }
        case 15:
          advance(std::chrono::microseconds(10) * s_.u16());  // a longer silence
          break;
        default:
          deliver(encode(message(op % 12), NullAuthenticator{}));
          break;
      }
    }
  }

 private:
  static MemberConfig config(std::uint8_t mode) {
    MemberConfig c;
    c.deferred_release = (mode & 1) != 0;
    c.deferred_assign = (mode & 2) != 0;
    c.live_moves = (mode & 4) != 0;
    c.cluster_name = std::string(kCluster);
    c.address = kSelf;
    c.incarnation = 1;
    c.cluster_ip = Ipv4Addr(198, 18, 0, 100);
    c.held_frames_max = 32;
    c.held_bytes_max = 4096;
    return c;
  }

  // Time moves forward by `d`; the deadlines passed meanwhile fire in order (the first 32: a
  // longer silence is a pause without on_resume, the timers that remain fire late, at once).
  void advance(Duration d) {
    const Time end = now_ + d;
    for (int guard = 0; guard < 32 && member_.next_deadline() <= end; ++guard) {
      now_ = std::max(now_, member_.next_deadline());
      member_.on_timer(now_);
      after("on_timer");
    }
    now_ = end;
  }

  void deliver(const std::vector<std::byte>& datagram) {
    member_.on_control(now_, wire::Bytes(datagram));
    after("on_control");
  }

  // Invariants hold and every datagram the member sends decodes.
  void after(const char* call) {
    member_.check_invariants();
    const Output out = member_.take_output();
    for (const Outgoing& o : out.messages) {
      if (!std::holds_alternative<Message>(decode(wire::Bytes(o.bytes), NullAuthenticator{}))) {
        std::fprintf(stderr, "member_fuzz: after %s the member sent an undecodable datagram\n",
                     call);
        std::abort();
      }
    }
  }

  // Someone the member knows of, or not: itself, its master, a listed member, one of a few
  // peers, or a stranger (a fresh address each time, or any address at all).
  Ipv4Addr someone() {
    switch (s_.u8() % 8) {
      case 0:
        return kSelf;
      case 1:
        return member_.master().value_or(kSelf);
      case 2: {
        const auto& m = member_.members();
        return m.empty() ? kSelf : m[s_.u8() % m.size()];
      }
      case 3:
        ++strangers_;
        return stranger();
      case 4:
        return Ipv4Addr(s_.u32());
      default:
        return Ipv4Addr(198, 18, 0, static_cast<std::uint8_t>(1 + s_.u8() % 6));
    }
  }
  Ipv4Addr stranger() { return Ipv4Addr(0x0a000000u + strangers_); }

  Epoch epoch() {
    const Epoch e = member_.epoch();
    switch (s_.u8() % 8) {
      case 0:
        return 0;
      case 1:
        return std::numeric_limits<Epoch>::max();
      case 2:
        return s_.u64();
      case 3:
        return e + 1;
      case 4:
        return e == 0 ? 0 : e - 1;
      case 5:
        return e + 2;
      default:
        return e;
    }
  }

  std::string text() { return std::string(s_.u8() % (kMaxReasonText + 1), 't'); }

  std::vector<std::uint16_t> worksets() {
    std::vector<std::uint16_t> v(s_.u8() % 48);
    const bool run = s_.u8() % 2 == 0;  // a run of consecutive ids, or scattered ones
    const std::uint16_t first = s_.u16() % filter::kWorksetCount;
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = run ? static_cast<std::uint16_t>((first + i) % filter::kWorksetCount)
                 : static_cast<std::uint16_t>(s_.u16() % filter::kWorksetCount);
    }
    return v;
  }

  MasterKeepalive keepalive() {
    MasterKeepalive ka;
    ka.sequence = s_.u32();
    ka.keepalive_n = s_.u8();
    ka.failure_interval_ms = s_.u8() % 4 == 0 ? s_.u16() : 200;
    const std::uint8_t shape = s_.u8();
    if (shape % 4 == 0) {
      // Hundreds of addresses never seen before (the registry flood).
      ka.members = {someone()};
      if (s_.u8() % 2 == 0) {
        ka.members.push_back(kSelf);
      }
      while (ka.members.size() < kMaxMembers - s_.u8() % 8) {
        ++strangers_;
        ka.members.push_back(stranger());
      }
    } else {
      const std::size_t n = 1 + s_.u8() % 6;
      for (std::size_t i = 0; i < n; ++i) {
        ka.members.push_back(someone());
      }
    }
    switch (shape / 4 % 4) {
      case 0:
        break;  // no table this time
      case 1:
        ka.owners.assign(filter::kWorksetCount, kUnassigned);
        break;
      default: {
        ka.owners.resize(filter::kWorksetCount);
        const std::size_t stride = 1 + s_.u8() % 7;
        for (std::size_t i = 0; i < ka.owners.size(); ++i) {
          const std::size_t pick = (i / stride + s_.u8() % 2) % (ka.members.size() + 1);
          ka.owners[i] = pick == ka.members.size() ? kUnassigned : static_cast<std::uint8_t>(pick);
        }
        break;
      }
    }
    ka.unheard = static_cast<std::uint16_t>(s_.u8() % ka.members.size());
    return ka;
  }

  Body body(int type) {
    switch (type) {
      case 0:
        return JoinRequest{s_.u8() % 3u, worksets()};
      case 1:
        return JoinNak{someone(), static_cast<NakReason>(1 + s_.u8() % 4), text()};
      case 2:
        return JoinAck{someone(), s_.u32()};
      case 3:
        return MasterOffer{s_.u16()};
      case 4:
        return OtherMasterExists{someone()};
      case 5:
        return ExitCluster{someone(), text()};
      case 6:
        return keepalive();
      case 7:
        return FollowerKeepalive{s_.u32(), s_.u32(), worksets()};
      case 8:
        return WorkAssign{someone(), worksets()};
      case 9:
        return WorkAssignAck{worksets()};
      case 10:
        return WorkDeassign{someone(), someone(), worksets()};
      default:
        return WorkDeassignAck{worksets(), worksets()};
    }
  }

  Message message(int type) {
    Message m;
    m.cluster_id = cluster_id_of(s_.u8() % 32 == 0 ? "another" : kCluster);
    m.sender = someone();
    m.epoch = epoch();
    m.body = body(type);
    return m;
  }

  Script& s_;
  Sessions sessions_;
  Member member_;
  Time now_{0};
  std::uint32_t strangers_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Script s(data, size);
  Fuzz(s).run();
  return 0;
}
