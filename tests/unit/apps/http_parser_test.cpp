// RequestParser: valid requests, one row per malformed case, limits, and pipelining with the
// input split at every byte boundary.
#include "apps/http_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace phalanx::apps::http {
namespace {

using namespace std::string_literals;

// Feeds all of `text` and returns everything parsed.
std::vector<Parsed> parse_all(std::string_view text, ParserLimits limits = {}) {
  RequestParser p(limits);
  std::vector<Parsed> out;
  while (!text.empty()) {
    const std::size_t n = p.feed(text);
    p.check_invariants();
    text.remove_prefix(n);
    if (p.stopped() && !p.has_parsed()) {
      break;
    }
    while (p.has_parsed()) {
      out.push_back(p.pop());
    }
    if (p.stopped()) {
      break;
    }
  }
  while (p.has_parsed()) {
    out.push_back(p.pop());
  }
  return out;
}

Parsed parse_one(std::string_view text) {
  auto all = parse_all(text);
  EXPECT_EQ(all.size(), 1u) << text;
  return all.empty() ? Parsed{} : all.front();
}

TEST(HttpParser, SimpleGet) {
  const std::string text = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
  const Parsed p = parse_one(text);
  ASSERT_EQ(p.error, ParseError::none);
  EXPECT_EQ(p.request.method, Method::get);
  EXPECT_EQ(p.request.method_name, "GET");
  EXPECT_EQ(p.request.target, "/index.html");
  EXPECT_EQ(p.request.version, Version::http11);
  EXPECT_EQ(p.request.host, "example.com");
  EXPECT_TRUE(p.request.keep_alive);
  EXPECT_EQ(p.request.range.kind, RangeKind::none);
  EXPECT_EQ(p.wire_size, text.size());
}

TEST(HttpParser, IncompleteRequestWaits) {
  RequestParser p;
  EXPECT_EQ(p.feed("GET / HTTP/1.1\r\nHost: a\r\n"), 25u);
  EXPECT_FALSE(p.has_parsed());
  EXPECT_TRUE(p.mid_request());
  EXPECT_EQ(p.feed("\r\n"), 2u);
  ASSERT_TRUE(p.has_parsed());
  EXPECT_FALSE(p.mid_request());
}

TEST(HttpParser, MethodsAndVersions) {
  struct Row {
    const char* text;
    Method method;
    Version version;
    bool keep_alive;
    bool keep_alive_asked;
  };
  const Row rows[] = {
      {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", Method::head, Version::http11, true, false},
      {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", Method::other, Version::http11, true, false},
      {"get / HTTP/1.1\r\nHost: a\r\n\r\n", Method::other, Version::http11, true, false},
      {"GET / HTTP/1.0\r\n\r\n", Method::get, Version::http10, false, false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Method::get, Version::http10, true,
       true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", Method::get, Version::http10,
       false, false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Method::get, Version::http11,
       false, false},
      {"GET / HTTP/1.1\r\nHost: a\r\nconnection: Upgrade , CLOSE\r\n\r\n", Method::get,
       Version::http11, false, false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", Method::get, Version::http11,
       true, false},
      {"GET / HTTP/1.1\nHost: a\n\n", Method::get, Version::http11, true, false},  // bare LF
      {"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Method::get, Version::http11, true, false},
      {"GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n", Method::get, Version::http11, true, false},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", Method::get, Version::http11, true,
       false},
      {"GET / HTTP/1.1\r\nHost:\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n", Method::get, Version::http11,
       true, false},
  };
  for (const Row& row : rows) {
    const Parsed p = parse_one(row.text);
    ASSERT_EQ(p.error, ParseError::none) << row.text;
    EXPECT_EQ(p.request.method, row.method) << row.text;
    EXPECT_EQ(p.request.version, row.version) << row.text;
    EXPECT_EQ(p.request.keep_alive, row.keep_alive) << row.text;
    EXPECT_EQ(p.request.keep_alive_asked, row.keep_alive_asked) << row.text;
    EXPECT_EQ(p.wire_size, std::string_view(row.text).size()) << row.text;
  }
}

TEST(HttpParser, MalformedRequests) {
  struct Row {
    const char* description;
    std::string text;
    ParseError error;
  };
  const Row rows[] = {
      {"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"no version", "GET /\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"version garbage", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"version too long", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ParseError::version_not_supported},
      {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", ParseError::version_not_supported},
      {"method not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"control byte in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::bad_request},
      {"NUL in target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"s, ParseError::bad_request},
      {"bare CR", "GET / HTTP/1.1\rHost: a\r\n\r\n", ParseError::bad_request},
      {"no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", ParseError::bad_request},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ParseError::bad_request},
      {"field without colon", "GET / HTTP/1.1\r\nHost: a\r\nBroken\r\n\r\n",
       ParseError::bad_request},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ParseError::bad_request},
      {"empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", ParseError::bad_request},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", ParseError::bad_request},
      {"NUL in value", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"s, ParseError::bad_request},
      {"DEL in value", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", ParseError::bad_request},
      {"Content-Length not a number", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
       ParseError::bad_request},
      {"Content-Length negative", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
       ParseError::bad_request},
      {"Content-Length list", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n",
       ParseError::bad_request},
      {"Content-Length conflict",
       "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
       ParseError::bad_request},
      {"CL and TE",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
       ParseError::bad_request},
      {"a body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
       ParseError::content_too_large},
      {"huge body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       ParseError::content_too_large},
      {"chunked body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       ParseError::content_too_large},
      {"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
       ParseError::bad_request},
  };
  for (const Row& row : rows) {
    const auto all = parse_all(row.text);
    ASSERT_EQ(all.size(), 1u) << row.description;
    EXPECT_EQ(all[0].error, row.error) << row.description;
    EXPECT_GT(all[0].wire_size, 0u) << row.description;
  }
}

TEST(HttpParser, ErrorStatusCodes) {
  EXPECT_EQ(status_code(ParseError::bad_request), 400);
  EXPECT_EQ(status_code(ParseError::content_too_large), 413);
  EXPECT_EQ(status_code(ParseError::uri_too_long), 414);
  EXPECT_EQ(status_code(ParseError::fields_too_large), 431);
  EXPECT_EQ(status_code(ParseError::version_not_supported), 505);
}

TEST(HttpParser, Limits) {
  const ParserLimits limits{
      .max_line = 100, .max_fields = 4, .max_header_bytes = 300, .max_queued = 16};
  struct Row {
    const char* description;
    std::string text;
    ParseError error;
  };
  const Row rows[] = {
      {"request line at the limit", "GET /" + std::string(86, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n",
       ParseError::none},
      {"request line over the limit",
       "GET /" + std::string(87, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::uri_too_long},
      {"field line over the limit",
       "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(98, 'v') + "\r\n\r\n",
       ParseError::fields_too_large},
      {"fields at the count limit", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
       ParseError::none},
      {"too many fields", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
       ParseError::fields_too_large},
      {"header bytes over the limit",
       "GET / HTTP/1.1\r\nHost: a\r\nA: " + std::string(90, 'v') +
           "\r\nB: " + std::string(90, 'v') + "\r\nC: " + std::string(90, 'v') + "\r\n\r\n",
       ParseError::fields_too_large},
  };
  for (const Row& row : rows) {
    const auto all = parse_all(row.text, limits);
    ASSERT_EQ(all.size(), 1u) << row.description;
    EXPECT_EQ(all[0].error, row.error) << row.description;
  }
}

TEST(HttpParser, OverlongLineFailsWithoutWaitingForItsEnd) {
  RequestParser p(
      ParserLimits{.max_line = 64, .max_fields = 8, .max_header_bytes = 1024, .max_queued = 4});
  const std::string endless(10000, 'a');
  const std::size_t n = p.feed(endless);
  EXPECT_EQ(n, 65u);  // stopped at the first byte over the limit
  ASSERT_TRUE(p.has_parsed());
  EXPECT_EQ(p.front().error, ParseError::uri_too_long);
  EXPECT_TRUE(p.stopped());
  EXPECT_EQ(p.feed(endless), 0u);
}

TEST(HttpParser, Ranges) {
  struct Row {
    const char* value;
    ByteRange range;
  };
  const Row rows[] = {
      {"bytes=0-499", {RangeKind::from_to, 0, 499, 0}},
      {"bytes=500-", {RangeKind::from, 500, 0, 0}},
      {"bytes=-500", {RangeKind::suffix, 0, 0, 500}},
      {"bytes=-0", {RangeKind::suffix, 0, 0, 0}},
      {"Bytes = 1-1 ", {RangeKind::from_to, 1, 1, 0}},
      {"bytes=5-5", {RangeKind::from_to, 5, 5, 0}},
      {"bytes=0-99999999999999999999999", {RangeKind::from_to, 0, UINT64_MAX, 0}},
      {"bytes=5-4", {RangeKind::ignored, 0, 0, 0}},
      {"bytes=0-1,5-6", {RangeKind::ignored, 0, 0, 0}},
      {"bytes=-", {RangeKind::ignored, 0, 0, 0}},
      {"bytes=a-b", {RangeKind::ignored, 0, 0, 0}},
      {"bytes=1", {RangeKind::ignored, 0, 0, 0}},
      {"bytes=+1-2", {RangeKind::ignored, 0, 0, 0}},
      {"items=0-1", {RangeKind::ignored, 0, 0, 0}},
      {"bytes 0-1", {RangeKind::ignored, 0, 0, 0}},
      {"", {RangeKind::ignored, 0, 0, 0}},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(parse_range(row.value), row.range) << row.value;
  }
}

TEST(HttpParser, RangeFieldsOnRequests) {
  Parsed p = parse_one("GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\n\r\n");
  EXPECT_EQ(p.request.range, (ByteRange{RangeKind::from_to, 1, 2, 0}));
  p = parse_one("GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\nRange: bytes=3-4\r\n\r\n");
  EXPECT_EQ(p.request.range.kind, RangeKind::ignored);
  p = parse_one("GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\nIf-Range: \"x\"\r\n\r\n");
  EXPECT_TRUE(p.request.has_if_range);
}

const std::string kPipeline =
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    "\r\nHEAD /b HTTP/1.1\r\nHost: h\r\nRange: bytes=-3\r\n\r\n"
    "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    "GET /never HTTP/1.1\r\nHost: h\r\n\r\n";

void expect_pipeline(const std::vector<Parsed>& all, const std::string& where) {
  ASSERT_EQ(all.size(), 3u) << where;
  EXPECT_EQ(all[0].request.target, "/a") << where;
  EXPECT_EQ(all[1].request.target, "/b") << where;
  EXPECT_EQ(all[1].request.method, Method::head) << where;
  EXPECT_EQ(all[1].request.range.kind, RangeKind::suffix) << where;
  EXPECT_EQ(all[2].request.target, "/c") << where;
  EXPECT_FALSE(all[2].request.keep_alive) << where;
  EXPECT_EQ(all[0].wire_size + all[1].wire_size + all[2].wire_size, kPipeline.find("GET /never"))
      << where;
}

TEST(HttpParser, PipelinedRequestsSplitAtEveryByte) {
  for (std::size_t split = 0; split <= kPipeline.size(); ++split) {
    RequestParser p;
    std::vector<Parsed> all;
    std::size_t consumed = p.feed(std::string_view(kPipeline).substr(0, split));
    p.check_invariants();
    consumed += p.feed(std::string_view(kPipeline).substr(consumed));
    p.check_invariants();
    while (p.has_parsed()) {
      all.push_back(p.pop());
    }
    expect_pipeline(all, "split at " + std::to_string(split));
  }
}

TEST(HttpParser, PipelinedRequestsOneByteAtATime) {
  RequestParser p;
  std::vector<Parsed> all;
  for (char c : kPipeline) {
    p.feed(std::string_view(&c, 1));
    p.check_invariants();
    while (p.has_parsed()) {
      all.push_back(p.pop());
    }
  }
  expect_pipeline(all, "byte by byte");
  EXPECT_TRUE(p.stopped());
}

TEST(HttpParser, QueueBoundStopsConsumption) {
  RequestParser p(
      ParserLimits{.max_line = 8192, .max_fields = 64, .max_header_bytes = 16384, .max_queued = 2});
  const std::string one = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string three = one + one + one;
  const std::size_t n = p.feed(three);
  EXPECT_EQ(n, 2 * one.size());
  EXPECT_EQ(p.queued(), 2u);
  EXPECT_EQ(p.feed(std::string_view(three).substr(n)), 0u);
  p.pop();
  EXPECT_EQ(p.feed(std::string_view(three).substr(n)), one.size());
  EXPECT_EQ(p.queued(), 2u);
}

TEST(HttpParser, ErrorAfterGoodRequestsKeepsThemInOrder) {
  const auto all =
      parse_all("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nBAD\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].error, ParseError::none);
  EXPECT_EQ(all[0].request.target, "/1");
  EXPECT_EQ(all[1].error, ParseError::bad_request);
  EXPECT_EQ(all[1].wire_size, 5u);  // "BAD\r\n"
}

}  // namespace
}  // namespace phalanx::apps::http
