#include "neutrino/io/config_reader.h"

#include <cmath>

namespace neutrino::io {

using nlohmann::json;

namespace {
// The deepest bracket nesting in JSON text, outside strings; stops counting past `limit`.
int bracket_depth(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string format_number(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return json(d).dump();
}
}  // namespace

json parse_json(const std::string& text, const std::string& what) {
  NEUTRINO_CHECK_VALUE(bracket_depth(text, kMaxJsonDepth) <= kMaxJsonDepth,
                       "{}: nested deeper than {} levels", what, kMaxJsonDepth);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw ValueError(fmt::format("{}: not valid JSON: {}", what, e.what()));
  }
}

std::string describe(const json& value) {
  constexpr size_t kLongest = 80;
  if (value.is_number_float()) return format_number(value.get<double>());
  std::string text = value.dump();
  if (text.size() > kLongest) text = text.substr(0, kLongest) + "...";
  return text;
}

ConfigReader::ConfigReader(const json& value, std::string path)
    : object_(value.is_null() ? json::object() : value), path_(std::move(path)) {
  NEUTRINO_CHECK_VALUE(object_.is_object(), "{}{}expected a map of options, got {}", path_,
                       path_.empty() ? "" : ": ", describe(value));
}

const json& ConfigReader::at(const std::string& key) {
  read_.insert(key);
  return object_.at(key);
}

void ConfigReader::require(const std::string& key) const {
  NEUTRINO_CHECK_VALUE(has(key), "{}: missing required field", path_of(key));
}

void ConfigReader::wrong_type(const std::string& key, const char* expected) const {
  throw ValueError(fmt::format("{}: expected {}, got {}", path_of(key), expected,
                               describe(object_.at(key))));
}

int64_t ConfigReader::to_int(const std::string& key, const json& v, const char* expected,
                             int64_t min, int64_t max) const {
  int64_t out = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(kIntMax)) wrong_type(key, expected);
    out = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    out = v.get<int64_t>();
  } else if (v.is_number_float()) {
    // Integral, finite and inside int64 (2^63 itself is not): then the cast is exact.
    const double d = v.get<double>();
    if (!(std::floor(d) == d && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18)) {
      wrong_type(key, expected);
    }
    out = static_cast<int64_t>(d);
  } else {
    wrong_type(key, expected);
  }
  NEUTRINO_CHECK_VALUE(out >= min && out <= max, "{}: must be in [{}, {}], got {}", path_of(key),
                       min, max, out);
  return out;
}

int64_t ConfigReader::get_int(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  if (!has(key)) return fallback;
  return to_int(key, at(key), "an integer", min, max);
}

int64_t ConfigReader::require_int(const std::string& key, int64_t min, int64_t max) {
  require(key);
  return get_int(key, 0, min, max);
}

double ConfigReader::get_double(const std::string& key, double fallback, double min, double max) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>())) wrong_type(key, "a finite number");
  const double d = v.get<double>();
  NEUTRINO_CHECK_VALUE(d >= min && d <= max, "{}: must be in [{}, {}], got {}", path_of(key),
                       format_number(min), format_number(max), format_number(d));
  return d;
}

double ConfigReader::require_double(const std::string& key, double min, double max) {
  require(key);
  return get_double(key, 0, min, max);
}

bool ConfigReader::get_bool(const std::string& key, bool fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_boolean()) wrong_type(key, "true or false");
  return v.get<bool>();
}

bool ConfigReader::require_bool(const std::string& key) {
  require(key);
  return get_bool(key, false);
}

std::string ConfigReader::get_string(const std::string& key, const std::string& fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_string()) wrong_type(key, "a string");
  return v.get<std::string>();
}

std::string ConfigReader::require_string(const std::string& key) {
  require(key);
  return get_string(key, "");
}

std::vector<int64_t> ConfigReader::get_ints(const std::string& key,
                                            const std::vector<int64_t>& fallback, int64_t min,
                                            int64_t max) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_array()) wrong_type(key, "a list of integers");
  std::vector<int64_t> out;
  for (const json& item : v) out.push_back(to_int(key, item, "a list of integers", min, max));
  return out;
}

std::vector<double> ConfigReader::require_doubles(const std::string& key) {
  require(key);
  const json& v = at(key);
  if (!v.is_array()) wrong_type(key, "a list of finite numbers");
  std::vector<double> out;
  out.reserve(v.size());
  for (const json& item : v) {
    if (!item.is_number() || !std::isfinite(item.get<double>())) {
      wrong_type(key, "a list of finite numbers");
    }
    out.push_back(item.get<double>());
  }
  return out;
}

std::vector<std::string> ConfigReader::get_strings(const std::string& key,
                                                   const std::vector<std::string>& fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_array()) wrong_type(key, "a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    NEUTRINO_CHECK_VALUE(v[i].is_string(), "{}[{}]: expected a string, got {}", path_of(key), i,
                         describe(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

std::pair<int64_t, int64_t> ConfigReader::get_pair(const std::string& key,
                                                   std::pair<int64_t, int64_t> fallback,
                                                   int64_t min, int64_t max) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  constexpr const char* kExpected = "an integer or a list of two integers";
  if (v.is_number()) {
    const int64_t both = to_int(key, v, kExpected, min, max);
    return {both, both};
  }
  if (!v.is_array() || v.size() != 2) wrong_type(key, kExpected);
  return {to_int(key, v[0], kExpected, min, max), to_int(key, v[1], kExpected, min, max)};
}

const json& ConfigReader::get_raw(const std::string& key) { return at(key); }

const json& ConfigReader::require_raw(const std::string& key) {
  require(key);
  return at(key);
}

void ConfigReader::finish() const {
  for (const auto& [key, value] : object_.items()) {
    NEUTRINO_CHECK_VALUE(read_.count(key) > 0, "{}{}unknown field '{}'", path_,
                         path_.empty() ? "" : ": ", key);
  }
}

std::pair<std::string, json> named_entry(const json& value, const std::string& path) {
  if (value.is_string()) return {value.get<std::string>(), json()};
  NEUTRINO_CHECK_VALUE(value.is_object() && value.size() == 1,
                       "{}: expected a name or a one-key map from a name to its options, got {}",
                       path, describe(value));
  return {value.begin().key(), value.begin().value()};
}

}  // namespace neutrino::io
