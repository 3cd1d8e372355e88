#include "runtime/toml_reader.hpp"

#include <fmt/format.h>

namespace phalanx::runtime {

namespace {

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

}  // namespace

void ErrorList::add(const toml::source_region& where, std::string_view key,
                    std::string_view message) {
  lines_.push_back(
      fmt::format("{}:{}:{}: {}: {}", source_, where.begin.line, where.begin.column, key, message));
}

void ErrorList::add(std::string_view key, std::string_view message) {
  lines_.push_back(fmt::format("{}: {}: {}", source_, key, message));
}

std::string ErrorList::joined() const {
  std::string out;
  for (const auto& l : lines_) {
    if (!out.empty()) {
      out += '\n';
    }
    out += l;
  }
  return out;
}

TomlSection::TomlSection(ErrorList& errors, const toml::table* table, std::string path)
    : errors_(errors), table_(table), path_(std::move(path)) {}

std::string TomlSection::dotted(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

const toml::node* TomlSection::find(std::string_view key, bool required) {
  known_.emplace(key);
  const toml::node* node = table_ != nullptr ? table_->get(key) : nullptr;
  if (node == nullptr && required) {
    if (table_ != nullptr && table_->source().begin.line != 0) {
      errors_.add(table_->source(), dotted(key), "missing (required)");
    } else {
      errors_.add(dotted(key), "missing (required)");
    }
  }
  return node;
}

void TomlSection::fail(std::string_view key, std::string_view message) {
  const toml::node* node = table_ != nullptr ? table_->get(key) : nullptr;
  if (node != nullptr) {
    errors_.add(node->source(), dotted(key), message);
  } else if (table_ != nullptr && table_->source().begin.line != 0) {
    errors_.add(table_->source(), dotted(key), message);  // a default: point at the section
  } else {
    errors_.add(dotted(key), message);
  }
}

std::optional<std::string> TomlSection::string(std::string_view key, bool required) {
  const toml::node* node = find(key, required);
  if (node == nullptr) {
    return std::nullopt;
  }
  if (const auto* v = node->as_string()) {
    return v->get();
  }
  errors_.add(node->source(), dotted(key),
              fmt::format("expected a string, got {}", type_name(*node)));
  return std::nullopt;
}

std::optional<bool> TomlSection::boolean(std::string_view key) {
  const toml::node* node = find(key, false);
  if (node == nullptr) {
    return std::nullopt;
  }
  if (const auto* v = node->as_boolean()) {
    return v->get();
  }
  errors_.add(node->source(), dotted(key),
              fmt::format("expected a boolean, got {}", type_name(*node)));
  return std::nullopt;
}

namespace {

std::optional<std::int64_t> checked_integer(ErrorList& errors, const toml::node& node,
                                            const std::string& key, std::int64_t min,
                                            std::int64_t max) {
  const auto* v = node.as_integer();
  if (v == nullptr) {
    errors.add(node.source(), key, fmt::format("expected an integer, got {}", type_name(node)));
    return std::nullopt;
  }
  if (v->get() < min || v->get() > max) {
    errors.add(node.source(), key, fmt::format("{} is out of range [{}, {}]", v->get(), min, max));
    return std::nullopt;
  }
  return v->get();
}

}  // namespace

std::optional<std::int64_t> TomlSection::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max, bool required) {
  const toml::node* node = find(key, required);
  if (node == nullptr) {
    return std::nullopt;
  }
  return checked_integer(errors_, *node, dotted(key), min, max);
}

std::optional<std::vector<std::int64_t>> TomlSection::integers(std::string_view key,
                                                               std::int64_t min, std::int64_t max) {
  const toml::node* node = find(key, false);
  if (node == nullptr) {
    return std::nullopt;
  }
  const auto* array = node->as_array();
  if (array == nullptr) {
    errors_.add(node->source(), dotted(key),
                fmt::format("expected an array of integers, got {}", type_name(*node)));
    return std::nullopt;
  }
  std::vector<std::int64_t> out;
  bool ok = true;
  for (const toml::node& element : *array) {
    if (auto v = checked_integer(errors_, element, dotted(key), min, max)) {
      out.push_back(*v);
    } else {
      ok = false;
    }
  }
  return ok ? std::optional(std::move(out)) : std::nullopt;
}

std::optional<wire::Ipv4Addr> TomlSection::ipv4(std::string_view key, bool required) {
  auto text = string(key, required);
  if (!text) {
    return std::nullopt;
  }
  auto addr = wire::Ipv4Addr::from_string(*text);
  if (!addr) {
    fail(key, fmt::format("\"{}\" is not an IPv4 address (a.b.c.d)", *text));
  }
  return addr;
}

std::optional<wire::MacAddr> TomlSection::mac(std::string_view key, bool required) {
  auto text = string(key, required);
  if (!text) {
    return std::nullopt;
  }
  auto addr = wire::MacAddr::from_string(*text);
  if (!addr) {
    fail(key, fmt::format("\"{}\" is not a MAC address (aa:bb:cc:dd:ee:ff)", *text));
  }
  return addr;
}

TomlSection TomlSection::table(std::string_view key) {
  const toml::node* node = find(key, false);
  if (node == nullptr) {
    return TomlSection(errors_, nullptr, dotted(key));
  }
  if (const auto* t = node->as_table()) {
    return TomlSection(errors_, t, dotted(key));
  }
  errors_.add(node->source(), dotted(key),
              fmt::format("expected a table, got {}", type_name(*node)));
  return TomlSection(errors_, nullptr, dotted(key));
}

void TomlSection::finish() {
  if (table_ == nullptr) {
    return;
  }
  for (auto&& [k, v] : *table_) {
    if (!known_.contains(k.str())) {
      errors_.add(k.source(), dotted(k.str()), "unknown key");
    }
  }
}

}  // namespace phalanx::runtime
