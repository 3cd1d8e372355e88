// Logs of a node: a pure node never writes anywhere itself; it hands a line and its level to a
// hook the driver injects (runtime: spdlog to stderr; tests and the simulator: collect or
// ignore). No hook: the line is dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace phalanx::node {

enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, critical, off };
std::string_view to_string(LogLevel l);
std::optional<LogLevel> log_level_from_string(std::string_view s);

using LogHook = std::function<void(LogLevel, std::string_view line)>;

}  // namespace phalanx::node
