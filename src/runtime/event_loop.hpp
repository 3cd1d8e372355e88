// EventLoop: one thread's epoll loop. It watches descriptors, keeps one timerfd armed at the
// earliest deadline it was given, and turns SIGTERM, SIGINT and SIGHUP into callbacks through a
// signalfd (the constructor blocks those signals in the calling thread, so create the loop
// before any other thread).
//
// Order within a wakeup: the ready descriptors first, lowest `order` first (phalanxd reads its
// control socket before its packet ring), the timer last. A member that wakes from a pause
// (SIGSTOP, a starved VM) must read what its peers said meanwhile before a watchdog judges
// their silence (issue 9, part 5). A wakeup later than `stall threshold` past the deadline the
// loop was armed for is a stall: the loop reports it, then serves the descriptors until none is
// ready (bounded), and only then runs the timer.
#pragma once

#include <sys/epoll.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/error.hpp"
#include "runtime/unique_fd.hpp"

namespace phalanx::runtime {

class EventLoop {
 public:
  using FdHandler = std::function<void(std::uint32_t events)>;
  using TimerHandler = std::function<void(Time now)>;
  using SignalHandler = std::function<void(int signo)>;
  // `late`: how long past the armed deadline the loop woke, or how long the clock jumped while a
  // wakeup was served (the process was stopped in the middle of it).
  using StallHandler = std::function<void(Time now, Time late)>;

  // Rounds of serving ready descriptors after a stall before the timer runs regardless.
  static constexpr int kCatchUpRounds = 256;

  // Fails when epoll, timerfd or signalfd cannot be created.
  static Result<std::unique_ptr<EventLoop>> create(const MonotonicClock& clock);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `handler` with the epoll events whenever `fd` is ready for `events` (level-triggered).
  // Within one wakeup, lower `order` is served first. Fails when epoll refuses the descriptor
  // (already watched, closed).
  Status watch(int fd, std::uint32_t events, FdHandler handler, int order = 0);
  void unwatch(int fd);

  // The timer: `handler` runs once the clock passes `deadline`; kNever-like values
  // (Time::max()) disarm it. Setting a new deadline replaces the old one.
  void set_timer_handler(TimerHandler handler) { on_timer_ = std::move(handler); }
  void set_deadline(Time deadline);
  Time deadline() const { return deadline_; }

  void set_signal_handler(SignalHandler handler) { on_signal_ = std::move(handler); }

  // Reports wakeups more than `threshold` late (see the top of this file). Unset: none.
  void set_stall_handler(Time threshold, StallHandler handler) {
    stall_threshold_ = threshold;
    on_stall_ = std::move(handler);
  }
  std::uint64_t stalls() const { return stalls_; }

  // Runs until stop(). Fails only when epoll_wait fails for a reason other than EINTR.
  Status run();
  void stop() { running_ = false; }

  const MonotonicClock& clock() const { return clock_; }

 private:
  explicit EventLoop(const MonotonicClock& clock) : clock_(clock) {}
  // Runs the timer handler at `now` when the deadline has passed by then.
  void run_timer_if_due(Time now);
  void report_stall(Time now, Time late);
  void on_signalfd();
  // Serves the ready descriptors of `events` by order; false when there were none (the timer's
  // own readiness does not count).
  bool dispatch(const epoll_event* events, int n);

  const MonotonicClock& clock_;
  UniqueFd epoll_;
  UniqueFd timer_;
  UniqueFd signal_;
  sigset_t old_mask_{};
  bool mask_saved_ = false;
  struct Watched {
    FdHandler handler;
    int order = 0;
  };
  std::unordered_map<int, Watched> handlers_;
  std::vector<std::pair<int, int>> ready_;  // (order, fd) of one wakeup
  Time stall_threshold_ = Time::max();
  StallHandler on_stall_;
  std::uint64_t stalls_ = 0;
  TimerHandler on_timer_;
  SignalHandler on_signal_;
  Time deadline_ = Time::max();
  bool running_ = false;
};

}  // namespace phalanx::runtime
