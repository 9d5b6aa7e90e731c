// libFuzzer target for the text readers: strict UTF-8 (data/utf8.h), ANSI escape removal and the
// fortune / line record splitters (data/text_records.h), and the text columns of CSV/TSV files
// (read_csv_texts_from in data/csv.h). Checked on every input:
// - find_invalid_utf8, check_utf8 and decode_utf8 agree on whether the text is valid and where it
//   stops being so; the bytes before that offset are valid; valid text decodes to one code point
//   per lead byte and encodes back to the same bytes;
// - the input's 32-bit words as code points: append_utf8 takes exactly the scalar values, and
//   what it writes decodes back to them;
// - strip_ansi_escapes only removes bytes, leaves text without ESC alone, and keeps UTF-8 valid;
// - no record is blank, a line record holds no '\n', a fortune record no "%" line, and valid
//   UTF-8 splits into valid UTF-8 records;
// - read_csv_texts_from (text column 0, label -1; the first byte's bits choose tab-separated (1),
//   headerless (2) and unlabelled (8) variants, so "text,label..." and "a\t..." seeds stay
//   labelled) refuses with a neutrino::Error or gives one label per text, class indices in range.
// A crash, a sanitizer report, an InternalError, any other exception or a broken check is a bug.
//
//   build: CXX=clang++-14 scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON ...
//   run:   scripts/fuzz.sh build-fuzz/bin/fuzz_text 60
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/csv.h"
#include "neutrino/data/text_records.h"
#include "neutrino/data/utf8.h"

namespace {

namespace nd = neutrino::data;

bool valid(std::string_view text) { return !nd::find_invalid_utf8(text).has_value(); }

void check_utf8_functions(std::string_view text) {
  const auto bad = nd::find_invalid_utf8(text);
  bool check_threw = false;
  try {
    nd::check_utf8(text, "fuzz");
  } catch (const neutrino::ValueError& e) {
    check_threw = true;
    if (!bad || std::strstr(e.what(), fmt::format("at byte {} ", bad->offset).c_str()) == nullptr) {
      std::abort();  // check_utf8 refused valid text, or named another offset
    }
  }
  if (check_threw != bad.has_value()) std::abort();
  std::vector<char32_t> code_points;
  try {
    code_points = nd::decode_utf8(text, "fuzz");
    if (bad) std::abort();  // decoded what find_invalid_utf8 calls invalid
  } catch (const neutrino::ValueError& e) {
    if (!bad || std::strstr(e.what(), fmt::format("at byte {} ", bad->offset).c_str()) == nullptr) {
      std::abort();
    }
  }
  if (bad) {
    if (bad->offset >= text.size() || bad->reason == nullptr) std::abort();
    if (!valid(text.substr(0, bad->offset))) std::abort();  // the text is valid up to the offset
    return;
  }
  const auto leads = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  if (static_cast<size_t>(leads) != code_points.size()) std::abort();
  for (char32_t c : code_points) {
    if (!nd::is_scalar_value(c)) std::abort();
  }
  if (nd::encode_utf8(code_points) != text) std::abort();  // decode -> encode: the same bytes
}

// The input read as little-endian 32-bit code points, every value of them: scalar values encode
// and decode back, the rest are refused.
void check_encoding(std::string_view bytes) {
  std::vector<char32_t> scalars;
  std::string encoded;
  for (size_t i = 0; i + 4 <= bytes.size() && i < 256; i += 4) {
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + i, 4);
    const auto c = static_cast<char32_t>(v);
    try {
      nd::append_utf8(c, encoded);
      if (!nd::is_scalar_value(c)) std::abort();
      scalars.push_back(c);
    } catch (const neutrino::ValueError&) {
      if (nd::is_scalar_value(c)) std::abort();
    }
  }
  if (nd::decode_utf8(encoded, "encoded") != scalars) std::abort();
  if (nd::encode_utf8(scalars) != encoded) std::abort();
}

// `part` is `whole` with some bytes left out (a subsequence).
bool is_subsequence(std::string_view part, std::string_view whole) {
  size_t at = 0;
  for (char c : whole) {
    if (at < part.size() && part[at] == c) ++at;
  }
  return at == part.size();
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); });
}

void check_records(std::string_view text) {
  const bool text_valid = valid(text);
  const std::string stripped = nd::strip_ansi_escapes(text);
  if (stripped.size() > text.size() || !is_subsequence(stripped, text)) std::abort();
  if (text.find('\x1b') == std::string_view::npos && stripped != text) std::abort();
  // Escapes are ASCII, so taking them out of valid UTF-8 leaves valid UTF-8.
  if (text_valid && !valid(stripped)) std::abort();

  for (const std::string& record : nd::split_line_records(text)) {
    if (is_blank(record) || record.find('\n') != std::string::npos) std::abort();
    if (text_valid && !valid(record)) std::abort();
  }
  for (const std::string& record : nd::split_fortune_records(text)) {
    if (is_blank(record) || record.size() > text.size()) std::abort();
    if (text_valid && !valid(record)) std::abort();
    size_t at = 0;
    while (at <= record.size()) {
      size_t end = record.find('\n', at);
      if (end == std::string::npos) end = record.size();
      std::string_view line(record.data() + at, end - at);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line == "%") std::abort();  // a separator line inside a record
      at = end + 1;
    }
  }
}

void check_csv_texts(const std::string& text) {
  const auto flags = text.empty() ? 0 : static_cast<uint8_t>(text[0]);
  nd::CsvTextOptions options;
  options.text = "0";
  options.label = "-1";
  options.delimiter = (flags & 1) != 0 ? '\t' : ',';
  options.header = (flags & 2) == 0;
  if ((flags & 8) != 0) options.label = "";  // a text column alone
  nd::CsvTexts out;
  try {
    out = nd::read_csv_texts_from(text, options.delimiter == '\t' ? "fuzz.tsv" : "fuzz.csv",
                                  options);
  } catch (const neutrino::InternalError&) {
    std::abort();
  } catch (const neutrino::Error&) {
    return;  // refusing the input is the expected outcome for most fuzzed files
  }
  if (out.texts.empty()) std::abort();
  for (const std::string& t : out.texts) {
    if (t.find('\n') != std::string::npos || t.size() > text.size()) std::abort();
  }
  if (options.label.empty()) {
    if (out.labels.defined() || !out.class_names.empty()) std::abort();
    return;
  }
  if (!out.labels.defined() || out.labels.numel() != static_cast<int64_t>(out.texts.size())) {
    std::abort();
  }
  if (!std::is_sorted(out.class_names.begin(), out.class_names.end())) std::abort();
  if (!out.class_names.empty()) {
    for (int64_t label : out.labels.to_vector<int64_t>()) {
      if (label < 0 || label >= static_cast<int64_t>(out.class_names.size())) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_utf8_functions(text);
  check_encoding(text);
  check_records(text);
  check_csv_texts(text);
  return 0;
}
