#include "wire/checksum.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "testutil.hpp"

namespace phalanx::wire {
namespace {

using test::hex;
using test::span;

// A fixed, tiny generator (SplitMix64) so that the random cases are the same on every machine
// and library version (STYLE 9).
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(next()); }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t s_;
};

// The echo request of tests/unit/wire/ipv4_test.cpp's capture: IPv4 header only, checksum a7d3.
const auto kIpv4Header =
    hex("4500 0054 f2ad 4000 4001 a7d3 c612 0a02 "
        "c612 0a01");

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0x2ddf0, folded 0xddf2.
  const auto data = hex("0001 f203 f4f5 f6f7");
  EXPECT_EQ(checksum::sum(span(data)), 0xddf2);
  EXPECT_EQ(checksum::compute(span(data)), 0x220d);
}

TEST(Checksum, OddLengthPadsWithZeroByte) {
  // 0001 + f203 + f4f5 + f600 = 0x2dcf9, folded 0xdcfb.
  const auto odd = hex("0001 f203 f4f5 f6");
  EXPECT_EQ(checksum::sum(span(odd)), 0xdcfb);
  const auto padded = hex("0001 f203 f4f5 f600");
  EXPECT_EQ(checksum::sum(span(odd)), checksum::sum(span(padded)));
  EXPECT_EQ(checksum::sum(span(hex("01"))), 0x0100);
}

TEST(Checksum, EmptyAndInitial) {
  EXPECT_EQ(checksum::sum({}), 0);
  EXPECT_EQ(checksum::compute({}), 0xffff);
  // The initial value is folded in like another word, carries included.
  EXPECT_EQ(checksum::sum(span(hex("ffff")), 0x0001), 0x0001);
}

TEST(Checksum, CapturedIpv4HeaderVerifiesAndRecomputes) {
  EXPECT_TRUE(checksum::verify(span(kIpv4Header)));
  auto zeroed = kIpv4Header;
  zeroed[10] = zeroed[11] = std::byte{0};
  EXPECT_EQ(checksum::compute(span(zeroed)), 0xa7d3);
  auto corrupt = kIpv4Header;
  corrupt[8] = std::byte{0x3f};  // TTL 64 -> 63 without fixing the checksum
  EXPECT_FALSE(checksum::verify(span(corrupt)));
}

TEST(Checksum, PseudoHeaderOfCapturedUdp) {
  // `echo hi > /dev/udp/198.18.10.1/9` from 198.18.10.2 in a veth namespace pair, captured with
  // tcpdump -xx after `ethtool -K <veth> tx off`: the UDP header and payload (length 11,
  // checksum 424e).
  const auto udp = hex("aaef 0009 000b 424e 6869 0a");
  const auto ph = checksum::pseudo_header(Ipv4Addr(198, 18, 10, 2), Ipv4Addr(198, 18, 10, 1), 17,
                                          static_cast<std::uint16_t>(udp.size()));
  EXPECT_TRUE(checksum::verify(span(udp), ph));
  auto zeroed = udp;
  zeroed[6] = zeroed[7] = std::byte{0};
  EXPECT_EQ(checksum::compute(span(zeroed), ph), 0x424e);
  // The addresses matter: the same segment to another host does not verify.
  EXPECT_FALSE(checksum::verify(
      span(udp), checksum::pseudo_header(Ipv4Addr(198, 18, 10, 2), Ipv4Addr(198, 18, 10, 3), 17,
                                         static_cast<std::uint16_t>(udp.size()))));
}

