// A link: where a member's frames come from and go to. PacketLink is the Linux one (AF_PACKET);
// tests drive the loop with fakes.
#pragma once

#include <cstddef>
#include <functional>

#include "node/frame.hpp"
#include "stack/tx_ring.hpp"
#include "wire/bytes.hpp"

namespace phalanx::runtime {

using node::FrameMeta;

struct RxFrame {
  wire::Bytes bytes;  // valid only during the callback that receives it
  FrameMeta meta;
};

class Link {
 public:
  using FrameHandler = std::function<void(const RxFrame&)>;

  virtual ~Link() = default;

  // A descriptor that polls readable when frames wait (level-triggered).
  virtual int fd() const = 0;

  // Calls `on_frame` for the frames waiting, in arrival order, stopping once at least
  // `max_frames` were delivered (a link may finish a batch it has started). Returns the number
  // delivered; 0 when none waited. Never blocks.
  virtual std::size_t receive(const FrameHandler& on_frame, std::size_t max_frames) = 0;

  // Queues one Ethernet frame. A frame marked for segmentation offload (meta.gso_size, from a
  // stack with StackLimits::offload_max) is cut into MTU-sized frames by the kernel or NIC, or
  // by the link itself. Returns false, and counts why, when the frame cannot be queued (queue
  // full, frame too big); the frame is then dropped. Never blocks.
  virtual bool send(wire::Bytes frame, stack::TxMeta meta) = 0;
  bool send(wire::Bytes frame) { return send(frame, {}); }

  // The largest IPv4 datagram send() takes marked for offload and hands on whole (the kernel
  // cuts it); 0 when the link cuts in software, which saves nothing: then leave
  // StackLimits::offload_max at 0.
  virtual std::size_t offload_max() const { return 0; }

  // Hands every queued frame to the kernel. Never blocks; failures are counted.
  virtual void flush() = 0;
};

}  // namespace phalanx::runtime
