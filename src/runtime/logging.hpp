// Logs: spdlog to stderr (systemd and the lab collect stderr), one process-wide logger.
// Counter dumps: on SIGHUP and at exit phalanxd logs every non-zero counter, drops first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/counters.hpp"
#include "node/log.hpp"
#include "runtime/config.hpp"
#include "runtime/node_driver.hpp"
#include "runtime/packet_link.hpp"

namespace phalanx::runtime {

// Makes a stderr logger the default, at `level`. Safe to call again (replaces the level).
void setup_logging(LogLevel level);

// A node's log hook (node/log.hpp) that writes to the default logger.
node::LogHook log_hook();

using node::CounterList;
using node::NamedCount;

CounterList named_counters(const PacketLinkCounters& c);
CounterList named_counters(const NodeDriverCounters& c);

// One line per group, "title: name=value name=value ...", zeros left out ("title: all zero").
std::string format_counters(std::string_view title, const CounterList& counters);

// Logs format_counters() at info level.
void log_counters(std::string_view title, const CounterList& counters);

}  // namespace phalanx::runtime
