// Fuzz target for the HTTP/1.1 request parser and the request-target resolver (DESIGN §7: every
// decoder is fuzzed). The input is parsed twice: whole, and cut into pieces whose lengths come
// from the input itself. Any input must parse or be refused without a crash, and:
//   - both runs produce the same requests, errors and wire sizes (splitting never matters);
//   - the parser's invariants hold after every feed, and it never consumes more than it is given;
//   - the wire sizes of the messages add up to no more than the bytes consumed;
//   - every resolved target is a safe relative path: no "", "." or ".." segment, no NUL.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "apps/http_parser.hpp"
#include "apps/http_target.hpp"

namespace {

using namespace phalanx::apps::http;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "http_request_fuzz: %s\n", what);
  std::abort();
}

// What a parsed message looks like from outside, for comparing two runs.
std::string summarize(const Parsed& p) {
  std::string s = std::to_string(static_cast<int>(p.error)) + "|" + std::to_string(p.wire_size);
  if (p.error == ParseError::none) {
    const Request& r = p.request;
    s += "|" + r.method_name + "|" + r.target + "|" + std::to_string(static_cast<int>(r.version)) +
         "|" + r.host + "|" + std::to_string(r.keep_alive) + std::to_string(r.keep_alive_asked) +
         "|" + std::to_string(static_cast<int>(r.range.kind)) + "," +
         std::to_string(r.range.first) + "," + std::to_string(r.range.last) + "," +
         std::to_string(r.range.length) + "|" + std::to_string(r.has_if_range);
  }
  return s;
}

void check_target(const Request& r) {
  const auto resolved = resolve_target(r.target);
  if (!resolved) {
    return;
  }
  const std::string& path = resolved->path;
  if (path.find('\0') != std::string::npos) {
    violated("resolved path contains NUL");
  }
  if (path.empty()) {
    return;
  }
  std::string_view rest = path;
  for (;;) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") {
      violated("resolved path has an empty, '.' or '..' segment");
    }
    if (slash == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(slash + 1);
  }
}

// Parses `input` in pieces whose lengths `next_piece` chooses; returns the summaries.
template <class NextPiece>
std::vector<std::string> run(std::string_view input, NextPiece next_piece) {
  const ParserLimits limits{
      .max_line = 256, .max_fields = 8, .max_header_bytes = 1024, .max_queued = 3};
  RequestParser parser(limits);
  std::vector<std::string> out;
  std::size_t consumed = 0;
  std::size_t wire_total = 0;
  std::size_t offset = 0;
  std::string_view pending;
  while (true) {
    if (pending.empty()) {
      if (offset >= input.size()) {
        break;
      }
      const std::size_t piece = std::min(next_piece(), input.size() - offset);
      pending = input.substr(offset, piece);
      offset += piece;
    }
    const std::size_t n = parser.feed(pending);
    parser.check_invariants();
    if (n > pending.size()) {
      violated("consumed more than fed");
    }
    consumed += n;
    pending.remove_prefix(n);
    while (parser.has_parsed()) {
      const Parsed p = parser.pop();
      wire_total += p.wire_size;
      if (p.error == ParseError::none) {
        check_target(p.request);
      }
      out.push_back(summarize(p));
    }
    if (parser.stopped()) {
      break;  // nothing after this is ever consumed
    }
    if (n == 0 && !pending.empty()) {
      violated("no progress with an empty queue");
    }
  }
  if (wire_total > consumed) {
    violated("wire sizes exceed the bytes consumed");
  }
  if (parser.stopped() && wire_total != consumed) {
    violated("bytes consumed that belong to no message after stopping");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  // The first byte seeds the split lengths; the rest is the request stream.
  std::uint32_t state = 0x9e3779b9u ^ data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  const auto whole = run(input, [&] { return input.size() + 1; });
  const auto split = run(input, [&] {
    // xorshift32: small, fixed, ours (STYLE 9).
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return std::size_t{1} + state % 17;
  });
  if (whole != split) {
    violated("splitting the input changed what was parsed");
  }
  return 0;
}
