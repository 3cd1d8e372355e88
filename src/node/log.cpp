#include "node/log.hpp"

namespace phalanx::node {

std::string_view to_string(LogLevel l) {
  switch (l) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::critical:
      return "critical";
    case LogLevel::off:
      return "off";
  }
  return "?";
}

std::optional<LogLevel> log_level_from_string(std::string_view s) {
  for (auto l : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error,
                 LogLevel::critical, LogLevel::off}) {
    if (to_string(l) == s) {
      return l;
    }
  }
  return std::nullopt;
}

}  // namespace phalanx::node
