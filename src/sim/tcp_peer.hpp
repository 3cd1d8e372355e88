// A TCP peer of the whole-member simulator: a remote host on the virtual L2 segment that opens
// client connections to the cluster IP, as a Linux client would (DESIGN §10, issue 10).
//
// Modelled: its own IPv4 address and MAC; ARP (answers requests for its address, resolves the
// cluster IP by broadcast request every second until an answer, and follows any ARP that binds
// the cluster IP, as Linux refreshes an existing entry); IPv4 without options or fragments;
// tcp::Connection with the driver's Linux-like config (RTO min 200 ms, delayed ACK 40 ms); an
// RST for a segment of no connection (RFC 9293 §3.10.7.1, as Linux). Workloads:
//   - download: "GET /f<i> HTTP/1.1" with "Connection: close"; the peer checks status 200 and
//     Content-Length, then hands every body byte to the observer at its offset;
//   - echo: the peer sends a seeded stream to port 7, `echo_chunk` bytes every `echo_interval`
//     (an interactive session, so that connections live long enough to meet faults), and hands
//     every byte echoed back to the observer; it closes its direction once everything came back;
//   - idle: an echo stream with TCP keepalive on (SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL
//     and TCP_KEEPCNT from PeerConfig): the peer sends `head` bytes, waits for their echo, stays
//     quiet for `idle` (only keepalive probes leave), then sends the rest, as a long-lived
//     session (ssh, a database pool) does;
//   - burst: `open_burst` runs short downloads one after another, each its own connection,
//     the next opened `burst_gap` after the previous one ended (whatever its outcome).
// Ports: each connection takes the next port of the ephemeral range (Linux's default
// ip_local_port_range 32768-60999 unless PeerConfig says otherwise), wrapping, and skips a port
// whose previous connection is not closed (TIME-WAIT included: Linux reuses one for connect()
// only with tcp_tw_reuse, off beyond loopback). A port whose connection is closed at the peer
// (the peer closed second) may still be in TIME-WAIT at the server, which then meets the new
// SYN (RFC 6191).
// Like an application with a receive timeout (curl --speed-time), a connection on which nothing
// arrived for `idle_timeout` is aborted and ends timed_out: a client waiting for a response from
// a server that died sends nothing, so its TCP would never notice. An idle connection's quiet
// phase is not a wait: there, keepalive is what notices a dead server.
// Not modelled: IP fragments, ICMP, a routing table (everything is on one segment), ARP cache
// expiry.
//
// A connection ends with one outcome: completed (every byte arrived and the peer's FIN after
// them), reset (an RST was accepted: `reset_by` is the source MAC of the last RST seen),
// timed_out (the TCP engine gave up — retransmissions, SYN retries or keepalive probes — or the
// scenario did: give_up()), truncated (a clean close before every byte), bad_response (status,
// Content-Length or too many bytes). `detail` says why, for every outcome but completed.
//
// Pure like the members: `now` comes in, frames go out through drain().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tcp/connection.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"

namespace phalanx::sim {

using phalanx::Time;

enum class StreamKind : std::uint8_t { download, echo, idle };
std::string_view to_string(StreamKind k);
enum class ConnOutcome : std::uint8_t {
  running,
  completed,
  reset,
  timed_out,
  truncated,
  bad_response,
};
std::string_view to_string(ConnOutcome o);

// One client connection as observers see it.
struct PeerConnection {
  std::size_t peer = 0;
  std::size_t id = 0;  // index in its peer's connections()
  StreamKind kind = StreamKind::download;
  std::uint64_t key = 0;     // content key of the expected stream (sim_content.hpp)
  std::uint64_t length = 0;  // expected stream bytes (body, or echo)
  std::uint16_t local_port = 0;
  std::uint16_t remote_port = 0;
  Time opened{0};
  Time ended{0};
  ConnOutcome outcome = ConnOutcome::running;
  std::optional<wire::MacAddr> reset_by;  // source MAC of the last RST received
  std::string detail;                     // why it ended, unless completed
  std::uint64_t received = 0;             // stream bytes handed to the observer
  // A short download of a burst: the burst's index (open_burst's return value).
  std::optional<std::size_t> burst;
  // Idle: the stream bytes sent before the quiet phase, and how long it lasts.
  std::uint64_t head = 0;
  Duration idle{0};
  // Idle: segments sent (keepalive probes, an ACK) and received (the probes' answers) in the
  // quiet phase, and the keepalive probes among those sent.
  std::uint64_t quiet_segments_out = 0;
  std::uint64_t quiet_segments_in = 0;
  std::uint64_t keepalive_probes = 0;
};

// One request of a burst.
struct ShortRequest {
  std::string path;
  std::uint64_t key = 0;
  std::uint64_t size = 0;
};

class PeerObserver {
 public:
  virtual ~PeerObserver() = default;
  // In-order stream bytes of `c` (a download's body, an echo's bytes) at stream `offset`.
  virtual void on_stream_bytes(const PeerConnection& c, std::uint64_t offset,
                               wire::Bytes bytes) = 0;
  // `c` was just opened (its SYN is about to leave).
  virtual void on_open(const PeerConnection& /*c*/) {}
  // `c` just got its outcome.
  virtual void on_outcome(const PeerConnection& /*c*/) {}
};

struct PeerConfig {
  std::size_t index = 0;
  wire::Ipv4Addr address;
  wire::MacAddr mac;
  wire::Ipv4Addr cluster_ip;
  tcp::Config tcp;  // Linux-like by default (tcp/config.hpp)
  // The ephemeral range (ip_local_port_range) and the first port taken, within it.
  std::uint16_t first_ephemeral = 32768;
  std::uint16_t last_ephemeral = 60999;
  std::uint16_t first_port = 32768;
  std::uint16_t http_port = 80;
  std::uint16_t echo_port = 7;
  std::size_t echo_chunk = 2048;
  Duration echo_interval = std::chrono::milliseconds(50);
  Duration idle_timeout = std::chrono::seconds(10);
  // Idle connections' keepalive (Linux's TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT; 1 s is the
  // smallest TCP_KEEPIDLE Linux takes).
  Duration keepalive_idle = std::chrono::seconds(1);
  Duration keepalive_interval = std::chrono::seconds(1);
  std::uint32_t keepalive_count = 5;
  // A burst opens its next connection this long after the previous one ended.
  Duration burst_gap = std::chrono::milliseconds(5);
};

struct PeerCounters {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t arp_requests = 0;
  std::uint64_t arp_replies = 0;
  std::uint64_t drop_not_for_us = 0;
  std::uint64_t drop_malformed = 0;
  std::uint64_t drop_no_connection = 0;  // answered with an RST
  std::uint64_t ports_skipped = 0;       // an ephemeral port whose connection was not closed
};

class TcpPeer {
 public:
  using FrameSink = std::function<void(wire::Bytes)>;
  static constexpr Time kArpRetry = std::chrono::seconds(1);

