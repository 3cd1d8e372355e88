// From a request-target to a file path under the served root, and from a file name to its
// Content-Type. Pure string work; the http session uses both.
//
// resolve_target (RFC 9112 §3.2, RFC 3986 §2.1, §5.2.4):
//   - origin-form "/a/b?q" and absolute-form "http://host/a/b?q" are accepted; the query is
//     dropped (static files take no arguments); anything else ("*", "a/b") is refused;
//   - percent-escapes are decoded; a malformed escape or an encoded NUL is refused;
//   - the decoded path is split on '/', empty and "." segments are dropped, ".." removes the
//     segment before it, and a ".." that would climb above the root is refused: no escape.
//     Decoding happens before splitting, so "%2e%2e" and "%2f" cannot smuggle a segment past it.
// A refused target is answered 400.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace phalanx::apps::http {

struct ResolvedPath {
  std::string path;             // segments joined by '/', "" for the root; never "..", "." or NUL
  bool trailing_slash = false;  // the target named a directory ("/docs/")
  bool operator==(const ResolvedPath&) const = default;
};

std::optional<ResolvedPath> resolve_target(std::string_view target);

// The Content-Type for a file name, by extension (case-insensitive); a small fixed table, and
// application/octet-stream for everything else.
std::string_view content_type_for(std::string_view path);

}  // namespace phalanx::apps::http
