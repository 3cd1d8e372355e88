// HttpSession over an in-memory FileSource: request bytes in, exact response bytes out.
#include "apps/http_session.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "apps/file_source.hpp"

namespace phalanx::apps::http {
namespace {

// Takes output as a transport with a send window of `window` bytes per call would.
std::string drain(HttpSession& s, std::size_t window = 1 << 20) {
  std::string out;
  for (;;) {
    const wire::Bytes b = s.peek(window);
    s.check_invariants();
    if (b.empty()) {
      return out;
    }
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    s.consume(b.size());
    s.check_invariants();
  }
}

std::string head_of(int status, std::string_view reason, std::string_view type,
                    std::uint64_t length, std::string_view extra = "") {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                  "\r\nServer: phalanx\r\nContent-Type: " + std::string(type) +
                  "\r\nContent-Length: " + std::to_string(length) + "\r\n";
  h += extra;
  h += "\r\n";
  return h;
}

std::string error_response(int status, std::string_view reason, std::string_view extra = "") {
  const std::string body = std::to_string(status) + " " + std::string(reason) + "\n";
  return head_of(status, reason, "text/plain; charset=utf-8", body.size(), extra) + body;
}

const std::string kHello = "hello, world\n";  // 13 bytes
const std::string kDigits = "0123456789";     // 10 bytes
constexpr std::string_view kText = "text/plain; charset=utf-8";
constexpr std::string_view kHtml = "text/html; charset=utf-8";

class HttpSessionTest : public ::testing::Test {
 protected:
  HttpSessionTest() {
    files_.add("hello.txt", kHello);
    files_.add("digits.txt", kDigits);
    files_.add("index.html", "<h1>root</h1>");
    files_.add("docs/index.html", "<h1>docs</h1>");
    files_.add("empty.txt", "");
    files_.add_directory("noindex");
  }

  // One request on a fresh session; all output.
  std::string exchange(std::string_view request, SessionLimits limits = {}) {
    HttpSession s(files_, limits);
    EXPECT_TRUE(s.on_input(request));
    return drain(s);
  }

