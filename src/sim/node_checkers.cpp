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

std::string_view to_string(LoadKind k) {
  switch (k) {
    case LoadKind::download:
      return "download";
    case LoadKind::echo:
      return "echo";
    case LoadKind::idle:
      return "idle";
    case LoadKind::short_download:
      return "short";
  }
  return "unknown";
}

LoadKind load_kind(const PeerConnection& c) {
  switch (c.kind) {
    case StreamKind::download:
      return c.burst ? LoadKind::short_download : LoadKind::download;
    case StreamKind::echo:
      return LoadKind::echo;
    case StreamKind::idle:
      return LoadKind::idle;
  }
  return LoadKind::download;
}

void NodeCheckers::on_open(const PeerConnection& c) {
  // A port used again (the peer wrapped its ephemeral range): a new connection, a new server.
  const std::uint64_t key = client_key(NodeWorld::peer_address(c.peer), c.local_port);
  server_.erase(key);
  running_[key] = true;
  current_[key] = {c.peer, c.id};
}

void NodeCheckers::on_outcome(const PeerConnection& c) {
  running_[client_key(NodeWorld::peer_address(c.peer), c.local_port)] = false;
}

void NodeCheckers::violation(std::string what) {
  ++violation_count_;
  std::string kind = "scenario";
  for (const char* k : {"bytes", "ownership", "reset", "outcome", "lost"}) {
    if (what.starts_with(std::string(k) + ":")) {
      kind = k;
    }
  }
  ++by_rule_[kind];
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
  // Nor does a server reset its own connection while the peer runs it: nothing in the
  // workloads warrants one (idle connections' keepalive probes must be answered with an ACK).
  if ((flags & wire::tcpflag::kRst) != 0) {
    const std::uint64_t key = client_key(ip->dst(), port);
    const auto it = server_.find(key);
    const auto alive = running_.find(key);
    // A connection the peer has ended already (completed: every byte and the FIN arrived) loses
    // nothing to a reset: its TCP may still be in LAST-ACK, retransmitting a FIN whose ACK was
    // lost, after the server's TIME-WAIT worksets moved (they carry no live session).
    const PeerConnection* c = find_connection(w, ip->dst(), port);
    if ((c == nullptr || c->outcome == ConnOutcome::running) && it != server_.end() &&
        it->second.slot != slot && w.up(it->second.slot) &&
        !w.faulted(it->second.slot, it->second.since, w.now()) &&
        reset_reported_.insert(key).second) {
      violation(fmt::format(
          "reset: member {} reset {}:{} at {} ms, served by member {}, up and not faulted{}", slot,
          ip->dst().to_string(), port,
          std::chrono::duration_cast<std::chrono::milliseconds>(w.now()).count(), it->second.slot,
          c != nullptr ? describe(*c) : std::string()));
    } else if (it != server_.end() && it->second.slot == slot && alive != running_.end() &&
               alive->second && !w.faulted(slot, it->second.since, w.now())) {
      // (A member restarted since its SYN-ACK is another process: its RST is the expected loss
      // of a crash, judged by the scenario.)
      violation(
          fmt::format("reset: member {} reset its own live connection {}:{} at {} ms", slot,
                      ip->dst().to_string(), port,
                      std::chrono::duration_cast<std::chrono::milliseconds>(w.now()).count()));
    }
  }
  constexpr std::uint8_t kSynAck = wire::tcpflag::kSyn | wire::tcpflag::kAck;
  if ((flags & kSynAck) == kSynAck) {
    const std::uint64_t key = client_key(ip->dst(), port);
    server_.try_emplace(key, Server{slot, w.now()});
    if (const auto it = current_.find(key); it != current_.end()) {
      conn_server_.try_emplace(it->second, slot);
    }
  }
}

std::optional<std::size_t> NodeCheckers::server(const PeerConnection& c) const {
  const auto it = conn_server_.find({c.peer, c.id});
  if (it == conn_server_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<std::size_t> NodeCheckers::server(wire::Ipv4Addr peer, std::uint16_t port) const {
  const auto it = server_.find(client_key(peer, port));
  if (it == server_.end()) {
    return std::nullopt;
  }
  return it->second.slot;
}

void NodeCheckers::finish(const NodeWorld& w) {
  by_kind_ = {};
  for (std::size_t p = 0; p < w.peers(); ++p) {
    if (const std::size_t n = w.peer(p).queued() + w.peer(p).abandoned(); n > 0) {
      violation(
          fmt::format("outcome: peer {}: {} requests of bursts never got their connection", p, n));
    }
    for (const PeerConnection& c : w.peer(p).connections()) {
      const std::string who = fmt::format("peer {} {} connection {} (port {})", p,
                                          to_string(load_kind(c)), c.id, c.local_port);
      KindTally& tally = by_kind_[static_cast<std::size_t>(load_kind(c))];
      ++tally.opened;
      tally.completed += c.outcome == ConnOutcome::completed ? 1 : 0;
      tally.lost += c.outcome == ConnOutcome::reset || c.outcome == ConnOutcome::timed_out ? 1 : 0;
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
          // A loss: the scenario counts it. Its cause must be on record.
          if (c.detail.empty()) {
            violation(
                fmt::format("outcome: {} {} with no cause recorded", who, to_string(c.outcome)));
          }
          break;
      }
    }
  }
}

}  // namespace phalanx::sim
