// libFuzzer target for the CSV reader. Any input must either be refused with a neutrino::Error or
// be accepted; an accepted file must then hold consistent shapes (rows x features matching the
// names and labels). A crash, a sanitizer report, any other exception or a broken shape is a bug.
//
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -Isrc src/neutrino/core/error.cpp \
//       src/neutrino/tensor/*.cpp src/neutrino/data/csv.cpp fuzz/fuzz_csv.cpp -lfmt -o fuzz_csv
// (or link build/lib/libneutrino.a for the tensor code).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "neutrino/core/error.h"
#include "neutrino/data/csv.h"

namespace {

void check(const neutrino::data::CsvData& d, const neutrino::data::CsvOptions& options) {
  const int64_t rows = d.features.size(0);
  if (rows <= 0 || d.features.dim() != 2) std::abort();
  if (options.header && static_cast<int64_t>(d.feature_names.size()) != d.features.size(1)) {
    std::abort();
  }
  if (options.label.empty() != !d.labels.defined()) std::abort();
  if (d.labels.defined() && d.labels.size(0) != rows) std::abort();
  if (!d.class_names.empty()) {
    for (int64_t label : d.labels.to_vector<int64_t>()) {
      if (label < 0 || label >= static_cast<int64_t>(d.class_names.size())) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The options a caller is likely to use: a header with a named or last-column label, and a
  // headerless file with a skipped count line as in scikit-learn's data files.
  const neutrino::data::CsvOptions variants[] = {
      {},
      {.label = "y"},
      {.header = false, .label = "-1", .skip_rows = 1},
      {.header = true, .label = "0", .delimiter = ';'},
  };
  for (const auto& options : variants) {
    try {
      check(neutrino::data::read_csv_text(text, "fuzz.csv", options), options);
    } catch (const neutrino::InternalError&) {
      std::abort();  // a violated invariant of the reader is a bug, not a refusal
    } catch (const neutrino::Error&) {
      // refusing the input is the expected outcome for most fuzzed files
    }
  }
  return 0;
}
