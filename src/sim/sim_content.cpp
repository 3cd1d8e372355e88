#include "sim/sim_content.hpp"

#include <fmt/format.h>

#include <charconv>

#include "wire/mix.hpp"

namespace phalanx::sim {

namespace {

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ull;

std::uint64_t word(std::uint64_t key, std::uint64_t index) {
  return wire::fmix64(key ^ wire::fmix64(index * kGolden + 1));
}

class GeneratedFile final : public apps::File {
 public:
  GeneratedFile(std::uint64_t key, std::uint64_t size, std::optional<std::uint64_t> corrupt_at)
      : key_(key), size_(size), corrupt_at_(corrupt_at) {}
  std::uint64_t size() const override { return size_; }
  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= size_) {
      return 0;
    }
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - offset));
    fill_content(key_, offset, out.first(n));
    if (corrupt_at_ && *corrupt_at_ >= offset && *corrupt_at_ < offset + n) {
      out[*corrupt_at_ - offset] ^= std::byte{0x01};
    }
    return n;
  }

 private:
  std::uint64_t key_;
  std::uint64_t size_;
  std::optional<std::uint64_t> corrupt_at_;
};

}  // namespace

std::byte content_byte(std::uint64_t key, std::uint64_t offset) {
  return static_cast<std::byte>(word(key, offset >> 3) >> ((offset & 7) * 8));
}

void fill_content(std::uint64_t key, std::uint64_t offset, std::span<std::byte> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t at = offset + i;
    const std::uint64_t w = word(key, at >> 3);
    for (std::uint64_t b = at & 7; b < 8 && i < out.size(); ++b, ++i) {
      out[i] = static_cast<std::byte>(w >> (b * 8));
    }
  }
}

std::uint64_t file_key(std::size_t index) {
  return wire::fmix64(0xf11e0000ull + index);
}

std::string file_path(std::size_t index) {
  return fmt::format("f{}", index);
}

std::uint64_t echo_key(std::uint64_t seed) {
  return wire::fmix64(0xec40000000000000ull ^ seed);
}

apps::Opened GeneratedFileSource::open(std::string_view path) {
  apps::Opened o;
  if (path.empty()) {
    o.status = apps::FileStatus::is_directory;
    return o;
  }
  std::size_t index = 0;
  if (path.size() < 2 || path[0] != 'f') {
    return o;
  }
  const auto [end, ec] = std::from_chars(path.data() + 1, path.data() + path.size(), index);
  if (ec != std::errc{} || end != path.data() + path.size() || index >= sizes_.size()) {
    return o;
  }
  o.status = apps::FileStatus::ok;
  o.file = std::make_unique<GeneratedFile>(file_key(index), sizes_[index], corrupt_at_);
  return o;
}

}  // namespace phalanx::sim
