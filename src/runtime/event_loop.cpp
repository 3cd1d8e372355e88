#include "runtime/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <vector>

namespace phalanx::runtime {

Result<std::unique_ptr<EventLoop>> EventLoop::create(const MonotonicClock& clock) {
  std::unique_ptr<EventLoop> loop(new EventLoop(clock));
  loop->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_.valid()) {
    return errno_error("epoll_create1");
  }
  // steady_clock is CLOCK_MONOTONIC in libstdc++, so deadlines convert without drift.
  loop->timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!loop->timer_.valid()) {
    return errno_error("timerfd_create");
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &mask, &loop->old_mask_) != 0) {
    return Error{"pthread_sigmask failed"};
  }
  loop->mask_saved_ = true;
  loop->signal_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!loop->signal_.valid()) {
    return errno_error("signalfd");
  }
  EventLoop* self = loop.get();
  // The timer's readiness only wakes the loop; run() runs the handler after the descriptors.
  if (auto s = loop->watch(loop->timer_.get(), EPOLLIN, [](std::uint32_t) {}); !s) {
    return s.error();
  }
  if (auto s =
          loop->watch(loop->signal_.get(), EPOLLIN, [self](std::uint32_t) { self->on_signalfd(); });
      !s) {
    return s.error();
  }
  return loop;
}

EventLoop::~EventLoop() {
  if (mask_saved_) {
    // Signals that arrived while blocked stay pending; the caller is exiting or a test is done.
    signal_.reset();
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
}

Status EventLoop::watch(int fd, std::uint32_t events, FdHandler handler, int order) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return errno_error("epoll_ctl(ADD)");
  }
  handlers_[fd] = Watched{std::move(handler), order};
  return Ok{};
}

void EventLoop::unwatch(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

void EventLoop::set_deadline(Time deadline) {
  deadline_ = deadline;
  itimerspec spec{};
  if (deadline != Time::max()) {
    const auto at = clock_.to_steady(deadline).time_since_epoch();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at).count();
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) {
      spec.it_value.tv_nsec = 1;  // all zero would disarm
    }
  }
  // An instant in the past fires at once. Re-arming resets the expiration count, so a timer
  // that fired for the old deadline does not also fire for the new one.
  ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EventLoop::run_timer_if_due(Time now) {
  if (deadline_ == Time::max() || now < deadline_) {
    return;
  }
  // Clear the timerfd's expiration (it may not have been read yet, or have been re-armed).
  std::uint64_t expirations = 0;
  (void)::read(timer_.get(), &expirations, sizeof(expirations));
  deadline_ = Time::max();
  if (on_timer_) {
    on_timer_(now);
  }
}

void EventLoop::report_stall(Time now, Time late) {
  ++stalls_;
  if (on_stall_) {
    on_stall_(now, late);
  }
}

void EventLoop::on_signalfd() {
  signalfd_siginfo info{};
  while (::read(signal_.get(), &info, sizeof(info)) == sizeof(info)) {
    if (on_signal_) {
      on_signal_(static_cast<int>(info.ssi_signo));
    }
  }
}

bool EventLoop::dispatch(const epoll_event* events, int n) {
  ready_.clear();
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == timer_.get()) {
      continue;
    }
    if (auto it = handlers_.find(fd); it != handlers_.end()) {
      ready_.emplace_back(it->second.order, i);
    }
  }
  std::stable_sort(ready_.begin(), ready_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  const bool any = !ready_.empty();
  for (std::size_t k = 0; k < ready_.size() && running_; ++k) {
    const epoll_event& ev = events[ready_[k].second];
    auto it = handlers_.find(ev.data.fd);
    if (it == handlers_.end()) {
      continue;  // unwatched by an earlier handler of this batch
    }
    // Copy: a handler may unwatch its own descriptor, destroying the stored function.
    FdHandler handler = it->second.handler;
    handler(ev.events);
  }
  return any;
}

Status EventLoop::run() {
  running_ = true;
  std::array<epoll_event, 64> events{};
  const int max_events = static_cast<int>(events.size());
  while (running_) {
    const int n = ::epoll_wait(epoll_.get(), events.data(), max_events, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_error("epoll_wait");
    }
    const Time woke = clock_.now();
    bool stalled =
        deadline_ != Time::max() && woke > deadline_ && woke - deadline_ > stall_threshold_;
    if (stalled) {
      report_stall(woke, woke - deadline_);
    }
    dispatch(events.data(), n);
    // A stop can land anywhere, also while this wakeup is served: time that jumped past the
    // threshold since the last look at the clock is a stall too. After a stall, read everything
    // that queued before any timer judges the silence of others; the timer then runs at the
    // time of the last look, so that it judges only what was read by then.
    Time now = woke;
    for (int round = 0; running_ && round < kCatchUpRounds; ++round) {
      const Time t = clock_.now();
      const bool stopped_meanwhile = t - now > stall_threshold_;
      if (stopped_meanwhile) {
        report_stall(t, t - now);
      }
      now = t;
      stalled = stalled || stopped_meanwhile;
      if (!stalled) {
        break;
      }
      const int more = ::epoll_wait(epoll_.get(), events.data(), max_events, 0);
      if (more <= 0 || !dispatch(events.data(), more)) {
        break;
      }
    }
    if (running_) {
      run_timer_if_due(now);
    }
  }
  return Ok{};
}

}  // namespace phalanx::runtime
