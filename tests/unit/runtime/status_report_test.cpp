// The status JSON's counter sections (runtime/status_report.hpp): what `phalanxctl status` lists
// as drops by reason.
#include "runtime/status_report.hpp"

#include <gtest/gtest.h>

namespace phalanx::runtime {
namespace {

TEST(StatusReport, LinkDropsAreListedByReasonAndOtherCountersAsCounters) {
  nlohmann::json status;
  status["drops"] = {{"stack.tcp_bad_checksum", 2}};
  status["counters"] = nlohmann::json::object();
  PacketLinkCounters link;
  link.rx_frames = 10;
  link.rx_large_frames = 3;
  link.rx_truncated = 4;
  link.rx_kernel_drops = 0;  // zero drops are left out
  add_counters(status, "link", named_counters(link));
  EXPECT_EQ(status["drops"]["link.rx_truncated"], 4);
  EXPECT_FALSE(status["drops"].contains("link.rx_kernel_ring_full"));
  EXPECT_EQ(status["drops"]["stack.tcp_bad_checksum"], 2);  // kept
  EXPECT_EQ(status["counters"]["link.rx_frames"], 10);
  EXPECT_EQ(status["counters"]["link.rx_large_frames"], 3);
}

}  // namespace
}  // namespace phalanx::runtime