TEST(Checksum, VethLeavesOnlyThePseudoHeaderSum) {
  // The same datagram captured with tx checksum offload on (veth's default): the kernel left
  // CHECKSUM_PARTIAL, i.e. the folded pseudo-header sum, uncomplemented, for hardware that
  // never comes. Captures of TCP/UDP from veth need `ethtool -K ... tx off` to be real.
  const auto udp = hex("e970 0009 000b a044 6869 0a");
  const auto ph = checksum::pseudo_header(Ipv4Addr(198, 18, 10, 2), Ipv4Addr(198, 18, 10, 1), 17,
                                          static_cast<std::uint16_t>(udp.size()));
  EXPECT_EQ(read_u16(udp, 6), checksum::sum({}, ph));  // sum() folds it to 16 bits
  EXPECT_FALSE(checksum::verify(span(udp), ph));
}

TEST(Checksum, Rfc1624Example) {
  // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000 (RFC 1141's form gave the
  // wrong 0xffff).
  EXPECT_EQ(checksum::update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

// RFC 1071 summed the plain way, one big-endian word at a time: the reference sum() must match.
std::uint16_t reference_sum(const std::vector<std::byte>& data, std::uint32_t initial) {
  std::uint64_t s = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) {
    s += read_u16(data, i);
  }
  if (i < data.size()) {
    s += std::uint32_t{read_u8(data, i)} << 8;
  }
  while (s >> 16) {
    s = (s & 0xffff) + (s >> 16);
  }
  return static_cast<std::uint16_t>(s);
}

TEST(Checksum, SumAgreesWithWordByWordReference) {
  // Every length up to a jumbo frame, every start alignment, random and all-ones/all-zero
  // contents, random initial values (the folded pseudo-header sum and beyond).
  SplitMix64 rng(0x5eed0004);
  std::vector<std::byte> buffer(9100);
  for (int i = 0; i < 20000; ++i) {
    const std::size_t len = i < 2000 ? static_cast<std::size_t>(i) : rng.below(9001);
    const std::size_t start = rng.below(8);
    const std::size_t fill = rng.below(4);
    for (std::size_t k = 0; k < start + len; ++k) {
      const auto r = static_cast<std::uint8_t>(rng.next());
      buffer[k] = std::byte{fill == 0 ? std::uint8_t{0xff} : fill == 1 ? std::uint8_t{0} : r};
    }
    const std::vector<std::byte> data(buffer.begin() + static_cast<std::ptrdiff_t>(start),
                                      buffer.begin() + static_cast<std::ptrdiff_t>(start + len));
    const std::uint32_t initial = rng.below(3) == 0 ? 0u : static_cast<std::uint32_t>(rng.next());
    ASSERT_EQ(checksum::sum(Bytes(buffer.data() + start, len), initial),
              reference_sum(data, initial))
        << "iteration " << i << " length " << len << " start " << start;
  }
}

// Sets the 16-bit word at `off`, returns the old value.
std::uint16_t set16(std::vector<std::byte>& b, std::size_t off, std::uint16_t v) {
  const std::uint16_t old = read_u16(b, off);
  write_u16(b, off, v);
  return old;
}

// The checksum field (offset 10, as in IPv4) recomputed from scratch.
std::uint16_t full(std::vector<std::byte> b) {
  write_u16(b, 10, 0);
  return checksum::compute(span(b));
}

// Random 20-byte headers whose first word stays non-zero (as IPv4's version does): then the
// incremental and the full checksum must agree exactly, 0x0000 included.
std::vector<std::byte> random_header(SplitMix64& rng) {
  std::vector<std::byte> b(20);
  for (std::size_t off = 0; off < b.size(); off += 2) {
    write_u16(b, off, rng.u16());
  }
  write_u16(b, 0, static_cast<std::uint16_t>(0x4500 | (rng.u16() & 0xff)));
  write_u16(b, 10, full(b));
  return b;
}

// A new value for a word: often one of the one's-complement corners.
std::uint16_t pick_value(SplitMix64& rng) {
  switch (rng.below(4)) {
    case 0:
      return 0x0000;
    case 1:
      return 0xffff;
    default:
      return rng.u16();
  }
}

TEST(Checksum, Update16AgreesWithFullRecomputation) {
  SplitMix64 rng(0x5eed0001);
  for (int i = 0; i < 200000; ++i) {
    auto b = random_header(rng);
    std::size_t off = 2 * rng.below(10);
    if (off == 0 || off == 10) {
      off = 12;  // keep the version word and the checksum field itself
    }
    const std::uint16_t old_sum = read_u16(b, 10);
    const std::uint16_t old_field = set16(b, off, pick_value(rng));
    ASSERT_EQ(checksum::update16(old_sum, old_field, read_u16(b, off)), full(b))
        << "iteration " << i << " offset " << off;
  }
}

TEST(Checksum, Update32AgreesWithFullRecomputation) {
  SplitMix64 rng(0x5eed0002);
  for (int i = 0; i < 200000; ++i) {
    auto b = random_header(rng);
    const std::size_t off = rng.below(2) == 0 ? 12 : 16;  // an address
    const std::uint32_t old_field = read_u32(b, off);
    const std::uint32_t new_field =
        (std::uint32_t{pick_value(rng)} << 16) | std::uint32_t{pick_value(rng)};
    const std::uint16_t old_sum = read_u16(b, 10);
    write_u32(b, off, new_field);
    ASSERT_EQ(checksum::update32(old_sum, old_field, new_field), full(b)) << "iteration " << i;
  }
}

TEST(Checksum, UpdateToAChecksumOfZero) {
  // Choose the new field so that the header sums to 0xffff: the checksum must become 0x0000,
  // never 0xffff (the "-0" of RFC 1624 §3), exactly as a full recomputation says.
  SplitMix64 rng(0x5eed0003);
  for (int i = 0; i < 1000; ++i) {
    auto b = random_header(rng);
    const std::uint16_t old_sum = read_u16(b, 10);
    const std::uint16_t old_field = set16(b, 12, 0);
    write_u16(b, 10, 0);
    const std::uint16_t others = checksum::sum(span(b));  // every word but field and checksum
    const auto new_field = static_cast<std::uint16_t>(0xffff - others);
    write_u16(b, 12, new_field);
    ASSERT_EQ(full(b), 0x0000) << i;
    ASSERT_EQ(checksum::update16(old_sum, old_field, new_field), 0x0000) << i;
  }
}

TEST(Checksum, UpdateFromAllZeroData) {
  // All-zero data has the checksum 0xffff; changing one word from 0 to x gives ~x both ways.
  std::vector<std::byte> b(20);
  write_u16(b, 10, full(b));
  ASSERT_EQ(read_u16(b, 10), 0xffff);
  for (std::uint16_t x : {0x0001, 0x4500, 0xfffe, 0xffff}) {
    auto c = b;
    write_u16(c, 4, x);
    EXPECT_EQ(checksum::update16(0xffff, 0x0000, x), full(c)) << x;
  }
}

TEST(Checksum, UpdateToAllZeroDataIsTheOneDisagreement) {
  // RFC 1624 §3: an incremental update can never yield 0xffff, which only all-zero data has.
  // So when an update makes the data all zeros the result (0x0000) does not verify. IPv4
  // headers (version 4) and TCP/UDP (the protocol in the pseudo-header) cannot be all zeros,
  // but an ICMP echo reply with identifier 0, sequence 0 and no data is: build such replies
  // with a full checksum (IcmpEchoRepr::emit), not by patching the request's type.
  std::vector<std::byte> request(8);
  write_u16(request, 0, 0x0800);  // echo request, code 0, id 0, seq 0, no data
  const std::uint16_t request_sum = checksum::compute(span(request));
  EXPECT_EQ(request_sum, 0xf7ff);
  std::vector<std::byte> reply(8);  // type 0: every byte zero
  EXPECT_EQ(checksum::compute(span(reply)), 0xffff);
  EXPECT_EQ(checksum::update16(request_sum, 0x0800, 0x0000), 0x0000);
}

}  // namespace
}  // namespace phalanx::wire
