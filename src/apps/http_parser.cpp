#include "apps/http_parser.hpp"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "apps/http_chars.hpp"

namespace phalanx::apps::http {

namespace {

using chars::iequals;
using chars::is_digit;

constexpr std::uint64_t kSaturated = std::numeric_limits<std::uint64_t>::max();

[[noreturn]] void invariant_broken(const char* what) {
  std::fprintf(stderr, "http::RequestParser invariant broken: %s\n", what);
  std::abort();
}

// tchar (RFC 9110 §5.6.2).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!is_tchar(c)) {
      return false;
    }
  }
  return true;
}

// field-vchar / SP / HTAB / obs-text (RFC 9110 §5.5); no CTL, no DEL.
bool is_field_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_ows(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// 1*DIGIT, saturating at UINT64_MAX. False if empty or not all digits.
bool parse_decimal(std::string_view s, std::uint64_t& out) {
  if (s.empty()) {
    return false;
  }
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) {
      return false;
    }
    const auto d = static_cast<std::uint64_t>(c - '0');
    v = (v > (kSaturated - d) / 10) ? kSaturated : v * 10 + d;
  }
  out = v;
  return true;
}

}  // namespace

std::string_view to_string(ParseError e) {
  switch (e) {
    case ParseError::none:
      return "none";
    case ParseError::bad_request:
      return "bad request";
    case ParseError::content_too_large:
      return "content too large";
    case ParseError::uri_too_long:
      return "URI too long";
    case ParseError::fields_too_large:
      return "header fields too large";
    case ParseError::version_not_supported:
      return "HTTP version not supported";
  }
  return "unknown";
}

int status_code(ParseError e) {
  switch (e) {
    case ParseError::none:
      return 0;
    case ParseError::bad_request:
      return 400;
    case ParseError::content_too_large:
      return 413;
    case ParseError::uri_too_long:
      return 414;
    case ParseError::fields_too_large:
      return 431;
    case ParseError::version_not_supported:
      return 505;
  }
  return 400;
}

ByteRange parse_range(std::string_view value) {
  const ByteRange ignored{.kind = RangeKind::ignored};
  value = trim_ows(value);
  // ranges-specifier = range-unit "=" range-set; the unit is case-insensitive (§14.1).
  const auto eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(value.substr(0, eq)), "bytes")) {
    return ignored;
  }
  const std::string_view spec = trim_ows(value.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) {
    return ignored;  // several ranges: we answer 200 with the whole file (documented above)
  }
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return ignored;
  }
  const std::string_view first_text = spec.substr(0, dash);
  const std::string_view last_text = spec.substr(dash + 1);
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  if (first_text.empty()) {
    // suffix-range = "-" suffix-length
    if (!parse_decimal(last_text, last)) {
      return ignored;
    }
    return ByteRange{.kind = RangeKind::suffix, .length = last};
  }
  if (!parse_decimal(first_text, first)) {
    return ignored;
  }
  if (last_text.empty()) {
    return ByteRange{.kind = RangeKind::from, .first = first};
  }
  if (!parse_decimal(last_text, last) || last < first) {
    return ignored;  // last < first makes the range-spec invalid (§14.1.1): ignore the field
  }
  return ByteRange{.kind = RangeKind::from_to, .first = first, .last = last};
}

Parsed RequestParser::pop() {
  if (queue_.empty()) {
    invariant_broken("pop() on an empty queue");
  }
  Parsed p = std::move(queue_.front());
  queue_.pop_front();
  return p;
}

std::size_t RequestParser::feed(Bytes in) {
  std::size_t i = 0;
  while (i < in.size() && !stopped_ && queue_.size() < limits_.max_queued) {
    const char c = static_cast<char>(in[i]);
    ++i;
    ++message_bytes_;
    if (line_cr_) {
      line_cr_ = false;
      if (c != '\n') {
        fail(ParseError::bad_request);  // a bare CR (RFC 9112 §2.2)
        break;
      }
      on_line();
      continue;
    }
    if (c == '\r') {
      line_cr_ = true;
      continue;
    }
    if (c == '\n') {
      on_line();  // a bare LF ends a line too (RFC 9112 §2.2)
      continue;
    }
    line_.push_back(c);
    if (line_.size() > limits_.max_line) {
      fail(state_ == State::request_line ? ParseError::uri_too_long : ParseError::fields_too_large);
      break;
    }
    if (header_bytes_ + line_.size() > limits_.max_header_bytes) {
      fail(ParseError::fields_too_large);
      break;
    }
  }
  return i;
}

void RequestParser::on_line() {
  if (state_ == State::request_line && line_.empty()) {
    // Leading empty lines are skipped (RFC 9112 §2.2), but only a few.
    leading_bytes_ = message_bytes_;
    if (++empty_lines_ > kMaxLeadingEmptyLines) {
      fail(ParseError::bad_request);
    }
    return;
  }
  header_bytes_ = message_bytes_ - leading_bytes_;
  if (header_bytes_ > limits_.max_header_bytes) {
    fail(ParseError::fields_too_large);
    return;
  }
  // The handlers read line_ through a view and return as soon as they fail or finish (which
  // clears it); clearing it here rather than moving it out keeps its capacity for the next line.
  const std::string_view line = line_;
  if (state_ == State::request_line) {
    on_request_line(line);
  } else if (line.empty()) {
    on_end_of_fields();
  } else {
    on_field(line);
  }
  line_.clear();
}

