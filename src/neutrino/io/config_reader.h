// Reads options out of a JSON object with typed getters, and refuses what it did not read, so a
// typo in a config is an error naming its path ("model.layers[3].Dense.units") instead of being
// ignored. Every value neutrino reads from a file (YAML configs, and the JSON metadata of model
// files and checkpoints) goes through these getters: wrong types, missing fields, non-finite
// numbers and numbers out of their range are ValueErrors naming the file and the field path.
// Internal: include only from .cpp files (it brings in nlohmann/json).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "neutrino/core/error.h"

namespace neutrino::io {

// The deepest nesting of lists and maps a config or metadata value may have. Deeper text is
// refused before it is parsed (nothing neutrino writes goes past 4 levels).
inline constexpr int kMaxJsonDepth = 64;

// Parses JSON text read from a file. Invalid JSON, or nesting deeper than kMaxJsonDepth, is a
// ValueError "WHAT: ...": `what` names the file and the field ("m.safetensors: compile").
nlohmann::json parse_json(const std::string& text, const std::string& what);

// A value as shown in error messages: NaN and infinities print as nan/inf (JSON would print
// null), and long values are cut short.
std::string describe(const nlohmann::json& value);

class ConfigReader {
 public:
  static constexpr int64_t kIntMin = std::numeric_limits<int64_t>::min();
  static constexpr int64_t kIntMax = std::numeric_limits<int64_t>::max();

  // `value` must be an object (or null, read as empty); `path` names it in errors.
  ConfigReader(const nlohmann::json& value, std::string path);

  bool has(const std::string& key) const { return object_.contains(key); }
  const std::string& path() const { return path_; }
  // An empty path (a value whose caller adds the context) names fields by their key alone.
  std::string path_of(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  // Integers must lie in [min, max]; a float with an integral value (1e3) counts as an integer.
  int64_t get_int(const std::string& key, int64_t fallback, int64_t min = kIntMin,
                  int64_t max = kIntMax);
  int64_t require_int(const std::string& key, int64_t min = kIntMin, int64_t max = kIntMax);
  // Numbers must be finite and lie in [min, max].
  double get_double(const std::string& key, double fallback,
                    double min = -std::numeric_limits<double>::max(),
                    double max = std::numeric_limits<double>::max());
  double require_double(const std::string& key, double min = -std::numeric_limits<double>::max(),
                        double max = std::numeric_limits<double>::max());
  bool get_bool(const std::string& key, bool fallback);
  bool require_bool(const std::string& key);
  std::string get_string(const std::string& key, const std::string& fallback);
  std::string require_string(const std::string& key);
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& fallback,
                                int64_t min = kIntMin, int64_t max = kIntMax);
  std::vector<double> require_doubles(const std::string& key);  // finite
  std::vector<std::string> get_strings(const std::string& key,
                                       const std::vector<std::string>& fallback);
  // One integer or a list of two ([3] or 3 -> {3, 3}), each in [min, max].
  std::pair<int64_t, int64_t> get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback,
                                       int64_t min = kIntMin, int64_t max = kIntMax);
  const nlohmann::json& get_raw(const std::string& key);  // marks the key read
  const nlohmann::json& require_raw(const std::string& key);

  // Throws ValueError naming the first key that no getter read.
  void finish() const;

 private:
  const nlohmann::json& at(const std::string& key);
  void require(const std::string& key) const;
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;
  int64_t to_int(const std::string& key, const nlohmann::json& v, const char* expected, int64_t min,
                 int64_t max) const;

  nlohmann::json object_;
  std::string path_;
  std::set<std::string> read_;
};

// A named thing written as a bare name or as a one-key map from the name to its options:
// "adam" or {"adam": {"learning_rate": 0.01}}. Returns the name and the options (null if bare).
std::pair<std::string, nlohmann::json> named_entry(const nlohmann::json& value,
                                                   const std::string& path);

}  // namespace neutrino::io
