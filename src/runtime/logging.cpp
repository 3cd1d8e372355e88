#include "runtime/logging.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace phalanx::runtime {

namespace {

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::critical:
      return spdlog::level::critical;
    case LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

void setup_logging(LogLevel level) {
  auto logger = spdlog::get("phalanxd");
  if (!logger) {
    logger = std::make_shared<spdlog::logger>("phalanxd",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::register_logger(logger);
    spdlog::set_default_logger(logger);
  }
  logger->set_level(to_spdlog(level));
  logger->flush_on(spdlog::level::warn);
}

node::LogHook log_hook() {
  return [](LogLevel level, std::string_view line) { spdlog::log(to_spdlog(level), "{}", line); };
}

CounterList named_counters(const PacketLinkCounters& c) {
  return {
      {"rx_frames", c.rx_frames},
      {"rx_bytes", c.rx_bytes},
      {"rx_checksum_not_ready", c.rx_checksum_not_ready},
      {"rx_large_frames", c.rx_large_frames},
      {"drop.rx_ignored_outgoing", c.rx_ignored_outgoing},
      {"drop.rx_truncated", c.rx_truncated},
      {"drop.rx_vlan", c.rx_vlan},
      {"drop.rx_kernel_ring_full", c.rx_kernel_drops},
      {"drop.rx_large_buffer_full", c.rx_large_kernel_drops},
      {"tx_frames", c.tx_frames},
      {"tx_bytes", c.tx_bytes},
      {"drop.tx_ring_full", c.tx_ring_full},
      {"drop.tx_too_big", c.tx_too_big},
      {"tx_send_errors", c.tx_send_errors},
      {"tx_offloaded", c.tx_offloaded},
      {"tx_offload_errors", c.tx_offload_errors},
      {"tx_cut_here", c.tx_cut_here},
      {"drop.tx_not_tcp", c.tx_not_tcp},
      {"tx_resegmented", c.tx_resegmented},
  };
}

CounterList named_counters(const NodeDriverCounters& c) {
  return {
      {"wakeups", c.wakeups},
      {"frames_in", c.frames_in},
      {"timer_calls", c.timer_calls},
      {"frames_out", c.frames_out},
      {"drop.frames_not_sent", c.frames_not_sent},
  };
}

std::string format_counters(std::string_view title, const CounterList& counters) {
  std::string out = fmt::format("{}:", title);
  bool any = false;
  for (const auto& c : counters) {
    if (c.value != 0) {
      out += fmt::format(" {}={}", c.name, c.value);
      any = true;
    }
  }
  if (!any) {
    out += " all zero";
  }
  return out;
}

void log_counters(std::string_view title, const CounterList& counters) {
  spdlog::info("{}", format_counters(title, counters));
}

}  // namespace phalanx::runtime
