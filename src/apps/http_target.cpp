#include "apps/http_target.hpp"

#include <array>
#include <utility>
#include <vector>

#include "apps/http_chars.hpp"

namespace phalanx::apps::http {

std::optional<ResolvedPath> resolve_target(std::string_view target) {
  // absolute-form: scheme "://" authority path-abempty [ "?" query ]
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (chars::istarts_with(target, scheme)) {
      const auto path_start = target.find_first_of("/?", scheme.size());
      if (path_start == std::string_view::npos || target[path_start] == '?') {
        target = "/";
      } else {
        target = target.substr(path_start);
      }
      break;
    }
  }
  if (target.empty() || target.front() != '/') {
    return std::nullopt;
  }
  target = target.substr(0, target.find_first_of("?#"));

  std::string decoded;
  decoded.reserve(target.size());
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      decoded.push_back(target[i]);
      continue;
    }
    if (i + 2 >= target.size()) {
      return std::nullopt;  // "%" or "%X" at the end
    }
    const int high = chars::hex_value(target[i + 1]);
    const int low = chars::hex_value(target[i + 2]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    const char c = static_cast<char>(high << 4 | low);
    if (c == '\0') {
      return std::nullopt;
    }
    decoded.push_back(c);
    i += 2;
  }

  // Remove dot segments (RFC 3986 §5.2.4), refusing to climb above the root.
  // A path that ends in "/", "/." or "/.." names a directory.
  const std::string_view whole = decoded;
  const bool trailing_slash =
      whole.ends_with('/') || whole.ends_with("/.") || whole.ends_with("/..");
  std::vector<std::string_view> segments;
  std::string_view rest = whole;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (segment.empty() || segment == ".") {
      continue;
    }
    if (segment == "..") {
      if (segments.empty()) {
        return std::nullopt;
      }
      segments.pop_back();
      continue;
    }
    segments.push_back(segment);
  }
  ResolvedPath out;
  out.trailing_slash = trailing_slash || segments.empty();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) {
      out.path.push_back('/');
    }
    out.path.append(segments[i]);
  }
  return out;
}

std::string_view content_type_for(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kTypes{{
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"pdf", "application/pdf"},
      {"wasm", "application/wasm"},
      {"woff2", "font/woff2"},
      {"mp4", "video/mp4"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"tar", "application/x-tar"},
  }};
  const auto slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) {
    return "application/octet-stream";
  }
  const std::string_view ext = name.substr(dot + 1);
  for (const auto& [known, type] : kTypes) {
    if (chars::iequals(ext, known)) {
      return type;
    }
  }
  return "application/octet-stream";
}

}  // namespace phalanx::apps::http
