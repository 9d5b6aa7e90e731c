// Option structs described once. Beside the code that reads a struct from configs, one function
// in the struct's namespace lists its fields,
//
//   template <class Self, class F>  // Self: SGDOptions or const SGDOptions
//   void option_fields(Self& o, F&& f) {
//     f("learning_rate", o.learning_rate, 0.0, 1e6);
//     f("nesterov", o.nesterov);
//   }
//
// and the struct's member initializers are the only defaults: read_fields fills a struct from a config
// (keys it does not find keep the defaults; a number outside its range is an error naming the
// field), write_fields writes one, and describe_fields lists every key with its default (for
// `neutrino options`). Internal: include only from .cpp files (it brings in nlohmann/json).
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "neutrino/io/config_reader.h"

namespace neutrino::io {

// A pair of sizes (height, width) as a field: one number or [h, w] in a config.
template <class P>
concept SizePair = requires(P p) {
  { p.h } -> std::convertible_to<int64_t>;
  { p.w } -> std::convertible_to<int64_t>;
};

class FieldReader {
 public:
  explicit FieldReader(ConfigReader& r) : r_(r) {}
  void operator()(const char* key, std::string& value) const { value = r_.get_string(key, value); }
  void operator()(const char* key, bool& value) const { value = r_.get_bool(key, value); }
  void operator()(const char* key, double& value, double min = -std::numeric_limits<double>::max(),
                  double max = std::numeric_limits<double>::max()) const {
    value = r_.get_double(key, value, min, max);
  }
  void operator()(const char* key, int64_t& value, int64_t min = ConfigReader::kIntMin,
                  int64_t max = ConfigReader::kIntMax) const {
    value = r_.get_int(key, value, min, max);
  }
  void operator()(const char* key, int& value, int64_t min = 0, int64_t max = INT32_MAX) const {
    value = static_cast<int>(r_.get_int(key, value, min, max));
  }
  template <SizePair P>
  void operator()(const char* key, P& value, int64_t min, int64_t max) const {
    const auto [h, w] = r_.get_pair(key, {value.h, value.w}, min, max);
    value = P(h, w);
  }

 private:
  ConfigReader& r_;
};

class FieldWriter {
 public:
  explicit FieldWriter(nlohmann::json& out) : out_(out) {}
  template <class T, class... Range>
  void operator()(const char* key, const T& value, Range&&...) const {
    if constexpr (SizePair<T>) {
      out_[key] = {value.h, value.w};
    } else {
      out_[key] = value;
    }
  }

 private:
  nlohmann::json& out_;
};

// Every field of `options` the config holds; the rest keep the struct's defaults.
template <class Options>
void read_fields(ConfigReader& r, Options& options) {
  option_fields(options, FieldReader(r));
}

template <class Options>
void write_fields(const Options& options, nlohmann::json& out) {
  option_fields(options, FieldWriter(out));
}

// (key, default as JSON text) for each field of a default-constructed Options.
template <class Options>
std::vector<std::pair<std::string, std::string>> describe_fields() {
  nlohmann::json out = nlohmann::json::object();
  write_fields(Options{}, out);
  std::vector<std::pair<std::string, std::string>> rows;
  const Options defaults{};
  option_fields(defaults, [&](const char* key, const auto&, auto&&...) {
    rows.emplace_back(key, out[key].dump());
  });
  return rows;
}

// "  HEAD: key=default, key=default" for `neutrino options`.
template <class Options>
std::string describe_line(const std::string& head) {
  std::string line = "  " + head + ":";
  const char* sep = " ";
  for (const auto& [key, value] : describe_fields<Options>()) {
    line += sep + key + "=" + value;
    sep = ", ";
  }
  return line + "\n";
}

}  // namespace neutrino::io
