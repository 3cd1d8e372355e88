#include "stack/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace phalanx::stack {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<std::uint32_t> expire(TimerWheel& w, Time now) {
  std::vector<std::uint32_t> fired;
  w.expire(now, [&](std::uint32_t id) {
    fired.push_back(id);
    return true;
  });
  std::ranges::sort(fired);
  return fired;
}

TEST(TimerWheel, FiresAtTheDeadlineNotBefore) {
  TimerWheel w(8);
  w.schedule(1, milliseconds(10) + std::chrono::microseconds(300));
  EXPECT_EQ(w.next_deadline(), milliseconds(10) + std::chrono::microseconds(300));
  EXPECT_TRUE(expire(w, milliseconds(10)).empty());
  EXPECT_EQ(w.next_deadline(), milliseconds(10) + std::chrono::microseconds(300));
  EXPECT_EQ(expire(w, milliseconds(11)), std::vector<std::uint32_t>{1});
  EXPECT_EQ(w.next_deadline(), kNever);
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, RescheduleAndCancel) {
  TimerWheel w(8);
  w.schedule(1, milliseconds(5));
  w.schedule(2, milliseconds(7));
  w.schedule(1, milliseconds(9));  // moved
  w.cancel(2);
  EXPECT_EQ(w.next_deadline(), milliseconds(9));
  EXPECT_TRUE(expire(w, milliseconds(8)).empty());
  EXPECT_EQ(expire(w, milliseconds(9)), std::vector<std::uint32_t>{1});
}

TEST(TimerWheel, DeadlinesBeyondOneTurnWaitForTheirTurn) {
  TimerWheel w(8, milliseconds(1), 64);  // one turn: 64 ms
  w.schedule(3, milliseconds(200));
  w.schedule(4, milliseconds(10));
  EXPECT_EQ(w.next_deadline(), milliseconds(10));
  EXPECT_EQ(expire(w, milliseconds(10)), std::vector<std::uint32_t>{4});
  // Early wake-ups are allowed, but never late, and nothing fires before its time.
  Time t = milliseconds(10);
  int wakes = 0;
  while (true) {
    const Time next = w.next_deadline();
    ASSERT_LE(next, milliseconds(200));
    ASSERT_GT(next, t - milliseconds(1));
    t = next;
    ++wakes;
    const auto fired = expire(w, t);
    if (!fired.empty()) {
      EXPECT_EQ(fired, std::vector<std::uint32_t>{3});
      EXPECT_EQ(t, milliseconds(200));
      break;
    }
  }
  EXPECT_LE(wakes, 5);
}

TEST(TimerWheel, PastDeadlinesFireOnTheNextExpire) {
  TimerWheel w(8);
  expire(w, seconds(5));
  w.schedule(0, seconds(1));
  EXPECT_LE(w.next_deadline(), seconds(5));
  EXPECT_EQ(expire(w, seconds(5)), std::vector<std::uint32_t>{0});
}

TEST(TimerWheel, StoppingEarlyKeepsTheRestDue) {
  TimerWheel w(8);
  for (std::uint32_t i = 0; i < 4; ++i) {
    w.schedule(i, milliseconds(3));
  }
  // The first id is handled, the second declined: it and the two after it stay due.
  int calls = 0;
  EXPECT_FALSE(w.expire(milliseconds(3), [&](std::uint32_t) { return ++calls == 1; }));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(w.size(), 3u);
  EXPECT_LE(w.next_deadline(), milliseconds(3));
  EXPECT_EQ(expire(w, milliseconds(3)).size(), 3u);
}

TEST(TimerWheel, ExpireIsProportionalToWhatIsDue) {
  // 10,000 timers spread over a minute; advancing 1 ms at a time touches only the due ones.
  TimerWheel w(10000);
  for (std::uint32_t i = 0; i < 10000; ++i) {
    w.schedule(i, milliseconds(1000 + i * 6));
  }
  std::size_t fired = 0;
  for (Time t = milliseconds(1000); t <= milliseconds(1000 + 60000); t += milliseconds(1)) {
    fired += expire(w, t).size();
  }
  EXPECT_EQ(fired, 10000u);
}

}  // namespace
}  // namespace phalanx::stack
