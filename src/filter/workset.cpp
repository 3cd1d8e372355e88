// Compile-time checks of the hash definitions in workset.hpp: if one of these fails, members
// built from different revisions would disagree about who owns a packet.
#include "filter/workset.hpp"

namespace phalanx::filter {
namespace {

// fold10 XORs the slices 0-9, 10-19, 20-29, 30-31.
static_assert(fold10(0) == 0);
static_assert(fold10(0x3ff) == 0x3ff);
static_assert(fold10(0x3ffu << 10) == 0x3ff);
static_assert(fold10(0x3ffu << 20) == 0x3ff);
static_assert(fold10(0x3u << 30) == 0x3);
static_assert(fold10(0xffffffffu) == (0x3ff ^ 0x3ff ^ 0x3ff ^ 0x3));
// 198.18.0.1 = 0xc6120001, port 40000 = 0x9c40: key 0xc6129c41;
// slices 0x041, 0x0a7, 0x061, 0x3 -> 0x041 ^ 0x0a7 ^ 0x061 ^ 0x003 = 0x084.
static_assert(hash_xor(FlowKey{0xc6120001u, 40000, 0}).value() == 0x084);

// The mixer is seeded: the same key moves with the seed.
static_assert(hash_mix(FlowKey{0xc6120001u, 40000, 0}, 1).value() !=
                  hash_mix(FlowKey{0xc6120001u, 40000, 0}, 2).value() ||
              hash_mix(FlowKey{0xc6120001u, 40001, 0}, 1).value() !=
                  hash_mix(FlowKey{0xc6120001u, 40001, 0}, 2).value());

static_assert(hash_kind_from_string("xor") == HashKind::xor_fold);
static_assert(hash_kind_from_string("mix") == HashKind::mix);
static_assert(!hash_kind_from_string("crc"));
static_assert(!WorksetId::from_wire(1024));
static_assert(WorksetId::from_wire(1023)->value() == 1023);

}  // namespace
}  // namespace phalanx::filter
