#include "sim/node_checkers.hpp"

#include <fmt/format.h>

#include "sim/sim_content.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::sim {

namespace {

std::uint64_t client_key(wire::Ipv4Addr a, std::uint16_t port) {
  return (std::uint64_t{a.value()} << 16) | port;
}

const PeerConnection* find_connection(const NodeWorld& w, wire::Ipv4Addr peer, std::uint16_t port) {
  for (std::size_t p = 0; p < w.peers(); ++p) {
    if (NodeWorld::peer_address(p) != peer) {
      continue;
    }
    for (const PeerConnection& c : w.peer(p).connections()) {
      if (c.local_port == port) {
        return &c;
      }
    }
  }
  return nullptr;
}

std::string describe(const PeerConnection& c) {
  return fmt::format(" (peer {} connection {}, opened at {} ms)", c.peer, c.id,
                     std::chrono::duration_cast<std::chrono::milliseconds>(c.opened).count());
}

}  // namespace

void NodeCheckers::violation(std::string what) {
  ++violation_count_;
  std::string kind = "scenario";
  for (const char* k : {"bytes", "ownership", "reset", "outcome", "lost"}) {
    if (what.starts_with(std::string(k) + ":")) {
      kind = k;
    }
  }
  ++by_kind_[kind];
  if (violations_.size() < kMaxReported) {
    violations_.push_back(std::move(what));
  }
}

void NodeCheckers::on_stream_bytes(const PeerConnection& c, std::uint64_t offset,
                                   wire::Bytes bytes) {
  std::uint64_t& next = next_offset_[{c.peer, c.id}];
  if (offset != next) {
    violation(
        fmt::format("bytes: peer {} connection {} (port {}): {} bytes at offset {}, the "
                    "stream was at {}",
                    c.peer, c.id, c.local_port, bytes.size(), offset, next));
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const std::byte want = content_byte(c.key, offset + i);
    if (bytes[i] != want) {
      violation(
          fmt::format("bytes: peer {} connection {} (port {}): byte at offset {} is {:#04x}, "
                      "expected {:#04x}",
                      c.peer, c.id, c.local_port, offset + i, static_cast<unsigned>(bytes[i]),
                      static_cast<unsigned>(want)));
      break;
    }
  }
  bytes_checked_ += bytes.size();
  next = std::max(next, offset + bytes.size());
}

void NodeCheckers::on_member_frame(const NodeWorld& w, std::size_t slot, wire::Bytes frame) {
  auto eth = wire::EthernetView::parse(frame);
  if (!eth || eth->has_vlan() || eth->ethertype() != wire::ethertype::kIpv4) {
    return;
  }
  auto ip = wire::Ipv4View::parse(frame.subspan(wire::EthernetView::kHeaderSize));
  if (!ip || ip->src() != NodeWorld::kClusterIp || ip->protocol() != wire::ipproto::kTcp) {
    return;
  }
  const wire::Bytes tcp = ip->payload();
  if (tcp.size() < wire::TcpView::kMinHeaderSize) {
    violation(fmt::format("ownership: member {} sent a truncated TCP segment", slot));
    return;
  }
  ++segments_checked_;
  const std::uint16_t port = wire::read_u16(tcp, filter::kL4DstPort);
  const std::uint8_t flags = wire::read_u8(tcp, wire::TcpView::kFlags);
  const filter::WorksetTable& table = w.node(slot)->member().table();
  const filter::WorksetId ws = table.workset_for(filter::FlowKey{ip->dst().value(), port, 0});
  if (table.state(ws) == filter::WorksetState::unassigned ||
      table.owner(ws) != table.config().self) {
    violation(fmt::format(
        "ownership: member {} sent a segment (flags {:#04x}) to {}:{} at {} ms, "
        "workset {} is not its own",
        slot, flags, ip->dst().to_string(), port,
        std::chrono::duration_cast<std::chrono::milliseconds>(w.now()).count(), ws.value()));
  }
  // A reset for a connection whose server is still up, from another member: it would end a
  // live connection under its server's feet. (The crashed server's connections are reset by
  // their worksets' new owner: expected until sessions are replicated.)
  if ((flags & wire::tcpflag::kRst) != 0) {
    const auto it = server_.find(client_key(ip->dst(), port));
    // A connection the peer has ended already (completed: every byte and the FIN arrived) loses
    // nothing to a reset: its TCP may still be in LAST-ACK, retransmitting a FIN whose ACK was
    // lost, after the server's TIME-WAIT worksets moved (they carry no live session).
    const PeerConnection* c = find_connection(w, ip->dst(), port);
    if ((c == nullptr || c->outcome == ConnOutcome::running) && it != server_.end() &&
        it->second.slot != slot && w.up(it->second.slot) &&
        !w.faulted(it->second.slot, it->second.since, w.now()) &&
        reset_reported_.insert(client_key(ip->dst(), port)).second) {
      violation(fmt::format(
          "reset: member {} reset {}:{} at {} ms, served by member {}, up and not faulted{}", slot,
          ip->dst().to_string(), port,
          std::chrono::duration_cast<std::chrono::milliseconds>(w.now()).count(), it->second.slot,
          c != nullptr ? describe(*c) : std::string()));
    }
  }
  constexpr std::uint8_t kSynAck = wire::tcpflag::kSyn | wire::tcpflag::kAck;
  if ((flags & kSynAck) == kSynAck) {
    server_.try_emplace(client_key(ip->dst(), port), Server{slot, w.now()});
  }
}

std::optional<std::size_t> NodeCheckers::server(wire::Ipv4Addr peer, std::uint16_t port) const {
  const auto it = server_.find(client_key(peer, port));
  if (it == server_.end()) {
    return std::nullopt;
  }
  return it->second.slot;
}

void NodeCheckers::finish(const NodeWorld& w) {
  for (std::size_t p = 0; p < w.peers(); ++p) {
    for (const PeerConnection& c : w.peer(p).connections()) {
      const std::string who = fmt::format("peer {} connection {} (port {})", p, c.id, c.local_port);
      switch (c.outcome) {
        case ConnOutcome::running:
          violation(fmt::format("outcome: {} never ended", who));
          break;
        case ConnOutcome::completed:
          if (c.received != c.length) {
            violation(fmt::format("outcome: {} completed with {} of {} bytes", who, c.received,
                                  c.length));
          }
          break;
        case ConnOutcome::truncated:
        case ConnOutcome::bad_response:
          violation(fmt::format("outcome: {} {}: {}", who, to_string(c.outcome), c.detail));
          break;
        case ConnOutcome::reset:
        case ConnOutcome::timed_out:
          break;  // a loss: the scenario counts it
      }
    }
  }
}

}  // namespace phalanx::sim
