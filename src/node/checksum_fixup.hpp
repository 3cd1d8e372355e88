// Completing checksums a local sender left to "hardware". A frame from a veth peer in the same
// kernel may carry CHECKSUM_PARTIAL: its TCP or UDP checksum field holds only the pseudo-header
// sum. The link flags such frames (FrameMeta::checksum_not_ready); the driver completes the
// checksum before the stack verifies it.
#pragma once

#include "wire/bytes.hpp"

namespace phalanx::node {

// Recomputes the TCP or UDP checksum of an untagged Ethernet frame holding an IPv4 packet, in
// place. Returns false, leaving the frame alone, for anything else (not IPv4, a fragment, a
// header that does not parse, another protocol): the stack then judges the frame as it is.
bool complete_l4_checksum(wire::MutBytes frame);

}  // namespace phalanx::node
