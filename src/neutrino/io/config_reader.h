// Reads options out of a JSON object with typed getters, and refuses what it did not read, so a
// typo in a config is an error naming its path ("model.layers[3].Dense.units") instead of being
// ignored. Internal: include only from .cpp files (it brings in nlohmann/json).
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "neutrino/core/error.h"

namespace neutrino::io {

class ConfigReader {
 public:
  // `value` must be an object (or null, read as empty); `path` names it in errors.
  ConfigReader(const nlohmann::json& value, std::string path);

  bool has(const std::string& key) const { return object_.contains(key); }
  const std::string& path() const { return path_; }
  std::string path_of(const std::string& key) const { return path_ + "." + key; }

  int64_t get_int(const std::string& key, int64_t fallback);
  int64_t require_int(const std::string& key);
  double get_double(const std::string& key, double fallback);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_string(const std::string& key, const std::string& fallback);
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& fallback);
  // One integer or a list of two ([3] or 3 -> {3, 3}).
  std::pair<int64_t, int64_t> get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback);
  const nlohmann::json& get_raw(const std::string& key);  // marks the key read

  // Throws ValueError naming the first key that no getter read.
  void finish() const;

 private:
  const nlohmann::json& at(const std::string& key);
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;

  nlohmann::json object_;
  std::string path_;
  std::set<std::string> read_;
};

// A named thing written as a bare name or as a one-key map from the name to its options:
// "adam" or {"adam": {"learning_rate": 0.01}}. Returns the name and the options (null if bare).
std::pair<std::string, nlohmann::json> named_entry(const nlohmann::json& value,
                                                   const std::string& path);

}  // namespace neutrino::io
