// EventLoop and NodeDriver with a fake link and a fake node: timer deadlines, batching of
// received frames before one flush, signals. Deadlines are short and the checks only ask for
// order and "not early", so the tests do not depend on how fast the machine is.
#include "runtime/event_loop.hpp"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <csignal>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "runtime/node_driver.hpp"

namespace phalanx::runtime {
namespace {

using std::chrono::milliseconds;
using Frame = std::vector<std::byte>;

Frame frame_of(std::uint8_t tag) {
  return Frame(60, std::byte{tag});
}

// A link whose frames the test injects; readable through an eventfd while frames wait.
class FakeLink final : public Link {
 public:
  explicit FakeLink(std::vector<std::string>& log)
      : log_(log), fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  void inject(Frame f) {
    rx_.push_back(std::move(f));
    std::uint64_t one = 1;
    ASSERT_EQ(::write(fd_.get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }

  int fd() const override { return fd_.get(); }
  std::size_t receive(const FrameHandler& on_frame, std::size_t max_frames) override {
    std::size_t n = 0;
    while (n < max_frames && !rx_.empty()) {
      Frame f = std::move(rx_.front());
      rx_.pop_front();
      on_frame(RxFrame{wire::Bytes(f), FrameMeta{}});
      ++n;
    }
    if (rx_.empty()) {
      std::uint64_t count = 0;
      (void)::read(fd_.get(), &count, sizeof(count));
    }
    return n;
  }
  bool send(wire::Bytes frame, stack::TxMeta) override {
    log_.push_back("send " + std::to_string(std::to_integer<int>(frame[0])));
    sent.emplace_back(frame.begin(), frame.end());
    return true;
  }
  void flush() override {
    if (!sent.empty() && (log_.empty() || log_.back() != "flush")) {
      log_.push_back("flush");
    }
  }

  std::vector<Frame> sent;

 private:
  std::vector<std::string>& log_;
  std::deque<Frame> rx_;
  UniqueFd fd_;
};

// Echoes every frame and asks for timers at the deadlines the test gives it.
class FakeNode final : public Node {
 public:
  explicit FakeNode(std::vector<std::string>& log) : log_(log) {}

  void on_frame(Time now, wire::Bytes frame, FrameMeta) override {
    log_.push_back("frame " + std::to_string(std::to_integer<int>(frame[0])));
    frame_times.push_back(now);
    out_.emplace_back(frame.begin(), frame.end());
  }
  void on_timer(Time now) override {
    if (deadlines.empty() || deadlines.front() > now) {
      ++calls_with_nothing_due;
    }
    while (!deadlines.empty() && deadlines.front() <= now) {
      fired.push_back({deadlines.front(), now});
      deadlines.pop_front();
    }
  }
  Time next_deadline() const override {
    return deadlines.empty() ? kNoDeadline : deadlines.front();
  }
  void drain(const FrameSink& sink) override {
    for (const auto& f : out_) {
      sink(wire::Bytes(f), {});
    }
    out_.clear();
  }

  std::deque<Time> deadlines;
  std::vector<std::pair<Time, Time>> fired;  // (deadline, now at the call)
  int calls_with_nothing_due = 0;
  std::vector<Time> frame_times;

 private:
  std::vector<std::string>& log_;
  std::vector<Frame> out_;
};

class EventLoopTest : public testing::Test {
 protected:
  void SetUp() override {
    auto l = EventLoop::create(clock_);
    ASSERT_TRUE(l.ok()) << l.error().message;
    loop_ = std::move(*l);
  }

  // Runs the loop until `done()` holds, checked every millisecond; fails after 5 s.
  void run_until(const std::function<bool()>& done) {
    UniqueFd tick(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    itimerspec spec{};
    spec.it_value.tv_nsec = 1'000'000;
    spec.it_interval.tv_nsec = 1'000'000;
    ASSERT_EQ(::timerfd_settime(tick.get(), 0, &spec, nullptr), 0);
    const Time limit = clock_.now() + std::chrono::seconds(5);
    ASSERT_TRUE(loop_
                    ->watch(tick.get(), EPOLLIN,
                            [&](std::uint32_t) {
                              std::uint64_t expirations = 0;
                              (void)::read(tick.get(), &expirations, sizeof(expirations));
                              if (done() || clock_.now() > limit) {
                                loop_->stop();
                              }
                            })
                    .ok());
    ASSERT_TRUE(loop_->run().ok());
    loop_->unwatch(tick.get());
    ASSERT_TRUE(done()) << "the loop did not get there within 5 s";
  }

  MonotonicClock clock_;
  std::unique_ptr<EventLoop> loop_;
};

TEST_F(EventLoopTest, NodeTimersRunInOrderAndNeverEarly) {
  std::vector<std::string> log;
  FakeLink link(log);
  FakeNode node(log);
  const Time start = clock_.now();
  node.deadlines = {start + milliseconds(5), start + milliseconds(10), start + milliseconds(30)};
  NodeDriver driver(*loop_, link, node);
  ASSERT_TRUE(driver.start().ok());
  run_until([&] { return node.deadlines.empty(); });
  ASSERT_EQ(node.fired.size(), 3u);
  for (std::size_t i = 0; i < node.fired.size(); ++i) {
    EXPECT_GE(node.fired[i].second, node.fired[i].first) << "timer " << i << " ran early";
  }
  EXPECT_EQ(loop_->deadline(), Time::max()) << "nothing left to wait for: timer disarmed";
  // One call per deadline, or fewer when a late wakeup (a loaded machine) finds two due: never
  // a call with nothing due.
  EXPECT_GE(driver.counters().timer_calls, 1u);
  EXPECT_LE(driver.counters().timer_calls, 3u);
  EXPECT_EQ(node.calls_with_nothing_due, 0);
}

TEST_F(EventLoopTest, FramesAreReadInOneBatchThenFlushedOnce) {
  std::vector<std::string> log;
  FakeLink link(log);
  FakeNode node(log);
  for (std::uint8_t i = 1; i <= 4; ++i) {
    link.inject(frame_of(i));
  }
  NodeDriver driver(*loop_, link, node);
  ASSERT_TRUE(driver.start().ok());
  run_until([&] { return link.sent.size() == 4; });
  EXPECT_EQ(log, (std::vector<std::string>{"frame 1", "frame 2", "frame 3", "frame 4", "send 1",
                                           "send 2", "send 3", "send 4", "flush"}));
  ASSERT_EQ(node.frame_times.size(), 4u);
  EXPECT_EQ(node.frame_times.front(), node.frame_times.back()) << "one clock read per wakeup";
  EXPECT_EQ(driver.counters().wakeups, 1u);
  EXPECT_EQ(driver.counters().frames_in, 4u);
  EXPECT_EQ(driver.counters().frames_out, 4u);
}

TEST_F(EventLoopTest, BatchLimitLetsTheNodeSendBetweenBatches) {
  std::vector<std::string> log;
  FakeLink link(log);
  FakeNode node(log);
  for (std::uint8_t i = 1; i <= 5; ++i) {
    link.inject(frame_of(i));
  }
  NodeDriver driver(*loop_, link, node, /*rx_batch=*/2);
  ASSERT_TRUE(driver.start().ok());
  run_until([&] { return link.sent.size() == 5; });
  EXPECT_EQ(log, (std::vector<std::string>{"frame 1", "frame 2", "send 1", "send 2", "flush",
                                           "frame 3", "frame 4", "send 3", "send 4", "flush",
                                           "frame 5", "send 5", "flush"}));
  EXPECT_EQ(driver.counters().wakeups, 3u);
}

TEST_F(EventLoopTest, ANewDeadlineReplacesTheOldOne) {
  std::vector<Time> calls;
  loop_->set_timer_handler([&](Time now) { calls.push_back(now); });
  const Time start = clock_.now();
  loop_->set_deadline(start + std::chrono::hours(1));
  loop_->set_deadline(start + milliseconds(5));
  run_until([&] { return !calls.empty(); });
  EXPECT_GE(calls.front(), start + milliseconds(5));
}

TEST_F(EventLoopTest, NoDeadlineDisarms) {
  std::vector<Time> calls;
  loop_->set_timer_handler([&](Time now) { calls.push_back(now); });
  const Time start = clock_.now();
  loop_->set_deadline(start + milliseconds(2));
  loop_->set_deadline(Time::max());
  run_until([&] { return clock_.now() > start + milliseconds(20); });
  EXPECT_TRUE(calls.empty());
}

TEST_F(EventLoopTest, DeadlineInThePastFiresAtOnce) {
  std::vector<Time> calls;
  loop_->set_timer_handler([&](Time now) { calls.push_back(now); });
  loop_->set_deadline(Time{0});
  run_until([&] { return !calls.empty(); });
  EXPECT_EQ(calls.size(), 1u);
}

TEST_F(EventLoopTest, SignalsArriveThroughTheLoop) {
  std::vector<int> signals;
  loop_->set_signal_handler([&](int signo) { signals.push_back(signo); });
  ASSERT_EQ(::raise(SIGHUP), 0);  // blocked by the loop: pending until its signalfd reads it
  ASSERT_EQ(::raise(SIGTERM), 0);
  run_until([&] { return signals.size() == 2; });
  EXPECT_EQ(signals, (std::vector<int>{SIGHUP, SIGTERM}));
}

TEST_F(EventLoopTest, WatchingADescriptorTwiceFails) {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  ASSERT_TRUE(loop_->watch(fd.get(), EPOLLIN, [](std::uint32_t) {}).ok());
  auto again = loop_->watch(fd.get(), EPOLLIN, [](std::uint32_t) {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "epoll_ctl(ADD): File exists");
}

// A member woken from a pause reads what queued before a watchdog judges the others' silence:
// the descriptors of a wakeup are served before the timer, whichever became ready first.
TEST_F(EventLoopTest, TheTimerRunsAfterTheDescriptorsOfItsWakeup) {
  std::vector<std::string> log;
  UniqueFd control(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  loop_->set_timer_handler([&](Time) {
    log.push_back("timer");
    loop_->stop();
  });
  ASSERT_TRUE(loop_
                  ->watch(control.get(), EPOLLIN,
                          [&](std::uint32_t) {
                            std::uint64_t n = 0;
                            (void)::read(control.get(), &n, sizeof(n));
                            log.push_back("control");
                          })
                  .ok());
  loop_->set_deadline(Time{0});  // the timer is ready first
  std::uint64_t one = 1;
  ASSERT_EQ(::write(control.get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  ASSERT_TRUE(loop_->run().ok());
  EXPECT_EQ(log, (std::vector<std::string>{"control", "timer"}));
  loop_->unwatch(control.get());
}

// A wakeup far past the armed deadline (the process was stopped) is reported, and the whole
// backlog is read, batch after batch, before the node's timer runs.
TEST_F(EventLoopTest, AfterAStallTheBacklogIsReadBeforeTheTimer) {
  std::vector<std::string> log;
  FakeLink link(log);
  FakeNode node(log);
  std::vector<Time> stalls;
  loop_->set_stall_handler(milliseconds(10), [&](Time, Time late) { stalls.push_back(late); });
  NodeDriver driver(*loop_, link, node, /*rx_batch=*/2);
  const Time start = clock_.now();
  node.deadlines = {start + milliseconds(1)};
  ASSERT_TRUE(driver.start().ok());
  for (std::uint8_t i = 1; i <= 7; ++i) {
    link.inject(frame_of(i));
  }
  ::usleep(40'000);  // "stopped": the deadline passes by 39 ms with nobody running
  run_until([&] { return node.deadlines.empty(); });
  ASSERT_EQ(stalls.size(), 1u);
  EXPECT_GE(stalls.front(), milliseconds(30));
  EXPECT_EQ(loop_->stalls(), 1u);
  ASSERT_EQ(node.fired.size(), 1u);
  ASSERT_EQ(node.frame_times.size(), 7u) << "the backlog was not read first";
  for (Time t : node.frame_times) {
    EXPECT_LE(t, node.fired.front().second) << "a frame was read after the timer ran";
  }
}

// The process may be stopped anywhere, also while it serves a wakeup that began on time: what
// queued during that stop is read before the timer judges anyone's silence.
TEST_F(EventLoopTest, AStopWhileServingAWakeupIsAStallToo) {
  std::vector<std::string> log;
  std::vector<Time> stalls;
  loop_->set_stall_handler(milliseconds(10), [&](Time, Time late) { stalls.push_back(late); });
  UniqueFd first(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd queued(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  std::uint64_t one = 1;
  loop_->set_timer_handler([&](Time) {
    log.push_back("timer");
    loop_->stop();
  });
  ASSERT_TRUE(loop_
                  ->watch(first.get(), EPOLLIN,
                          [&](std::uint32_t) {
                            std::uint64_t n = 0;
                            (void)::read(first.get(), &n, sizeof(n));
                            log.push_back("first");
                            ::usleep(40'000);  // stopped here; meanwhile a datagram queues
                            (void)::write(queued.get(), &one, sizeof(one));
                          })
                  .ok());
  ASSERT_TRUE(loop_
                  ->watch(queued.get(), EPOLLIN,
                          [&](std::uint32_t) {
                            std::uint64_t n = 0;
                            (void)::read(queued.get(), &n, sizeof(n));
                            log.push_back("queued");
                          })
                  .ok());
  loop_->set_deadline(clock_.now() + milliseconds(20));  // passes during the stop
  ASSERT_EQ(::write(first.get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  ASSERT_TRUE(loop_->run().ok());
  EXPECT_EQ(log, (std::vector<std::string>{"first", "queued", "timer"}));
  ASSERT_EQ(stalls.size(), 1u);
  EXPECT_GE(stalls.front(), milliseconds(30));
  loop_->unwatch(first.get());
  loop_->unwatch(queued.get());
}

}  // namespace
}  // namespace phalanx::runtime
