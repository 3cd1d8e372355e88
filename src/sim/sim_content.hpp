// Deterministic content for the whole-member simulator: byte `offset` of stream `key` is a fixed
// function of (key, offset), so a TCP peer and a checker can verify every byte of a download or
// an echo without holding a copy, and a member's http application serves files that exist only
// as that function (GeneratedFileSource).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apps/file_source.hpp"

namespace phalanx::sim {

// Byte `offset` of stream `key`.
std::byte content_byte(std::uint64_t key, std::uint64_t offset);
// Bytes [offset, offset + out.size()) of stream `key`.
void fill_content(std::uint64_t key, std::uint64_t offset, std::span<std::byte> out);

// The stream key of file "f<index>" and its path as the http application sees it.
std::uint64_t file_key(std::size_t index);
std::string file_path(std::size_t index);
// The stream key of an echo stream: the peer sends it, the member must echo it back unchanged.
std::uint64_t echo_key(std::uint64_t seed);

// Files f0, f1, ... of the given sizes, their bytes given by content_byte(file_key(i), ...).
// The root is a directory holding them; anything else is not_found. `corrupt_at`: every file
// has the byte at that offset flipped (a fault for the checkers' self-test).
class GeneratedFileSource final : public apps::FileSource {
 public:
  explicit GeneratedFileSource(std::vector<std::uint64_t> sizes,
                               std::optional<std::uint64_t> corrupt_at = std::nullopt)
      : sizes_(std::move(sizes)), corrupt_at_(corrupt_at) {}
  apps::Opened open(std::string_view path) override;

 private:
  std::vector<std::uint64_t> sizes_;
  std::optional<std::uint64_t> corrupt_at_;
};

}  // namespace phalanx::sim
