#include "neutrino/io/config_reader.h"

#include <cmath>

namespace neutrino::io {

using nlohmann::json;

ConfigReader::ConfigReader(const json& value, std::string path)
    : object_(value.is_null() ? json::object() : value), path_(std::move(path)) {
  NEUTRINO_CHECK_VALUE(object_.is_object(), "{}: expected a map of options, got {}", path_,
                       value.dump());
}

const json& ConfigReader::at(const std::string& key) {
  read_.insert(key);
  return object_.at(key);
}

void ConfigReader::wrong_type(const std::string& key, const char* expected) const {
  throw ValueError(fmt::format("{}: expected {}, got {}", path_of(key), expected,
                               object_.at(key).dump()));
}

int64_t ConfigReader::get_int(const std::string& key, int64_t fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) {
    return static_cast<int64_t>(v.get<double>());
  }
  wrong_type(key, "an integer");
}

int64_t ConfigReader::require_int(const std::string& key) {
  NEUTRINO_CHECK_VALUE(has(key), "{}: missing required field", path_of(key));
  return get_int(key, 0);
}

double ConfigReader::get_double(const std::string& key, double fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_number()) wrong_type(key, "a number");
  return v.get<double>();
}

bool ConfigReader::get_bool(const std::string& key, bool fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_boolean()) wrong_type(key, "true or false");
  return v.get<bool>();
}

std::string ConfigReader::get_string(const std::string& key, const std::string& fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_string()) wrong_type(key, "a string");
  return v.get<std::string>();
}

std::vector<int64_t> ConfigReader::get_ints(const std::string& key,
                                            const std::vector<int64_t>& fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_array()) wrong_type(key, "a list of integers");
  std::vector<int64_t> out;
  for (const json& item : v) {
    if (!item.is_number_integer()) wrong_type(key, "a list of integers");
    out.push_back(item.get<int64_t>());
  }
  return out;
}

std::pair<int64_t, int64_t> ConfigReader::get_pair(const std::string& key,
                                                   std::pair<int64_t, int64_t> fallback) {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer()) {
    return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  }
  wrong_type(key, "an integer or a list of two integers");
}

const json& ConfigReader::get_raw(const std::string& key) { return at(key); }

void ConfigReader::finish() const {
  for (const auto& [key, value] : object_.items()) {
    NEUTRINO_CHECK_VALUE(read_.count(key) > 0, "{}: unknown field '{}'", path_, key);
  }
}

std::pair<std::string, json> named_entry(const json& value, const std::string& path) {
  if (value.is_string()) return {value.get<std::string>(), json()};
  NEUTRINO_CHECK_VALUE(value.is_object() && value.size() == 1,
                       "{}: expected a name or a one-key map from a name to its options, got {}",
                       path, value.dump());
  return {value.begin().key(), value.begin().value()};
}

}  // namespace neutrino::io
