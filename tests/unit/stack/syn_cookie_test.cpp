#include "stack/syn_cookie.hpp"

#include <gtest/gtest.h>

namespace phalanx::stack {
namespace {

using std::chrono::seconds;

const tcp::IsnSecret kSecret{{0x0123456789abcdefULL, 0xfedcba9876543210ULL}};
const tcp::FourTuple kTuple{wire::Ipv4Addr{198, 18, 0, 100}, 80, wire::Ipv4Addr{198, 18, 0, 1},
                            40000};

TEST(SynCookie, RoundTripsTheMss) {
  const Time now = seconds(1000);
  for (std::uint16_t mss : {536, 1300, 1440, 1460, 9000}) {
    const SynCookie c = make_syn_cookie(kSecret, kTuple, 12345, mss, now);
    EXPECT_LE(c.mss, std::max<std::uint16_t>(mss, 536));
    EXPECT_EQ(check_syn_cookie(kSecret, kTuple, 12345, c.iss, now), c.mss);
  }
}

TEST(SynCookie, RejectsOtherTuplesSequencesSecretsAndAge) {
  const Time now = seconds(1000);
  const SynCookie c = make_syn_cookie(kSecret, kTuple, 12345, 1460, now);
  tcp::FourTuple other = kTuple;
  other.remote_port = 40001;
  EXPECT_FALSE(check_syn_cookie(kSecret, other, 12345, c.iss, now));
  EXPECT_FALSE(check_syn_cookie(kSecret, kTuple, 12346, c.iss, now));
  EXPECT_FALSE(check_syn_cookie(tcp::IsnSecret{}, kTuple, 12345, c.iss, now));
  EXPECT_FALSE(check_syn_cookie(kSecret, kTuple, 12345, c.iss ^ 0x100, now));
  // Valid for at least two 64-second slots, not for four.
  EXPECT_TRUE(check_syn_cookie(kSecret, kTuple, 12345, c.iss, now + seconds(128)));
  EXPECT_FALSE(check_syn_cookie(kSecret, kTuple, 12345, c.iss, now + seconds(256)));
  // Not from the future.
  EXPECT_FALSE(check_syn_cookie(kSecret, kTuple, 12345, c.iss, now - seconds(64)));
}

TEST(SynCookie, TimestampCarriesWindowScaleAndSack) {
  const CookieOptions table[] = {
      {std::nullopt, false}, {std::nullopt, true}, {0, false}, {7, true}, {14, true},
  };
  for (const CookieOptions& o : table) {
    for (std::uint32_t ts_now : {0u, 63u, 64u, 1000u, 123456789u, 0xffffffffu}) {
      const std::uint32_t ts = cookie_tsval(ts_now, o);
      EXPECT_EQ(cookie_options(ts), o) << ts_now;
      // Never ahead of our clock, and at most one step of 64 behind it.
      const auto behind = static_cast<std::int32_t>(ts_now - ts);
      EXPECT_GE(behind, 0) << ts_now;
      EXPECT_LT(behind, 64) << ts_now;
    }
  }
  // A shift above 14 is used as 14 (RFC 7323 §2.3); 15 says "none".
  EXPECT_EQ(cookie_tsval(1024, CookieOptions{15, false}) & 0xf, 14u);
  EXPECT_EQ(cookie_options(0x0f).window_scale, std::nullopt);
  EXPECT_EQ(cookie_options(0x1f).sack_permitted, true);
}

}  // namespace
}  // namespace phalanx::stack