  MemoryFileSource files_;
};

TEST_F(HttpSessionTest, GetFile) {
  EXPECT_EQ(exchange("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 200 OK\r\n"
            "Server: phalanx\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 13\r\n"
            "Accept-Ranges: bytes\r\n"
            "\r\n"
            "hello, world\n");
}

TEST_F(HttpSessionTest, HeadSendsNoBody) {
  EXPECT_EQ(exchange("HEAD /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"),
            head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n"));
  // HEAD ignores Range (RFC 9110 §14.2: Range is for GET).
  EXPECT_EQ(exchange("HEAD /hello.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\n"),
            head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n"));
}

TEST_F(HttpSessionTest, Ranges) {
  struct Row {
    const char* range;
    int status;
    std::string content_range;
    std::string body;
  };
  const Row rows[] = {
      {"bytes=0-3", 206, "bytes 0-3/10", "0123"},
      {"bytes=2-2", 206, "bytes 2-2/10", "2"},
      {"bytes=7-100", 206, "bytes 7-9/10", "789"},  // last clamped to the size
      {"bytes=4-", 206, "bytes 4-9/10", "456789"},
      {"bytes=-3", 206, "bytes 7-9/10", "789"},     // suffix
      {"bytes=-30", 206, "bytes 0-9/10", kDigits},  // suffix longer than the file
      {"bytes=9-", 206, "bytes 9-9/10", "9"},
  };
  for (const Row& row : rows) {
    const std::string response = exchange(std::string("GET /digits.txt HTTP/1.1\r\nHost: a\r\n") +
                                          "Range: " + row.range + "\r\n\r\n");
    EXPECT_EQ(response,
              head_of(row.status, "Partial Content", kText, row.body.size(),
                      "Accept-Ranges: bytes\r\nContent-Range: " + row.content_range + "\r\n") +
                  row.body)
        << row.range;
  }
}

TEST_F(HttpSessionTest, UnsatisfiableRanges) {
  for (const char* range :
       {"bytes=10-", "bytes=10-20", "bytes=-0", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(exchange(std::string("GET /digits.txt HTTP/1.1\r\nHost: a\r\nRange: ") + range +
                       "\r\n\r\n"),
              error_response(416, "Range Not Satisfiable",
                             "Accept-Ranges: bytes\r\nContent-Range: bytes */10\r\n"))
        << range;
  }
  // Every range of an empty file is unsatisfiable.
  EXPECT_EQ(exchange("GET /empty.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=-5\r\n\r\n"),
            error_response(416, "Range Not Satisfiable",
                           "Accept-Ranges: bytes\r\nContent-Range: bytes */0\r\n"));
}

TEST_F(HttpSessionTest, IgnoredRangesGiveTheWholeFile) {
  const std::string full = head_of(200, "OK", kText, 10, "Accept-Ranges: bytes\r\n") + kDigits;
  for (const char* fields : {"Range: bytes=0-1,4-5\r\n", "Range: items=0-1\r\n",
                             "Range: bytes=5-1\r\n", "Range: bytes=0-1\r\nIf-Range: \"e\"\r\n"}) {
    EXPECT_EQ(exchange(std::string("GET /digits.txt HTTP/1.1\r\nHost: a\r\n") + fields + "\r\n"),
              full)
        << fields;
  }
}

TEST_F(HttpSessionTest, NotFoundAndDirectories) {
  EXPECT_EQ(exchange("GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"), error_response(404, "Not Found"));
  EXPECT_EQ(exchange("GET /hello.txt/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            error_response(404, "Not Found"));
  EXPECT_EQ(exchange("GET /noindex/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            error_response(404, "Not Found"));
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            head_of(200, "OK", kHtml, 13, "Accept-Ranges: bytes\r\n") + "<h1>root</h1>");
  const std::string docs =
      head_of(200, "OK", kHtml, 13, "Accept-Ranges: bytes\r\n") + "<h1>docs</h1>";
  EXPECT_EQ(exchange("GET /docs/ HTTP/1.1\r\nHost: a\r\n\r\n"), docs);
  EXPECT_EQ(exchange("GET /docs HTTP/1.1\r\nHost: a\r\n\r\n"), docs);
  EXPECT_EQ(exchange("GET /docs/../docs/./index.html?v=1 HTTP/1.1\r\nHost: a\r\n\r\n"), docs);
  // HEAD of a missing file: the 404 head without its body.
  EXPECT_EQ(exchange("HEAD /missing HTTP/1.1\r\nHost: a\r\n\r\n"),
            head_of(404, "Not Found", kText, 14));
}

TEST_F(HttpSessionTest, UnsafeTargetsAreBadRequests) {
  for (const char* target : {"/../hello.txt", "/%2e%2e/hello.txt", "/a%00", "/%zz", "*"}) {
    EXPECT_EQ(exchange(std::string("GET ") + target + " HTTP/1.1\r\nHost: a\r\n\r\n"),
              error_response(400, "Bad Request"))
        << target;
  }
}

TEST_F(HttpSessionTest, OtherMethodsAre405) {
  EXPECT_EQ(exchange("DELETE /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"),
            error_response(405, "Method Not Allowed", "Allow: GET, HEAD\r\n"));
  EXPECT_EQ(exchange("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            error_response(405, "Method Not Allowed", "Allow: GET, HEAD\r\n"));
}

TEST_F(HttpSessionTest, ParseErrorsAnswerAndClose) {
  struct Row {
    const char* request;
    int status;
    const char* reason;
  };
  const Row rows[] = {
      {"GET / HTTP/1.1\r\n\r\n", 400, "Bad Request"},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 413, "Content Too Large"},
      {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, "HTTP Version Not Supported"},
  };
  for (const Row& row : rows) {
    HttpSession s(files_);
    EXPECT_TRUE(s.on_input(row.request));
    EXPECT_EQ(drain(s), error_response(row.status, row.reason, "Connection: close\r\n"));
    EXPECT_EQ(s.state(), SessionState::finished) << row.request;
  }
  SessionLimits small;
  small.parser.max_line = 32;
  EXPECT_EQ(exchange("GET /" + std::string(40, 'a') + " HTTP/1.1\r\n", small),
            error_response(414, "URI Too Long", "Connection: close\r\n"));
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nX: " + std::string(40, 'a') + "\r\n", small),
            error_response(431, "Request Header Fields Too Large", "Connection: close\r\n"));
}

TEST_F(HttpSessionTest, KeepAliveServesTwoRequestsInOrder) {
  HttpSession s(files_);
  EXPECT_TRUE(s.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(drain(s), head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n") + kHello);
  EXPECT_EQ(s.state(), SessionState::active);
  EXPECT_TRUE(s.on_input("GET /digits.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(drain(s), head_of(200, "OK", kText, 10, "Accept-Ranges: bytes\r\n") + kDigits);
  EXPECT_EQ(s.state(), SessionState::active);
  EXPECT_EQ(s.counters().responses, 2u);
  EXPECT_EQ(s.counters().status_2xx, 2u);
}

TEST_F(HttpSessionTest, PipelinedRequestsAnsweredInOrderThenClose) {
  HttpSession s(files_);
  EXPECT_TRUE(
      s.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /digits.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                 "GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(drain(s, 7),
            head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n") + kHello +
                error_response(404, "Not Found") +
                head_of(200, "OK", kText, 10, "Accept-Ranges: bytes\r\nConnection: close\r\n") +
                kDigits);
  EXPECT_EQ(s.state(), SessionState::finished);
  EXPECT_TRUE(s.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"));  // ignored
  EXPECT_EQ(drain(s), "");
}

TEST_F(HttpSessionTest, Http10ClosesUnlessKeepAlive) {
  HttpSession s(files_);
  EXPECT_TRUE(s.on_input("GET /hello.txt HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(
      drain(s),
      head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\nConnection: close\r\n") + kHello);
  EXPECT_EQ(s.state(), SessionState::finished);

  HttpSession k(files_);
  EXPECT_TRUE(k.on_input("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(
      drain(k),
      head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\nConnection: keep-alive\r\n") + kHello);
  EXPECT_EQ(k.state(), SessionState::active);
}

TEST_F(HttpSessionTest, PeerFinAfterRequestsFinishesAfterAnswering) {
  HttpSession s(files_);
  EXPECT_TRUE(s.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /dig"));
  s.on_peer_closed();
  EXPECT_EQ(s.state(), SessionState::active);  // one complete request to answer
  EXPECT_EQ(drain(s), head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n") + kHello);
  EXPECT_EQ(s.state(), SessionState::finished);  // the partial request is dropped
}

TEST_F(HttpSessionTest, ResponsesWaitForTheTransport) {
  HttpSession s(files_);
  EXPECT_TRUE(s.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  const wire::Bytes first = s.peek(5);
  ASSERT_EQ(first.size(), 5u);
  s.consume(2);  // the transport took only two bytes
  EXPECT_EQ(s.stream_offset(), 2u);
  const std::string rest = drain(s, 3);
  EXPECT_EQ("HT" + rest, head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n") + kHello);
}

// A file whose bytes are computed, never stored: a big file costs no memory.
class GeneratedFile final : public File {
 public:
  explicit GeneratedFile(std::uint64_t size, std::size_t* largest_read)
      : size_(size), largest_read_(largest_read) {}
  static std::byte at(std::uint64_t offset) {
    return static_cast<std::byte>((offset * 2654435761u) >> 13);
  }
  std::uint64_t size() const override { return size_; }
  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    *largest_read_ = std::max(*largest_read_, out.size());
    const std::size_t n = std::min<std::uint64_t>(out.size(), size_ - offset);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = at(offset + i);
    }
    return n;
  }

 private:
  std::uint64_t size_;
  std::size_t* largest_read_;
};

class GeneratedSource final : public FileSource {
 public:
  explicit GeneratedSource(std::uint64_t size) : size_(size) {}
  Opened open(std::string_view path) override {
    if (path != "big.bin") {
      return Opened{FileStatus::not_found, nullptr};
    }
    return Opened{FileStatus::ok, std::make_unique<GeneratedFile>(size_, &largest_read)};
  }
  std::size_t largest_read = 0;

 private:
  std::uint64_t size_;
};

TEST(HttpSessionStreaming, TenMegabytesThroughASmallWindow) {
  constexpr std::uint64_t kSize = 10 * 1000 * 1000;
  GeneratedSource files(kSize);
  SessionLimits limits;
  limits.chunk_size = 4096;
  HttpSession s(files, limits);
  ASSERT_TRUE(s.on_input("GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::string head =
      head_of(200, "OK", "application/octet-stream", kSize, "Accept-Ranges: bytes\r\n");
  std::uint64_t received = 0;
  std::uint64_t mismatches = 0;
  std::size_t window = 1;
  for (;;) {
    // A window that varies between 1 and 1460 bytes, and a transport that takes 3/4 of it.
    window = window * 7 % 1461 + 1;
    const wire::Bytes b = s.peek(window);
    if (b.empty()) {
      break;
    }
    ASSERT_LE(b.size(), window);
    const std::size_t taken = std::max<std::size_t>(1, b.size() * 3 / 4);
    for (std::size_t i = 0; i < taken; ++i) {
      const std::uint64_t pos = received + i;
      const std::byte expected = pos < head.size() ? static_cast<std::byte>(head[pos])
                                                   : GeneratedFile::at(pos - head.size());
      mismatches += b[i] != expected;
    }
    s.consume(taken);
    received += taken;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(received, head.size() + kSize);
  EXPECT_LE(files.largest_read, 4096u);  // read in chunks, never whole
  EXPECT_EQ(s.counters().body_bytes, kSize);
  EXPECT_EQ(s.state(), SessionState::active);
}

TEST(HttpSessionStreaming, ShortReadFailsTheSession) {
  class Shrinking final : public FileSource {
   public:
    class F final : public File {
     public:
      std::uint64_t size() const override { return 100000; }
      std::size_t read(std::uint64_t, std::span<std::byte> out) override {
        return out.size() / 2;  // the file shrank under us
      }
    };
    Opened open(std::string_view) override { return Opened{FileStatus::ok, std::make_unique<F>()}; }
  } files;
  HttpSession s(files);
  ASSERT_TRUE(s.on_input("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"));
  drain(s);
  EXPECT_EQ(s.state(), SessionState::failed);
  EXPECT_EQ(s.counters().short_read, 1u);
}

TEST_F(HttpSessionTest, InputBeyondTheBacklogFails) {
  SessionLimits limits;
  limits.parser.max_queued = 2;
  limits.max_backlog = 100;
  HttpSession s(files_, limits);
  const std::string one = "GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n";  // 36 bytes
  EXPECT_TRUE(s.on_input(one + one + one + one));  // two parsed, 72 bytes held
  EXPECT_FALSE(s.on_input(one));                   // 108 > 100
  EXPECT_EQ(s.state(), SessionState::failed);
  EXPECT_EQ(s.counters().input_overflow, 1u);
}

TEST_F(HttpSessionTest, BacklogIsParsedAsAnswersGoOut) {
  SessionLimits limits;
  limits.parser.max_queued = 1;
  HttpSession s(files_, limits);
  const std::string one = "GET /digits.txt HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string all;
  for (int i = 0; i < 5; ++i) {
    all += one;
  }
  EXPECT_TRUE(s.on_input(all));
  const std::string response = head_of(200, "OK", kText, 10, "Accept-Ranges: bytes\r\n") + kDigits;
  EXPECT_EQ(drain(s, 9), response + response + response + response + response);
}

// --- resuming from a byte offset (DESIGN §6) ----------------------------------------------------

class HttpResumeTest : public HttpSessionTest {
 protected:
  HttpResumeTest() {
    std::string big;
    for (int i = 0; i < 5000; ++i) {
      big += std::to_string(i) + ",";
    }
    big_ = big;
    files_.add("big.txt", big);
  }
  const std::string kRequests =
      "GET /big.txt HTTP/1.1\r\nHost: a\r\n\r\n"
      "HEAD /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /big.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=100-\r\n\r\n"
      "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /digits.txt HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /hello";  // a partial request
  std::string big_;
};

TEST_F(HttpResumeTest, RestoreFromEveryStepGivesTheSameBytes) {
  SessionLimits limits;
  limits.chunk_size = 1000;
  HttpSession reference(files_, limits);
  ASSERT_TRUE(reference.on_input(kRequests));
  const std::string full = drain(reference);

  // Snapshot a session at many points of its output and resume a fresh one from there.
  for (std::size_t at = 0; at <= full.size(); at += 997) {
    HttpSession a(files_, limits);
    ASSERT_TRUE(a.on_input(kRequests));
    std::string sent;
    while (sent.size() < at) {
      const wire::Bytes b = a.peek(at - sent.size());
      ASSERT_FALSE(b.empty());
      sent.append(reinterpret_cast<const char*>(b.data()), b.size());
      a.consume(b.size());
    }
    const SessionSnapshot snap = a.snapshot();
    EXPECT_LE(snap.stream_offset, at);
    HttpSession b(files_, limits);
    ASSERT_TRUE(b.restore(snap, at)) << at;
    b.check_invariants();
    EXPECT_EQ(b.stream_offset(), at);
    EXPECT_EQ(drain(b, 1460), full.substr(at)) << "resumed at " << at;
  }
}

TEST_F(HttpResumeTest, RetainUntilAckedResumesFromTheAcknowledgedOffset) {
  SessionLimits limits;
  limits.retain_until_acked = true;
  HttpSession reference(files_, limits);
  ASSERT_TRUE(reference.on_input(kRequests));
  const std::string full = drain(reference);

  // The sender ran ahead: everything is sent, but the peer acknowledged only `acked` bytes.
  for (std::size_t acked = 0; acked <= full.size(); acked += 1231) {
    HttpSession a(files_, limits);
    ASSERT_TRUE(a.on_input(kRequests));
    EXPECT_EQ(drain(a), full);
    a.acknowledge(acked);
    a.check_invariants();
    const SessionSnapshot snap = a.snapshot();
    EXPECT_LE(snap.stream_offset, acked);
    HttpSession b(files_, limits);
    ASSERT_TRUE(b.restore(snap, acked));
    EXPECT_EQ(drain(b), full.substr(acked)) << "acked " << acked;
    // The snapshot holds request bytes only, never file data.
    EXPECT_LE(snap.input.size(), kRequests.size());
  }
}

TEST_F(HttpResumeTest, RestoreRefusesOffsetsItCannotRegenerate) {
  HttpSession a(files_);
  ASSERT_TRUE(a.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::string full = drain(a);
  const SessionSnapshot snap = a.snapshot();  // the response is retired: offset = its end
  EXPECT_EQ(snap.stream_offset, full.size());
  HttpSession before(files_);
  EXPECT_FALSE(before.restore(snap, 3));  // bytes already forgotten
  EXPECT_EQ(before.state(), SessionState::failed);
  HttpSession beyond(files_);
  EXPECT_FALSE(beyond.restore(snap, full.size() + 1));  // no such output
  HttpSession exact(files_);
  EXPECT_TRUE(exact.restore(snap, full.size()));
  EXPECT_EQ(drain(exact), "");
  EXPECT_EQ(exact.state(), SessionState::active);
}

TEST_F(HttpResumeTest, SnapshotCarriesThePeerFin) {
  HttpSession a(files_);
  ASSERT_TRUE(a.on_input("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  a.on_peer_closed();
  const wire::Bytes b = a.peek(10);
  a.consume(b.size());
  HttpSession r(files_);
  ASSERT_TRUE(r.restore(a.snapshot(), 10));
  EXPECT_EQ(drain(r).size() + 10,
            head_of(200, "OK", kText, 13, "Accept-Ranges: bytes\r\n").size() + 13);
  EXPECT_EQ(r.state(), SessionState::finished);
}

}  // namespace
}  // namespace phalanx::apps::http
