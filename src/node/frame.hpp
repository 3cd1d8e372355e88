// What the driver knows about a received frame beyond its bytes.
#pragma once

#include "wire/bytes.hpp"

namespace phalanx::node {

struct FrameMeta {
  // The sender was local (e.g. a veth peer in the same kernel) and left the L4 checksum for
  // "hardware" to fill in (CHECKSUM_PARTIAL): the checksum field holds only the pseudo-header
  // sum, so the stack must not verify it. The frame is otherwise intact.
  bool checksum_not_ready = false;
  // The kernel (or the NIC) already verified the L4 checksum.
  bool checksum_valid = false;
};

}  // namespace phalanx::node
