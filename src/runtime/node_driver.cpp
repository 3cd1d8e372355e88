#include "runtime/node_driver.hpp"

#include <sys/epoll.h>

namespace phalanx::runtime {

NodeDriver::NodeDriver(EventLoop& loop, Link& link, Node& node, std::size_t rx_batch)
    : loop_(loop), link_(link), node_(node), rx_batch_(rx_batch) {}

NodeDriver::~NodeDriver() {
  if (started_) {
    loop_.unwatch(link_.fd());
    loop_.set_timer_handler({});
    loop_.set_deadline(Time::max());
  }
}

Status NodeDriver::start(int order) {
  if (auto s = loop_.watch(
          link_.fd(), EPOLLIN, [this](std::uint32_t) { on_readable(); }, order);
      !s) {
    return s;
  }
  loop_.set_timer_handler([this](Time now) { on_timer(now); });
  started_ = true;
  pump();
  return Ok{};
}

void NodeDriver::on_readable() {
  ++counters_.wakeups;
  const Time now = loop_.clock().now();
  std::size_t total = 0;
  while (total < rx_batch_) {
    const std::size_t n = link_.receive(
        [&](const RxFrame& f) { node_.on_frame(now, f.bytes, f.meta); }, rx_batch_ - total);
    if (n == 0) {
      break;
    }
    total += n;
  }
  counters_.frames_in += total;
  // No timer here: the loop runs it after every ready descriptor was served (event_loop.hpp).
  pump();
}

void NodeDriver::on_timer(Time now) {
  ++counters_.wakeups;
  ++counters_.timer_calls;
  node_.on_timer(now);
  pump();
}

void NodeDriver::pump() {
  node_.drain([this](wire::Bytes frame, stack::TxMeta meta) {
    if (link_.send(frame, meta)) {
      ++counters_.frames_out;
    } else {
      ++counters_.frames_not_sent;
    }
  });
  link_.flush();
  loop_.set_deadline(node_.next_deadline());
  if (after_pump_) {
    after_pump_();
  }
}

}  // namespace phalanx::runtime
