// Typed, checked reading of a TOML table for the config loader. Every getter records its key as
// known and every problem as "source:line:column: dotted.key: message"; finish() then reports
// the keys nobody asked for. Getters return nullopt when the key is absent or wrong (wrong is
// already reported), so callers keep their defaults and carry on to find the next problem.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "wire/addr.hpp"

namespace phalanx::runtime {

class ErrorList {
 public:
  explicit ErrorList(std::string source) : source_(std::move(source)) {}
  void add(const toml::source_region& where, std::string_view key, std::string_view message);
  void add(std::string_view key, std::string_view message);  // no position known
  bool empty() const { return lines_.empty(); }
  std::string joined() const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<std::string> lines_;
};

class TomlSection {
 public:
  // `table` may be null: the section is absent, every getter returns nullopt (and `required`
  // ones report the key missing).
  TomlSection(ErrorList& errors, const toml::table* table, std::string path);

  bool present() const { return table_ != nullptr; }
  const std::string& path() const { return path_; }

  std::optional<std::string> string(std::string_view key, bool required = false);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max,
                                      bool required = false);
  std::optional<std::vector<std::int64_t>> integers(std::string_view key, std::int64_t min,
                                                    std::int64_t max);
  std::optional<wire::Ipv4Addr> ipv4(std::string_view key, bool required = false);
  std::optional<wire::MacAddr> mac(std::string_view key, bool required = false);
  // A sub-table; absent gives a section that is not present.
  TomlSection table(std::string_view key);

  // Reports a problem with the value of `key` (at its position, or at the section's header when
  // the key is absent and its default is at fault), for checks across keys.
  void fail(std::string_view key, std::string_view message);

  // Reports every key of the table that no getter asked for.
  void finish();

 private:
  const toml::node* find(std::string_view key, bool required);
  std::string dotted(std::string_view key) const;

  ErrorList& errors_;
  const toml::table* table_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace phalanx::runtime
