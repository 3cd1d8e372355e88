// Node: the pure core the driver runs. A node never reads a clock, never blocks and never
// touches a socket (DESIGN §2): the driver passes it the time, the frames that arrived and the
// timer it asked for, and takes away the frames it wants sent.
#pragma once

#include <chrono>
#include <functional>

#include "node/frame.hpp"
#include "stack/tx_ring.hpp"
#include "stack/types.hpp"
#include "wire/bytes.hpp"

namespace phalanx::node {

// Time since the driver's origin, as every pure core takes it (wire/time.hpp); no timer wanted:
// the kNever of every layer.
using phalanx::Time;
inline constexpr Time kNoDeadline = kNever;

class Node {
 public:
  // A frame to send, and how (stack::TxMeta: segmentation offload).
  using FrameSink = std::function<void(wire::Bytes, stack::TxMeta)>;

  virtual ~Node() = default;

  // One Ethernet frame from the link; `frame` is valid only during the call.
  virtual void on_frame(Time now, wire::Bytes frame, FrameMeta meta) = 0;

  // The deadline the node asked for has passed (or the driver woke for another reason; a node
  // must tolerate an early or repeated call).
  virtual void on_timer(Time now) = 0;

  // When the node next needs on_timer(); kNoDeadline when it needs none.
  virtual Time next_deadline() const = 0;

  // Passes every frame waiting to leave to `sink`, oldest first, and forgets them. A frame is
  // valid only during its sink call.
  virtual void drain(const FrameSink& sink) = 0;
};

}  // namespace phalanx::node