  // `observer` is borrowed (may be null).
  TcpPeer(PeerConfig config, PeerObserver* observer);
  ~TcpPeer();
  TcpPeer(const TcpPeer&) = delete;
  TcpPeer& operator=(const TcpPeer&) = delete;

  // Opens a download of `path` ("f3"), expecting `size` bytes of stream `key`. Returns its id.
  std::size_t open_download(Time now, const std::string& path, std::uint64_t key,
                            std::uint64_t size);
  // Opens an echo connection that sends `length` bytes of stream `key`.
  std::size_t open_echo(Time now, std::uint64_t key, std::uint64_t length);
  // Opens an idle echo connection with keepalive: `head` bytes of stream `key`, `idle` of quiet
  // once they came back, then `length - head` more bytes. head <= length.
  std::size_t open_idle(Time now, std::uint64_t key, std::uint64_t head, Duration idle,
                        std::uint64_t length);
  // Starts a burst: `requests` downloaded one after another, each on its own connection (the
  // first opens now). Returns the burst's index.
  std::size_t open_burst(Time now, std::vector<ShortRequest> requests);

  void on_frame(Time now, wire::Bytes frame);
  void on_timer(Time now);
  Time next_deadline() const;
  // Every frame waiting to leave, oldest first.
  void drain(const FrameSink& sink);
  // Ends every running connection as timed_out and drops the requests bursts have not opened
  // yet (the scenario's own limit).
  void give_up(Time now);

  const std::vector<PeerConnection>& connections() const { return info_; }
  std::size_t running() const { return running_; }
  // Requests of bursts not opened yet, and those give_up() dropped.
  std::size_t queued() const { return queued_; }
  std::size_t abandoned() const { return abandoned_; }
  wire::Ipv4Addr address() const { return config_.address; }
  wire::MacAddr mac() const { return config_.mac; }
  std::optional<wire::MacAddr> cluster_mac() const { return cluster_mac_; }
  const PeerCounters& counters() const { return counters_; }

 private:
  struct Conn;
  struct Burst {
    std::vector<ShortRequest> requests;
    std::size_t next = 0;     // the next request to open
    std::optional<Time> due;  // when it opens (the previous one ended)
  };

  // `info` carries the kind, key, length and the kind's own fields.
  std::size_t open(Time now, PeerConnection info, std::string request);
  std::uint16_t take_port();
  void open_due_bursts(Time now);
  // In an idle connection's quiet phase.
  bool quiet(std::size_t id, Time now) const;
  void on_arp(Time now, wire::Bytes arp);
  void on_tcp(Time now, wire::MacAddr src_mac, wire::Bytes ip_payload, wire::Ipv4Addr src);
  // Runs the application and the output of connection `id` after any input.
  void pump(Time now, std::size_t id);
  void read(Time now, std::size_t id);
  void write(Time now, std::size_t id);
  // An echo connection with stream bytes still to queue.
  bool wants_write(std::size_t id) const;
  void finish(Time now, std::size_t id, ConnOutcome outcome, std::string detail = {});
  void transmit(Time now, std::size_t id);
  void emit_tcp(const wire::TcpRepr& seg, wire::MacAddr dst_mac);
  void ask_cluster_mac(Time now);

  PeerConfig config_;
  PeerObserver* observer_;
  std::vector<PeerConnection> info_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::map<std::uint16_t, std::size_t> by_port_;
  std::uint16_t next_port_;
  std::size_t running_ = 0;
  std::vector<Burst> bursts_;
  std::size_t queued_ = 0;
  std::size_t abandoned_ = 0;
  std::optional<wire::MacAddr> cluster_mac_;
  std::optional<Time> last_arp_ask_;
  std::uint16_t ident_ = 0;
  std::vector<std::vector<std::byte>> tx_;
  std::vector<std::byte> scratch_;
  PeerCounters counters_;
};

}  // namespace phalanx::sim
