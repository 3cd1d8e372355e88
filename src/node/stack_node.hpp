// StackNode: the Node the driver runs for a stand-alone member — the member's stack::Stack.
#pragma once

#include <cstdint>
#include <vector>

#include "node/node.hpp"
#include "stack/stack.hpp"

namespace phalanx::node {

class StackNode final : public Node {
 public:
  explicit StackNode(stack::Stack& stack) : stack_(stack) {}

  // Frames flagged checksum_not_ready are copied and their TCP/UDP checksum completed first,
  // since the stack verifies every checksum (see checksum_fixup.hpp).
  void on_frame(Time now, wire::Bytes frame, FrameMeta meta) override;
  void on_timer(Time now) override { stack_.on_timer(now); }
  Time next_deadline() const override { return stack_.next_deadline(); }
  void drain(const FrameSink& sink) override { stack_.drain(sink); }

  std::uint64_t checksums_completed() const { return checksums_completed_; }

 private:
  stack::Stack& stack_;
  std::vector<std::byte> scratch_;
  std::uint64_t checksums_completed_ = 0;
};

}  // namespace phalanx::node
