// One HTTP/1.1 connection of the static file server (DESIGN §8): bytes from the peer in,
// response bytes out, with no knowledge of TCP. HttpServer (http_server.hpp) connects it to the
// stack; the tests drive it directly.
//
// What it answers (RFC 9110, RFC 9112):
//   GET / HEAD of a file                -> 200 (Accept-Ranges: bytes); HEAD sends no body
//   GET with one satisfiable Range      -> 206 + Content-Range: bytes first-last/size
//   GET with an unsatisfiable Range     -> 416 + Content-Range: bytes */size
//   Range with several ranges, another unit, bad syntax, or with If-Range (we send no
//   validators, so no If-Range can match), or on HEAD -> ignored: 200 with the whole file
//   a directory                          -> its index.html, else 404
//   no such file / a file named with a trailing slash / a symlink -> 404
//   a target that escapes the root or decodes to NUL -> 400
//   another method                       -> 405 + Allow: GET, HEAD
//   a parse error                        -> 400 / 413 / 414 / 431 / 505, then close
//   a file that cannot be read           -> 500
// Every response carries Server: phalanx, Content-Type, Content-Length; never Date, so the
// output is a pure function of the requests and the files. Responses go out in request order
// (pipelining); keep-alive unless the request or HTTP/1.0 says otherwise (then Connection:
// close and the session finishes after that response).
//
// Output is pulled: peek(max) shows the next bytes, consume(n) says how many the transport took.
// A file body is read in chunks of chunk_size as the transport takes them, so memory per session
// is one chunk, one response head and the bounded input, whatever the file size.
//
// Resuming after a takeover (DESIGN §6). The output stream is a deterministic function of the
// input stream and the files, so a session is rebuilt from a small snapshot:
//   SessionSnapshot{input, stream_offset, peer_closed}
// where `input` is every received byte from the start of the oldest request whose response is
// not yet retired (retired = fully sent, or with retain_until_acked, fully acknowledged by the
// peer via acknowledge()), including a partial request and unparsed input, and `stream_offset`
// is the output-stream position where that request's response begins. restore(snapshot, offset)
// on a fresh session re-parses the input, regenerates the responses and skips to `offset` (e.g.
// the peer's snd_una) without reading the skipped file bytes: the bytes it then produces are
// exactly the original stream from `offset` on. The snapshot holds no file data, only request
// bytes, bounded by the parser's limits times the requests awaiting retirement.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/file_source.hpp"
#include "apps/http_parser.hpp"
#include "wire/bytes.hpp"

namespace phalanx::apps::http {

struct SessionLimits {
  ParserLimits parser;
  // Received bytes kept while the parser is full (max_queued requests awaiting answers).
  // take_input() takes no more (the transport keeps the rest in its window); on_input(), for a
  // transport that cannot pause, fails the session instead.
  std::size_t max_backlog = 64 * 1024;
  std::size_t chunk_size = 16 * 1024;  // file bytes read per FileSource call
  // Keep a request until acknowledge() covers its whole response instead of until it is fully
  // sent, so that a snapshot can regenerate every unacknowledged byte (DESIGN §6).
  bool retain_until_acked = false;
};

struct SessionSnapshot {
  std::string input;
  std::uint64_t stream_offset = 0;
  bool peer_closed = false;
  bool operator==(const SessionSnapshot&) const = default;
};

struct SessionCounters {
  std::uint64_t responses = 0;
  std::uint64_t status_2xx = 0;
  std::uint64_t status_4xx = 0;
  std::uint64_t status_5xx = 0;
  std::uint64_t parse_errors = 0;    // 400/413/414/431/505 from the parser, then close
  std::uint64_t input_overflow = 0;  // on_input() beyond max_backlog: the session failed
  std::uint64_t short_read = 0;      // a file shrank or failed mid-body: abort (length was sent)
  std::uint64_t body_bytes = 0;      // file bytes sent
};

enum class SessionState : std::uint8_t {
  active,    // more output may come
  finished,  // all output consumed and nothing more will come: shut the connection down
  failed,    // cannot continue (input overflow, short read): abort the connection
};

class HttpSession {
 public:
  explicit HttpSession(FileSource& files, SessionLimits limits = {});

