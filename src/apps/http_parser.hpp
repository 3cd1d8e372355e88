// Incremental HTTP/1.1 request parser (DESIGN §8, the built-in `http` application).
//
// Read with it:
//   RFC 9112  HTTP/1.1 message syntax: §2.2 line endings, §3 request line, §5 field lines,
//             §6.1-6.3 message body length, §9.3 persistence (Connection, HTTP/1.0 default)
//   RFC 9110  HTTP semantics: §5.6.2 tokens, §7.2 Host, §14.1-14.2 Range, §13.1.5 If-Range
//
// Bytes go in as they arrive from TCP, split anywhere; complete requests come out in order
// (pipelining). The parser never allocates more than its limits allow: one line buffer of at most
// max_line bytes and at most max_queued parsed requests.
//
// What it accepts, and what it refuses (the error becomes the response status, then the
// connection closes, because after a framing error the next request's start is unknown):
//   request line longer than max_line                        -> uri_too_long (414)
//   field line longer than max_line, more than max_fields
//   fields, or request line + fields over max_header_bytes   -> fields_too_large (431)
//   bad request line, bad field syntax, control bytes, obs-fold, missing or repeated Host in
//   HTTP/1.1, bad or conflicting Content-Length, both Content-Length and Transfer-Encoding,
//   more than kMaxLeadingEmptyLines empty lines before the request line -> bad_request (400)
//   HTTP/x.y other than 1.0 and 1.1                          -> version_not_supported (505)
//   a body: Content-Length > 0 or any Transfer-Encoding      -> content_too_large (413)
// We serve static files only, so a request body is never useful; refusing it (instead of
// skipping it) keeps the parser free of body framing and the request smuggling it invites.
// Bare LF is accepted as a line end (RFC 9112 §2.2 allows it); a bare CR is not.
//
// Range (RFC 9110 §14.2): one `bytes=` range of the three forms a-b, a-, -n is parsed into a
// ByteRange. Several ranges, another unit, or bad syntax are reported as RangeKind::ignored and
// answered as if there were no Range (200 with the whole file), which the RFC allows; we never
// build multipart/byteranges responses. Numbers saturate at UINT64_MAX instead of overflowing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "wire/bytes.hpp"

namespace phalanx::apps::http {

using wire::Bytes;

enum class Method : std::uint8_t { get, head, other };

enum class Version : std::uint8_t { http10, http11 };

enum class RangeKind : std::uint8_t {
  none,     // no Range field
  ignored,  // present but not one valid bytes range: answer as if absent
  from_to,  // bytes=first-last
  from,     // bytes=first-
  suffix,   // bytes=-length (the last `length` bytes)
};

struct ByteRange {
  RangeKind kind = RangeKind::none;
  std::uint64_t first = 0;   // from_to, from
  std::uint64_t last = 0;    // from_to (inclusive, >= first)
  std::uint64_t length = 0;  // suffix
  bool operator==(const ByteRange&) const = default;
};

struct Request {
  Method method = Method::other;
  std::string method_name;  // as sent, case-sensitive (RFC 9110 §9.1)
  std::string target;       // request-target as sent (origin-form or absolute-form)
  Version version = Version::http11;
  std::string host;        // Host field value, empty if absent (allowed only in HTTP/1.0)
  bool keep_alive = true;  // false: close after the response (Connection: close, 1.0 default)
  bool keep_alive_asked = false;  // HTTP/1.0 with Connection: keep-alive (echoed in the response)
  ByteRange range;
  bool has_if_range = false;  // If-Range present (we have no validators, so Range is ignored)
};

enum class ParseError : std::uint8_t {
  none,
  bad_request,            // 400
  content_too_large,      // 413
  uri_too_long,           // 414
  fields_too_large,       // 431
  version_not_supported,  // 505
};

std::string_view to_string(ParseError e);
int status_code(ParseError e);  // the HTTP status that answers it; 0 for none

// One parsed request, or the error that ended parsing. wire_size is the number of input bytes it
// took (including leading empty lines), so a caller can keep exactly the bytes of the requests
// it has not finished answering (HttpSession's snapshot does).
struct Parsed {
  ParseError error = ParseError::none;
  Request request;  // valid only if error == none
  std::size_t wire_size = 0;
};

struct ParserLimits {
  std::size_t max_line = 8192;           // request line or one field line, without CRLF
  std::size_t max_fields = 64;           // field lines per request
  std::size_t max_header_bytes = 16384;  // request line + field lines, with line ends
  std::size_t max_queued = 16;           // parsed requests waiting to be answered
};

inline constexpr std::size_t kMaxLeadingEmptyLines = 4;

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Consumes a prefix of `in` and queues every request it completes. Returns the number of bytes
  // consumed: all of `in`, unless max_queued requests are waiting (feed the rest after pop()), or
  // parsing has stopped (stopped(): the rest is never wanted). Never fails; errors are queued.
  std::size_t feed(Bytes in);
  std::size_t feed(std::string_view in) {
    return feed(Bytes(reinterpret_cast<const std::byte*>(in.data()), in.size()));
  }

  bool has_parsed() const { return !queue_.empty(); }
  const Parsed& front() const { return queue_.front(); }
  Parsed pop();
  std::size_t queued() const { return queue_.size(); }

  // True once an error or a request that closes the connection has been queued: every later
  // byte belongs to no request we will answer.
  bool stopped() const { return stopped_; }
  // True if some bytes of a request that is not complete yet have been consumed.
  bool mid_request() const { return message_bytes_ > 0; }

  // Aborts on a broken internal invariant (STYLE 5); the fuzz target calls it after every feed.
  void check_invariants() const;

 private:
  enum class State : std::uint8_t { request_line, fields, stopped };

  void on_line();
  void on_request_line(std::string_view line);
  void on_field(std::string_view line);
  void on_end_of_fields();
  void fail(ParseError e);
  void finish(Parsed p);

  ParserLimits limits_;
  State state_ = State::request_line;
  bool stopped_ = false;
  std::deque<Parsed> queue_;

  // The message being parsed.
  std::string line_;               // bytes of the current line so far, without its line end
  bool line_cr_ = false;           // the last byte consumed was a CR
  std::size_t message_bytes_ = 0;  // input bytes consumed by this message so far
  std::size_t leading_bytes_ = 0;  // of which leading empty lines
  std::size_t header_bytes_ = 0;   // of which complete request and field lines
  std::size_t empty_lines_ = 0;    // leading empty lines skipped
  std::size_t fields_ = 0;
  Request request_;
  bool has_host_ = false;
  bool has_content_length_ = false;
  std::uint64_t content_length_ = 0;
  bool has_transfer_encoding_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  std::size_t range_fields_ = 0;
};

// Parses a Range field value (RFC 9110 §14.1.1). Exposed for tests.
ByteRange parse_range(std::string_view value);

}  // namespace phalanx::apps::http
