// Fuzz target for the cluster control-message decoder (DESIGN §7: every decoder is fuzzed).
// Any input must decode or be rejected without a crash; whatever decodes must re-encode to the
// very same bytes (the format has one encoding per message) and decode again to the same message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <variant>
#include <vector>

#include "cluster/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace phalanx::cluster;
  const NullAuthenticator auth;
  const phalanx::wire::Bytes input(reinterpret_cast<const std::byte*>(data), size);

  auto first = decode(input, auth);
  const auto* m = std::get_if<Message>(&first);
  if (m == nullptr) {
    return 0;
  }
  const std::vector<std::byte> again = encode(*m, auth);
  if (again.size() != input.size() || !std::equal(again.begin(), again.end(), input.begin())) {
    std::fprintf(stderr, "messages_fuzz: re-encoding differs from the input\n");
    std::abort();
  }
  auto second = decode(phalanx::wire::Bytes(again), auth);
  const auto* m2 = std::get_if<Message>(&second);
  if (m2 == nullptr || !(*m2 == *m)) {
    std::fprintf(stderr, "messages_fuzz: decode(encode(m)) differs from m\n");
    std::abort();
  }
  return 0;
}