  // Bytes from the peer, in order, from a transport that can pause (stack::TcpHandler::on_data):
  // takes what the parser and the backlog (max_backlog) hold and returns how many; the caller
  // keeps the rest and offers it again once input_room() says so. Input after the peer's FIN,
  // after a closing request or after failure is taken and ignored.
  std::size_t take_input(wire::Bytes in);
  // take_input() would take at least one byte now.
  bool input_room() const;
  // Bytes from the peer, for a transport that cannot pause: as take_input(), but bytes it
  // would leave fail the session (counted as input_overflow) and it returns false.
  bool on_input(wire::Bytes in);
  bool on_input(std::string_view in) {
    return on_input(wire::Bytes(reinterpret_cast<const std::byte*>(in.data()), in.size()));
  }
  // The peer sent FIN: answer the complete requests, drop a partial one, then finish.
  void on_peer_closed();

  // The next output bytes, at most `max`; empty when nothing is ready (waiting for input, or
  // finished or failed: see state()). Valid until the next call on the session.
  wire::Bytes peek(std::size_t max);
  // The transport accepted the first n bytes of the last peek() (n <= its size).
  void consume(std::size_t n);

  SessionState state() const;
  // Output bytes consumed since the connection began: the stream offset of the next byte.
  std::uint64_t stream_offset() const { return produced_; }

  // Output is a function of the input taken so far up to this stream offset: the end of the
  // response being sent (later requests' responses are not built yet), or stream_offset().
  // Session replication lets the output run no further than the replicated input determines.
  std::uint64_t output_determined() const { return std::max(determined_, produced_); }
  // The peer acknowledged the output stream up to `acked` (only with retain_until_acked).
  void acknowledge(std::uint64_t acked);
  SessionSnapshot snapshot() const;
  // Rebuilds the session from a snapshot and skips to output offset `resume_at`. Only on a
  // session that has seen no input or output. False (and the session fails) when resume_at lies
  // before snapshot.stream_offset or beyond the output the snapshot regenerates.
  bool restore(const SessionSnapshot& snapshot, std::uint64_t resume_at);

  const SessionCounters& counters() const { return counters_; }
  // Aborts on a broken internal invariant (STYLE 5).
  void check_invariants() const;

 private:
  static constexpr std::uint64_t kInProgress = UINT64_MAX;

  struct Response {
    std::string head;
    std::size_t head_sent = 0;
    std::unique_ptr<File> file;
    std::uint64_t body_next = 0;  // file offset of the next body byte to give out
    std::uint64_t body_end = 0;   // file offset one past the last body byte
    bool close_after = false;
    bool complete() const { return head_sent == head.size() && body_next == body_end; }
  };

  // A request whose response has begun and is not retired; its bytes lead input_log_.
  struct Retained {
    std::size_t wire_size = 0;
    std::uint64_t response_end = kInProgress;  // output offset one past its response
  };

  void pump_backlog();
  bool start_next();
  Response build(const Parsed& parsed);
  void finish_response();
  void retire_front();
  void fail();

  FileSource& files_;
  SessionLimits limits_;
  RequestParser parser_;
  std::string backlog_;    // received, not yet consumed by the parser (it was full)
  std::string input_log_;  // consumed by the parser, from the oldest retained request on
  std::deque<Retained> retained_;
  std::uint64_t retained_start_ = 0;  // output offset where retained_.front()'s response begins
  std::optional<Response> current_;
  std::vector<std::byte> chunk_;  // file bytes [chunk_offset_, chunk_offset_ + chunk_len_)
  std::uint64_t chunk_offset_ = 0;
  std::size_t chunk_len_ = 0;
  std::size_t last_peek_ = 0;
  std::uint64_t produced_ = 0;
  std::uint64_t determined_ = 0;  // output_determined()
  bool peer_closed_ = false;
  bool closing_ = false;  // a response with Connection: close was fully sent
  bool failed_ = false;
  SessionCounters counters_;
};

}  // namespace phalanx::apps::http
