// EventLoop: one thread's epoll loop. It watches descriptors, keeps one timerfd armed at the
// earliest deadline it was given, and turns SIGTERM, SIGINT and SIGHUP into callbacks through a
// signalfd (the constructor blocks those signals in the calling thread, so create the loop
// before any other thread).
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "runtime/clock.hpp"
#include "runtime/error.hpp"
#include "runtime/unique_fd.hpp"

namespace phalanx::runtime {

class EventLoop {
 public:
  using FdHandler = std::function<void(std::uint32_t events)>;
  using TimerHandler = std::function<void(Time now)>;
  using SignalHandler = std::function<void(int signo)>;

  // Fails when epoll, timerfd or signalfd cannot be created.
  static Result<std::unique_ptr<EventLoop>> create(const MonotonicClock& clock);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `handler` with the epoll events whenever `fd` is ready for `events` (level-triggered).
  // Fails when epoll refuses the descriptor (already watched, closed).
  Status watch(int fd, std::uint32_t events, FdHandler handler);
  void unwatch(int fd);

  // The timer: `handler` runs once the clock passes `deadline`; kNever-like values
  // (Time::max()) disarm it. Setting a new deadline replaces the old one.
  void set_timer_handler(TimerHandler handler) { on_timer_ = std::move(handler); }
  void set_deadline(Time deadline);
  Time deadline() const { return deadline_; }

  void set_signal_handler(SignalHandler handler) { on_signal_ = std::move(handler); }

  // Runs until stop(). Fails only when epoll_wait fails for a reason other than EINTR.
  Status run();
  void stop() { running_ = false; }

  const MonotonicClock& clock() const { return clock_; }

 private:
  explicit EventLoop(const MonotonicClock& clock) : clock_(clock) {}
  void on_timerfd();
  void on_signalfd();

  const MonotonicClock& clock_;
  UniqueFd epoll_;
  UniqueFd timer_;
  UniqueFd signal_;
  sigset_t old_mask_{};
  bool mask_saved_ = false;
  std::unordered_map<int, FdHandler> handlers_;
  TimerHandler on_timer_;
  SignalHandler on_signal_;
  Time deadline_ = Time::max();
  bool running_ = false;
};

}  // namespace phalanx::runtime
