#include "node/stack_node.hpp"

#include <algorithm>

#include "node/checksum_fixup.hpp"

namespace phalanx::node {

void StackNode::on_frame(Time now, wire::Bytes frame, FrameMeta meta) {
  if (!meta.checksum_not_ready) {
    stack_.on_frame(now, frame);
    return;
  }
  scratch_.assign(frame.begin(), frame.end());
  if (complete_l4_checksum(scratch_)) {
    ++checksums_completed_;
  }
  stack_.on_frame(now, scratch_);
}

}  // namespace phalanx::node