void RequestParser::on_request_line(std::string_view line) {
  // request-line = method SP request-target SP HTTP-version (RFC 9112 §3), single spaces.
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    fail(ParseError::bad_request);
    return;
  }
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    fail(ParseError::bad_request);
    return;
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty()) {
    fail(ParseError::bad_request);
    return;
  }
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      fail(ParseError::bad_request);  // no CTL, SP, DEL or non-ASCII in a request-target
      return;
    }
  }
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
      version[6] != '.' || !is_digit(version[7])) {
    fail(ParseError::bad_request);
    return;
  }
  if (version == "HTTP/1.1") {
    request_.version = Version::http11;
  } else if (version == "HTTP/1.0") {
    request_.version = Version::http10;
  } else {
    fail(ParseError::version_not_supported);
    return;
  }
  request_.method_name = std::string(method);
  request_.method = method == "GET" ? Method::get : method == "HEAD" ? Method::head : Method::other;
  request_.target = std::string(target);
  state_ = State::fields;
}

void RequestParser::on_field(std::string_view line) {
  // field-line = field-name ":" OWS field-value OWS (RFC 9112 §5); no obs-fold (§5.2).
  if (++fields_ > limits_.max_fields) {
    fail(ParseError::fields_too_large);
    return;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    fail(ParseError::bad_request);
    return;
  }
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) {
    fail(ParseError::bad_request);  // also catches obs-fold and whitespace before the colon
    return;
  }
  const std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value) {
    if (!is_field_value_char(c)) {
      fail(ParseError::bad_request);
      return;
    }
  }
  if (iequals(name, "host")) {
    if (has_host_) {
      fail(ParseError::bad_request);  // RFC 9112 §3.2: more than one Host
      return;
    }
    has_host_ = true;
    request_.host = std::string(value);
  } else if (iequals(name, "content-length")) {
    // A list ("5, 5") is legal but pointless; a bare number or a 400 (RFC 9112 §6.3 step 5).
    std::uint64_t n = 0;
    if (!parse_decimal(value, n) || (has_content_length_ && n != content_length_)) {
      fail(ParseError::bad_request);
      return;
    }
    has_content_length_ = true;
    content_length_ = n;
  } else if (iequals(name, "transfer-encoding")) {
    has_transfer_encoding_ = true;
  } else if (iequals(name, "connection")) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view option = trim_ows(rest.substr(0, comma));
      if (iequals(option, "close")) {
        connection_close_ = true;
      } else if (iequals(option, "keep-alive")) {
        connection_keep_alive_ = true;
      }
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  } else if (iequals(name, "range")) {
    if (++range_fields_ == 1) {
      request_.range = parse_range(value);
    } else {
      request_.range = ByteRange{.kind = RangeKind::ignored};
    }
  } else if (iequals(name, "if-range")) {
    request_.has_if_range = true;
  }
}

void RequestParser::on_end_of_fields() {
  // Message body length (RFC 9112 §6.3): both fields is a smuggling attempt; any body is refused.
  if (has_transfer_encoding_ && has_content_length_) {
    fail(ParseError::bad_request);
    return;
  }
  if (has_transfer_encoding_ || content_length_ > 0) {
    fail(ParseError::content_too_large);
    return;
  }
  if (request_.version == Version::http11 && !has_host_) {
    fail(ParseError::bad_request);  // RFC 9112 §3.2: a 1.1 request without Host
    return;
  }
  // Persistence (RFC 9112 §9.3).
  if (request_.version == Version::http11) {
    request_.keep_alive = !connection_close_;
  } else {
    request_.keep_alive_asked = connection_keep_alive_ && !connection_close_;
    request_.keep_alive = request_.keep_alive_asked;
  }
  Parsed p;
  p.request = std::move(request_);
  finish(std::move(p));
}

void RequestParser::fail(ParseError e) {
  Parsed p;
  p.error = e;
  finish(std::move(p));
}

void RequestParser::finish(Parsed p) {
  p.wire_size = message_bytes_;
  const bool closes = p.error != ParseError::none || !p.request.keep_alive;
  queue_.push_back(std::move(p));
  // Start the next message afresh.
  line_.clear();
  line_cr_ = false;
  message_bytes_ = 0;
  header_bytes_ = 0;
  leading_bytes_ = 0;
  empty_lines_ = 0;
  fields_ = 0;
  request_ = Request{};
  has_host_ = false;
  has_content_length_ = false;
  content_length_ = 0;
  has_transfer_encoding_ = false;
  connection_close_ = false;
  connection_keep_alive_ = false;
  range_fields_ = 0;
  if (closes) {
    state_ = State::stopped;
    stopped_ = true;
  } else {
    state_ = State::request_line;
  }
}

void RequestParser::check_invariants() const {
  if (queue_.size() > limits_.max_queued) {
    invariant_broken("more requests queued than max_queued");
  }
  if (line_.size() > limits_.max_line) {
    invariant_broken("line buffer beyond max_line");
  }
  if (stopped_ != (state_ == State::stopped)) {
    invariant_broken("stopped flag disagrees with the state");
  }
  if (stopped_ && message_bytes_ != 0) {
    invariant_broken("bytes consumed after parsing stopped");
  }
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    const Parsed& p = queue_[i];
    if (p.wire_size == 0) {
      invariant_broken("a queued message of zero bytes");
    }
    const bool closes = p.error != ParseError::none || !p.request.keep_alive;
    if (closes && i + 1 != queue_.size()) {
      invariant_broken("a message queued after one that closes the connection");
    }
    if (p.error == ParseError::none) {
      const Request& r = p.request;
      if (r.target.empty() || r.method_name.empty()) {
        invariant_broken("a request without method or target");
      }
      if (r.range.kind == RangeKind::from_to && r.range.last < r.range.first) {
        invariant_broken("a range with last < first");
      }
      if (r.version == Version::http11 && r.keep_alive_asked) {
        invariant_broken("keep_alive_asked on HTTP/1.1");
      }
    }
  }
}

}  // namespace phalanx::apps::http
