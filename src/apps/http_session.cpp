#include "apps/http_session.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "apps/http_target.hpp"

namespace phalanx::apps::http {

namespace {

[[noreturn]] void invariant_broken(const char* what) {
  std::fprintf(stderr, "http::HttpSession invariant broken: %s\n", what);
  std::abort();
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

// The fields every response shares, in a fixed order so that the bytes are deterministic.
struct Head {
  int status = 200;
  std::string_view content_type;
  std::uint64_t content_length = 0;
  bool accept_ranges = false;
  std::string content_range;  // value, empty for none
  bool allow = false;
  bool close = false;
  bool keep_alive = false;  // say "Connection: keep-alive" (to an HTTP/1.0 client that asked)
};

std::string render(const Head& h) {
  std::string out;
  out.reserve(192);
  out += "HTTP/1.1 ";
  out += std::to_string(h.status);
  out += ' ';
  out += reason_phrase(h.status);
  out += "\r\nServer: phalanx\r\nContent-Type: ";
  out += h.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(h.content_length);
  out += "\r\n";
  if (h.accept_ranges) {
    out += "Accept-Ranges: bytes\r\n";
  }
  if (!h.content_range.empty()) {
    out += "Content-Range: ";
    out += h.content_range;
    out += "\r\n";
  }
  if (h.allow) {
    out += "Allow: GET, HEAD\r\n";
  }
  if (h.close) {
    out += "Connection: close\r\n";
  } else if (h.keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  return out;
}

std::string status_body(int status) {
  std::string body = std::to_string(status);
  body += ' ';
  body += reason_phrase(status);
  body += '\n';
  return body;
}

// A file that serves a fixed string: the body of an error response, read like any file.
class StringFile final : public File {
 public:
  explicit StringFile(std::string text) : text_(std::move(text)) {}
  std::uint64_t size() const override { return text_.size(); }
  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= text_.size()) {
      return 0;
    }
    const std::size_t n = std::min<std::uint64_t>(out.size(), text_.size() - offset);
    std::copy_n(reinterpret_cast<const std::byte*>(text_.data()) + offset, n, out.data());
    return n;
  }

 private:
  std::string text_;
};

// The first and last byte a satisfiable range selects in a file of `size` bytes (RFC 9110
// §14.1.2), or nullopt when it selects none (416).
std::optional<std::pair<std::uint64_t, std::uint64_t>> select(const ByteRange& r,
                                                              std::uint64_t size) {
  switch (r.kind) {
    case RangeKind::from_to:
      if (r.first >= size) {
        return std::nullopt;
      }
      return std::pair{r.first, std::min(r.last, size - 1)};
    case RangeKind::from:
      if (r.first >= size) {
        return std::nullopt;
      }
      return std::pair{r.first, size - 1};
    case RangeKind::suffix:
      if (r.length == 0 || size == 0) {
        return std::nullopt;
      }
      return std::pair{size - std::min(r.length, size), size - 1};
    case RangeKind::none:
    case RangeKind::ignored:
      break;
  }
  invariant_broken("select() on a request without a usable range");
}

}  // namespace

HttpSession::HttpSession(FileSource& files, SessionLimits limits)
    : files_(files), limits_(limits), parser_(limits.parser) {
  if (limits_.chunk_size == 0) {
    invariant_broken("chunk_size 0");
  }
}

std::size_t HttpSession::take_input(wire::Bytes in) {
  const std::size_t offered = in.size();
  if (failed_ || closing_ || peer_closed_ || parser_.stopped()) {
    return offered;  // nobody will read these bytes
  }
  if (backlog_.empty()) {
    const std::size_t n = parser_.feed(in);
    input_log_.append(reinterpret_cast<const char*>(in.data()), n);
    in = in.subspan(n);
  }
  if (in.empty() || parser_.stopped()) {
    return offered;
  }
  // The parser is full of requests awaiting answers: hold the rest, within bounds.
  const std::size_t room =
      limits_.max_backlog > backlog_.size() ? limits_.max_backlog - backlog_.size() : 0;
  const std::size_t n = std::min(room, in.size());
  backlog_.append(reinterpret_cast<const char*>(in.data()), n);
  pump_backlog();
  return offered - (in.size() - n);
}

bool HttpSession::input_room() const {
  return failed_ || closing_ || peer_closed_ || parser_.stopped() ||
         backlog_.size() < limits_.max_backlog;
}

bool HttpSession::on_input(wire::Bytes in) {
  if (take_input(in) < in.size()) {
    ++counters_.input_overflow;
    fail();
    return false;
  }
  return !failed_;
}

void HttpSession::pump_backlog() {
  if (backlog_.empty()) {
    return;
  }
  const std::size_t n = parser_.feed(backlog_);
  input_log_.append(backlog_, 0, n);
  if (parser_.stopped()) {
    backlog_.clear();  // after the last request we will answer: never read
  } else {
    backlog_.erase(0, n);
  }
}

void HttpSession::on_peer_closed() {
  peer_closed_ = true;
}

bool HttpSession::start_next() {
  if (closing_ || failed_ || !parser_.has_parsed()) {
    return false;
  }
  const Parsed parsed = parser_.pop();
  pump_backlog();  // the parser has room again
  if (retained_.empty()) {
    retained_start_ = produced_;
  }
  retained_.push_back(Retained{.wire_size = parsed.wire_size});
  current_ = build(parsed);
  chunk_len_ = 0;
  determined_ = produced_ + current_->head.size() + (current_->body_end - current_->body_next);
  return true;
}

HttpSession::Response HttpSession::build(const Parsed& parsed) {
  Head head;
  Response r;
  std::uint64_t body_first = 0;
  std::uint64_t body_length = 0;
  bool send_body = true;
  std::string error_body;

  const auto error = [&](int status) {
    head.status = status;
    head.content_type = "text/plain; charset=utf-8";
    error_body = status_body(status);
  };

  if (parsed.error != ParseError::none) {
    ++counters_.parse_errors;
    error(status_code(parsed.error));
    head.close = true;
  } else {
    const Request& req = parsed.request;
    head.close = !req.keep_alive;
    head.keep_alive = req.keep_alive_asked;
    send_body = req.method != Method::head;
    if (req.method == Method::other) {
      error(405);
      head.allow = true;
    } else if (const auto resolved = resolve_target(req.target); !resolved) {
      error(400);
    } else {
      std::string path = resolved->path;
      Opened opened = files_.open(path);
      if (opened.status == FileStatus::is_directory) {
        path = path.empty() ? std::string("index.html") : path + "/index.html";
        opened = files_.open(path);
        if (opened.status == FileStatus::is_directory) {
          opened = Opened{FileStatus::not_found, nullptr};
        }
      } else if (opened.status == FileStatus::ok && resolved->trailing_slash) {
        opened = Opened{FileStatus::not_found, nullptr};  // "/file.txt/" names no directory
      }
      if (opened.status == FileStatus::not_found) {
        error(404);
      } else if (opened.status == FileStatus::io_error || !opened.file) {
        error(500);
      } else {
        const std::uint64_t size = opened.file->size();
        head.content_type = content_type_for(path);
        head.accept_ranges = true;
        body_length = size;
        // Range applies to GET only (RFC 9110 §14.2), and not when If-Range cannot match.
        const bool ranged = req.method == Method::get && !req.has_if_range &&
                            req.range.kind != RangeKind::none &&
                            req.range.kind != RangeKind::ignored;
        if (ranged) {
          if (const auto sel = select(req.range, size)) {
            head.status = 206;
            body_first = sel->first;
            body_length = sel->second - sel->first + 1;
            head.content_range = "bytes " + std::to_string(sel->first) + "-" +
                                 std::to_string(sel->second) + "/" + std::to_string(size);
          } else {
            error(416);
            head.content_range = "bytes */" + std::to_string(size);
          }
        }
        if (error_body.empty()) {
          r.file = std::move(opened.file);
        }
      }
    }
  }

  if (!error_body.empty()) {
    body_first = 0;
    body_length = error_body.size();
    r.file = std::make_unique<StringFile>(std::move(error_body));
  }
  head.content_length = body_length;
  r.head = render(head);
  r.body_next = body_first;
  r.body_end = send_body ? body_first + body_length : body_first;
  r.close_after = head.close;

  ++counters_.responses;
  if (head.status < 300) {
    ++counters_.status_2xx;
  } else if (head.status < 500) {
    ++counters_.status_4xx;
  } else {
    ++counters_.status_5xx;
  }
  return r;
}

wire::Bytes HttpSession::peek(std::size_t max) {
  last_peek_ = 0;
  while (max > 0 && !failed_) {
    if (!current_ && !start_next()) {
      return {};
    }
    Response& r = *current_;
    if (r.head_sent < r.head.size()) {
      last_peek_ = std::min(max, r.head.size() - r.head_sent);
      return wire::Bytes(reinterpret_cast<const std::byte*>(r.head.data()) + r.head_sent,
                         last_peek_);
    }
    if (r.body_next < r.body_end) {
      const bool buffered =
          r.body_next >= chunk_offset_ && r.body_next < chunk_offset_ + chunk_len_;
      if (!buffered) {
        const std::size_t want =
            std::min<std::uint64_t>(limits_.chunk_size, r.body_end - r.body_next);
        chunk_.resize(limits_.chunk_size);
        const std::size_t got = r.file->read(r.body_next, std::span(chunk_.data(), want));
        if (got != want) {
          ++counters_.short_read;
          fail();
          return {};
        }
        chunk_offset_ = r.body_next;
        chunk_len_ = got;
      }
      const std::size_t at = r.body_next - chunk_offset_;
      last_peek_ = std::min(max, chunk_len_ - at);
      return wire::Bytes(chunk_.data() + at, last_peek_);
    }
    finish_response();  // an empty remainder (e.g. HEAD after its head was consumed)
  }
  return {};
}

void HttpSession::consume(std::size_t n) {
  if (n > last_peek_) {
    invariant_broken("consume() of more than peek() showed");
  }
  last_peek_ = 0;
  if (n == 0) {
    return;
  }
  Response& r = *current_;
  produced_ += n;
  if (r.head_sent < r.head.size()) {
    r.head_sent += n;
  } else {
    r.body_next += n;
    counters_.body_bytes += n;
  }
  if (r.complete()) {
    finish_response();
  }
}

void HttpSession::finish_response() {
  const bool close_after = current_->close_after;
  current_.reset();
  chunk_len_ = 0;
  retained_.back().response_end = produced_;
  if (!limits_.retain_until_acked) {
    retire_front();
  }
  if (close_after) {
    closing_ = true;
    backlog_.clear();
  }
}

void HttpSession::retire_front() {
  const Retained& front = retained_.front();
  input_log_.erase(0, front.wire_size);
  retained_start_ = front.response_end;
  retained_.pop_front();
}

void HttpSession::acknowledge(std::uint64_t acked) {
  while (!retained_.empty() && retained_.front().response_end != kInProgress &&
         retained_.front().response_end <= acked) {
    retire_front();
  }
}

SessionState HttpSession::state() const {
  if (failed_) {
    return SessionState::failed;
  }
  if (current_) {
    return SessionState::active;
  }
  if (closing_) {
    return SessionState::finished;
  }
  // After the peer's FIN, a partial request will never complete.
  if (peer_closed_ && !parser_.has_parsed()) {
    return SessionState::finished;
  }
  return SessionState::active;
}

SessionSnapshot HttpSession::snapshot() const {
  SessionSnapshot s;
  s.input = input_log_ + backlog_;
  s.stream_offset = retained_.empty() ? produced_ : retained_start_;
  s.peer_closed = peer_closed_;
  return s;
}

bool HttpSession::restore(const SessionSnapshot& snapshot, std::uint64_t resume_at) {
  if (produced_ != 0 || !input_log_.empty() || !backlog_.empty() || current_ ||
      parser_.mid_request() || parser_.has_parsed()) {
    invariant_broken("restore() on a used session");
  }
  if (resume_at < snapshot.stream_offset) {
    fail();
    return false;
  }
  produced_ = snapshot.stream_offset;
  retained_start_ = produced_;
  // The snapshot's input passed the backlog bound once already; do not apply it again.
  backlog_ = snapshot.input;
  pump_backlog();
  peer_closed_ = snapshot.peer_closed;

  // Regenerate and skip: heads are rebuilt, file bytes are skipped without being read.
  std::uint64_t skip = resume_at - produced_;
  while (skip > 0) {
    if (!current_ && !start_next()) {
      fail();
      return false;
    }
    Response& r = *current_;
    std::uint64_t step = 0;
    if (r.head_sent < r.head.size()) {
      step = std::min<std::uint64_t>(skip, r.head.size() - r.head_sent);
      r.head_sent += step;
    } else {
      step = std::min(skip, r.body_end - r.body_next);
      r.body_next += step;
    }
    produced_ += step;
    skip -= step;
    if (r.complete()) {
      finish_response();
    }
  }
  acknowledge(resume_at);  // everything before resume_at has reached the peer
  return true;
}

void HttpSession::fail() {
  failed_ = true;
  current_.reset();
  backlog_.clear();
}

void HttpSession::check_invariants() const {
  parser_.check_invariants();
  if (failed_) {
    return;  // a failed session is aborted and forgotten; it keeps no consistent state
  }
  std::size_t retained_bytes = 0;
  for (std::size_t i = 0; i < retained_.size(); ++i) {
    retained_bytes += retained_[i].wire_size;
    const bool last = i + 1 == retained_.size();
    if (retained_[i].response_end == kInProgress && !(last && current_)) {
      invariant_broken("a retained request in progress that is not the current one");
    }
  }
  if (current_ && (retained_.empty() || retained_.back().response_end != kInProgress)) {
    invariant_broken("a current response without its retained request");
  }
  if (retained_bytes > input_log_.size()) {
    invariant_broken("retained requests longer than the input log");
  }
  if (!limits_.retain_until_acked && retained_.size() > 1) {
    invariant_broken("requests retained after their response was sent");
  }
  if (current_ && current_->body_next > current_->body_end) {
    invariant_broken("body offset beyond its end");
  }
  if (closing_ && (current_ || parser_.has_parsed())) {
    invariant_broken("output after a closing response");
  }
}

}  // namespace phalanx::apps::http
