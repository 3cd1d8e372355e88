#include "testutil.hpp"

#include <cstdio>
#include <cstdlib>

#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::test {

namespace {

int nibble(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

std::vector<std::byte> hex(std::string_view text) {
  std::vector<std::byte> out;
  int high = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == ':') {
      continue;
    }
    int n = nibble(c);
    if (n < 0) {
      std::fprintf(stderr, "bad hex digit '%c' in test literal\n", c);
      std::abort();
    }
    if (high < 0) {
      high = n;
    } else {
      out.push_back(std::byte(high << 4 | n));
      high = -1;
    }
  }
  if (high >= 0) {
    std::fprintf(stderr, "odd number of hex digits in test literal\n");
    std::abort();
  }
  return out;
}

std::vector<std::byte> offloadable_datagram(std::size_t payload, std::uint8_t flags) {
  std::vector<std::byte> data(payload);
  for (std::size_t i = 0; i < payload; ++i) {
    data[i] = std::byte(i * 7 + 3);
  }
  wire::TcpRepr t;
  t.src_port = 80;
  t.dst_port = 40000;
  t.seq = 0xfffff000;
  t.ack = 77;
  t.flags = flags;
  t.window = 1000;
  t.options.timestamps = wire::TcpTimestamps{5, 6};
  t.payload = data;
  wire::Ipv4Repr ip;
  ip.src = wire::Ipv4Addr(198, 18, 0, 1);
  ip.dst = wire::Ipv4Addr(198, 18, 0, 2);
  ip.protocol = wire::ipproto::kTcp;
  ip.ttl = 64;
  ip.ident = 0xfffe;
  ip.dont_fragment = true;
  ip.payload_len = static_cast<std::uint16_t>(t.size());
  std::vector<std::byte> d(wire::Ipv4View::kMinHeaderSize + t.size());
  ip.emit(d);
  t.emit(wire::MutBytes(d).subspan(wire::Ipv4View::kMinHeaderSize), ip.src, ip.dst,
         wire::TcpRepr::Checksum::partial);
  return d;
}

}  // namespace phalanx::test
