#include "wire/addr.hpp"

#include <gtest/gtest.h>

namespace phalanx::wire {
namespace {

TEST(Ipv4Addr, ParsesAndFormatsDottedQuad) {
  auto a = Ipv4Addr::from_string("198.18.0.1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->value(), 0xc6120001u);
  EXPECT_EQ(a->to_string(), "198.18.0.1");
  EXPECT_EQ(*a, Ipv4Addr(198, 18, 0, 1));
}

TEST(Ipv4Addr, RejectsMalformedText) {
  for (const char* s : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d", "1.2.3.4 ",
                        " 1.2.3.4", "1.2.3.-4", "0001.2.3.4"}) {
    EXPECT_FALSE(Ipv4Addr::from_string(s)) << s;
  }
}

TEST(MacAddr, ParsesAndFormats) {
  auto m = MacAddr::from_string("02:00:5E:10:00:01");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->to_string(), "02:00:5e:10:00:01");
  EXPECT_TRUE(m->is_unicast());
  EXPECT_TRUE(MacAddr::from_string("01:00:5e:00:00:01")->is_multicast());
  EXPECT_TRUE(MacAddr::broadcast().is_broadcast());
}

TEST(MacAddr, RejectsMalformedText) {
  for (const char* s :
       {"", "02:00:5e:10:00", "02-00-5e-10-00-01", "02:00:5e:10:00:0g", "02:00:5e:10:00:011"}) {
    EXPECT_FALSE(MacAddr::from_string(s)) << s;
  }
}

}  // namespace
}  // namespace phalanx::wire
