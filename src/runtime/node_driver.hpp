// NodeDriver: runs a Node on a Link inside an EventLoop. On every wakeup it reads the time once,
// feeds the node every frame waiting (up to a batch), then sends everything the node wants sent
// with one flush and re-arms the loop's timer at the node's next deadline. The node's timer
// runs from the loop's, after every ready descriptor of the wakeup was served.
#pragma once

#include <functional>

#include <cstddef>
#include <cstdint>

#include "node/node.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/link.hpp"

namespace phalanx::runtime {

using node::kNoDeadline;
using node::Node;

struct NodeDriverCounters {
  std::uint64_t wakeups = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t timer_calls = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t frames_not_sent = 0;  // the link refused them (see the link's counters)
};

class NodeDriver {
 public:
  // `rx_batch`: frames handed to the node per wakeup before it gets to send; the rest wait
  // for the next turn of the loop (level-triggered), so timers and other fds are not starved.
  NodeDriver(EventLoop& loop, Link& link, Node& node, std::size_t rx_batch = 1024);
  ~NodeDriver();
  NodeDriver(const NodeDriver&) = delete;
  NodeDriver& operator=(const NodeDriver&) = delete;

  // Watches the link (served in `order` among the loop's descriptors) and takes over the loop's
  // timer; sends what the node already has queued.
  Status start(int order = 0);

  // Sends what the node has queued and re-arms the timer; for callers that poked the node
  // outside the driver (e.g. on a control socket).
  void pump();
  // Called at the end of every pump (after the node's output went out): e.g. to stop the loop
  // once the node is done.
  void set_after_pump(std::function<void()> hook) { after_pump_ = std::move(hook); }

  const NodeDriverCounters& counters() const { return counters_; }

 private:
  void on_readable();
  void on_timer(Time now);

  EventLoop& loop_;
  Link& link_;
  Node& node_;
  std::size_t rx_batch_;
  bool started_ = false;
  std::function<void()> after_pump_;
  NodeDriverCounters counters_;
};

}  // namespace phalanx::runtime
