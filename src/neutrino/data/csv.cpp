// CSV dataset reader; the policy is in csv.h. The file is read into memory once and parsed in
// place: fields are string_views into the text, and only header names and text labels are ever
// copied into strings, so a 60,000 x 785 file costs one pass of from_chars per cell.
#include "neutrino/data/csv.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

#include "neutrino/core/error.h"
#include "neutrino/io/file_io.h"

namespace neutrino::data {
namespace {

// One field of a line: the content between the quotes of a quoted field (any "" still doubled
// when `escaped`), or else the trimmed field.
struct Field {
  std::string_view text;
  bool escaped = false;
};

// A label cell, kept until the whole column is seen: only then is it known to be numeric or text.
struct LabelCell {
  Field field;
  int64_t line = 0;
};

// Cells and names in messages: quoted, control bytes escaped, long ones cut, so a fuzzed or
// binary cell cannot make an unreadable or huge message.
std::string shown(std::string_view s) {
  constexpr size_t kMaxShown = 40;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

std::string unescape(const Field& field) {
  if (!field.escaped) return std::string(field.text);
  std::string out;
  out.reserve(field.text.size());
  for (size_t i = 0; i < field.text.size(); ++i) {
    out += field.text[i];
    if (field.text[i] == '"') ++i;  // the splitter only lets "" through, so skip the second quote
  }
  return out;
}

// Spaces and tabs are trimmed, except the delimiter itself (tab-separated files).
bool is_trim(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

std::string_view trim(std::string_view s, char delimiter) {
  while (!s.empty() && is_trim(s.front(), delimiter)) s.remove_prefix(1);
  while (!s.empty() && is_trim(s.back(), delimiter)) s.remove_suffix(1);
  return s;
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

// Physical lines without their LF or CRLF end, numbered from 1.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}

  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;  // so a final newline does not make an extra line
    const size_t end = std::min(text_.find('\n', pos_), text_.size());
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = end + 1;
    ++number_;
    return true;
  }
  int64_t number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t number_ = 0;
};

// Splits one line into `out` (reused across lines so long files do not reallocate per row).
// Splits `line` into `out`, keeping at most `max_fields` fields, and returns how many it has. The
// rest are only counted: a hostile line of millions of empty fields must not cost a Field (24
// bytes) for every two bytes of text, when one past the expected count already makes it an error.
size_t split_line(std::string_view line, char delimiter, const std::string& source, int64_t line_no,
                  std::vector<Field>& out, size_t max_fields) {
  out.clear();
  size_t count = 0;
  const auto emit = [&](Field field) {
    if (count++ < max_fields) out.push_back(field);
  };
  const size_t n = line.size();
  size_t i = 0;
  while (true) {
    while (i < n && is_trim(line[i], delimiter)) ++i;
    if (i < n && line[i] == '"') {
      const size_t begin = ++i;
      bool escaped = false;
      while (true) {
        i = line.find('"', i);
        NEUTRINO_CHECK_IO(i != std::string_view::npos,
                          "{}:{}: column {}: a quoted field is not closed on its line", source,
                          line_no, count + 1);
        if (i + 1 < n && line[i + 1] == '"') {
          escaped = true;
          i += 2;
          continue;
        }
        break;
      }
      emit({line.substr(begin, i - begin), escaped});
      ++i;
      while (i < n && is_trim(line[i], delimiter)) ++i;
      NEUTRINO_CHECK_IO(i == n || line[i] == delimiter,
                        "{}:{}: column {}: unexpected {} after a closing quote", source, line_no,
                        count, shown(line.substr(i, 1)));
    } else {
      const size_t begin = i;
      while (i < n && line[i] != delimiter) ++i;
      emit({trim(line.substr(begin, i - begin), delimiter), false});
    }
    if (i >= n) break;
    ++i;  // the delimiter; a line ending in one has an empty last field, pushed next round
  }
  return count;
}

enum class NumberStatus { kOk, kEmpty, kNotNumber, kNotFinite, kOutOfRange };

// Whole-field parse. from_chars is locale-independent and, in libstdc++ 12, fast (fast_float).
NumberStatus parse_number(std::string_view s, double& value) {
  if (s.empty()) return NumberStatus::kEmpty;
  const char* begin = s.data();
  const char* end = begin + s.size();
  if (*begin == '+') {  // from_chars refuses '+', but other CSV writers emit it
    ++begin;
    if (begin == end || *begin == '-' || *begin == '+') return NumberStatus::kNotNumber;
  }
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ptr != end) return NumberStatus::kNotNumber;
  if (ec == std::errc::result_out_of_range) return NumberStatus::kOutOfRange;
  if (ec != std::errc()) return NumberStatus::kNotNumber;
  if (!std::isfinite(value)) return NumberStatus::kNotFinite;
  return NumberStatus::kOk;
}

// Exact int64 text ("7", "-12", "+3"), so large integer labels are not rounded through double.
bool parse_int(std::string_view s, int64_t& value) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (s.empty() || s.front() == '-') return false;
  }
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Refuses a NUL anywhere, naming its line and its field column (delimiters outside quotes).
void check_no_nul(std::string_view text, char delimiter, const std::string& source) {
  const size_t pos = text.find('\0');
  if (pos == std::string_view::npos) return;
  const size_t line_start = pos == 0 ? 0 : text.rfind('\n', pos - 1) + 1;  // npos + 1 == 0
  const auto line_no =
      1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(pos), '\n');
  size_t column = 1;
  bool in_quotes = false;
  for (size_t i = line_start; i < pos; ++i) {
    if (text[i] == '"') in_quotes = !in_quotes;
    if (text[i] == delimiter && !in_quotes) ++column;
  }
  throw IOError(fmt::format("{}:{}: column {}: NUL byte (a binary or UTF-16 file, not CSV text)",
                            source, line_no, column));
}

// The column `spec` names among `count` columns: an exact header name (when there is a header;
// a name given twice is ambiguous), else a decimal index, negative from the end; -1 for an
// empty spec. `what` says which column it is ("label", "text") in errors, which list at most 50
// names so a hostile header cannot make a huge message.
int64_t resolve_column(const std::string& spec, const std::vector<std::string>* names, size_t count,
                       const std::string& source, int64_t line, const char* what) {
  if (spec.empty()) return -1;
  if (names != nullptr) {  // an exact name wins over reading the spec as an index
    const auto n = std::count(names->begin(), names->end(), spec);
    NEUTRINO_CHECK_IO(n <= 1, "{}:{}: {} column {} appears {} times in the header", source, line,
                      what, shown(spec), n);
    if (n == 1) return std::find(names->begin(), names->end(), spec) - names->begin();
  }
  const auto columns = static_cast<int64_t>(count);
  int64_t index = 0;
  const bool digits = spec.find_first_not_of("-0123456789") == std::string::npos;
  const auto [ptr, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), index);
  if (digits && ec == std::errc() && ptr == spec.data() + spec.size()) {
    const int64_t resolved = index < 0 ? index + columns : index;
    NEUTRINO_CHECK_IO(resolved >= 0 && resolved < columns,
                      "{}: {} column index {} is out of range for {} columns", source, what, spec,
                      columns);
    return resolved;
  }
  NEUTRINO_CHECK_IO(names != nullptr,
                    "{}: {} {} is not a column index, and a file without a header has no column "
                    "names",
                    source, what, shown(spec));
  std::string available;
  constexpr size_t kMaxListed = 50;
  for (size_t i = 0; i < names->size() && i < kMaxListed; ++i) {
    available += (i == 0 ? "" : ", ") + shown((*names)[i]);
  }
  if (names->size() > kMaxListed) {
    available += fmt::format(", ... ({} more)", names->size() - kMaxListed);
  }
  throw IOError(fmt::format("{}:{}: no {} column named {}; the columns are: {}", source, line, what,
                            shown(spec), available));
}

class Reader {
 public:
  Reader(const std::string& source, const CsvOptions& options)
      : source_(source),
        options_(options),
        header_(options.header),
        // The fast path's from_chars must stop at the delimiter: not a character of a number.
        fast_delimiter_(!std::isalnum(static_cast<unsigned char>(options.delimiter)) &&
                        std::strchr(".+-()_", options.delimiter) == nullptr) {}

  CsvData read(std::string_view text) {
    check_no_nul(text, options_.delimiter, source_);
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    Lines lines(text);
    std::string_view line;
    for (int64_t i = 0; i < options_.skip_rows && lines.next(line); ++i) {
    }
    std::vector<Field> fields;
    if (options_.detect_header) header_ = !first_row_is_numeric(lines, fields);
    if (header_) {
      NEUTRINO_CHECK_IO(next_row(lines, line), "{}: empty file: no header row{}", source_,
                        skipped_note());
      header_line_ = lines.number();
      set_columns(split_line(line, options_.delimiter, source_, lines.number(), fields,
                             kMaxCsvColumns + 1),
                  fields);
    }
    const size_t expected_rows = count_rows(lines);
    while (next_row(lines, line)) {
      if (add_row_fast(line, lines.number())) {
        ++rows_;
        continue;
      }
      const size_t found = split_line(line, options_.delimiter, source_, lines.number(), fields,
                                      columns_ == 0 ? kMaxCsvColumns + 1 : columns_ + 1);
      if (columns_ == 0) {
        header_line_ = lines.number();
        set_columns(found, {});
      }
      if (rows_ == 0) allocate(expected_rows, text.size());
      add_row(fields, found, lines.number());
      ++rows_;
    }
    if (rows_ == 0) {
      NEUTRINO_CHECK_IO(!header_, "{}:{}: no data rows after the header", source_,
                        header_line_);
      throw IOError(fmt::format("{}: empty file: no data rows{}", source_, skipped_note()));
    }
    return finish();
  }

 private:
  std::string skipped_note() const {
    return options_.skip_rows > 0 ? fmt::format(" after skipping {} rows", options_.skip_rows) : "";
  }

  // detect_header: the first non-blank row is data when every cell is a number (a header always
  // has a name that is not one, and a row with a non-numeric cell could not be data anyway).
  bool first_row_is_numeric(Lines lines, std::vector<Field>& fields) {
    std::string_view line;
    if (!next_row(lines, line)) return false;
    if (split_line(line, options_.delimiter, source_, lines.number(), fields, kMaxCsvColumns + 1) >
        kMaxCsvColumns) {
      return false;  // too wide to be data or a header: the header path reports it
    }
    double value = 0;
    return std::all_of(fields.begin(), fields.end(), [&](const Field& f) {
      return !f.escaped && parse_number(f.text, value) == NumberStatus::kOk;
    });
  }

  bool next_row(Lines& lines, std::string_view& line) {
    while (lines.next(line)) {
      if (!is_blank(line)) return true;
    }
    return false;
  }

  // The common row, parsed without splitting: no quotes, and every feature cell a number that
  // from_chars reads right up to its delimiter. Anything else (spaces, '+', quotes, bad cells,
  // a wrong field count) returns false having stored nothing, and the general path redoes the
  // row and gives the exact error. Splitting into Fields first costs about as much as the
  // from_chars calls themselves (60,000 x 785 in memory: 1.45 s -> 1.2 s on a loaded VM).
  bool add_row_fast(std::string_view line, int64_t line_no) {
    if (out_ == nullptr || !fast_delimiter_ || line.find('"') != std::string_view::npos) {
      return false;
    }
    const char delimiter = options_.delimiter;
    const char* p = line.data();
    const char* const end = p + line.size();
    float* out = out_;
    Field label;
    for (size_t j = 0; j < columns_; ++j) {
      if (static_cast<int64_t>(j) == label_) {
        const char* q = p;
        while (q < end && *q != delimiter) ++q;
        label.text = trim(std::string_view(p, static_cast<size_t>(q - p)), delimiter);
        p = q;
      } else {
        double value = 0;
        const auto [ptr, ec] = std::from_chars(p, end, value);
        if (ec != std::errc() || !std::isfinite(value) ||
            std::fabs(value) > std::numeric_limits<float>::max()) {
          return false;
        }
        *out++ = static_cast<float>(value);
        p = ptr;
      }
      if (j + 1 == columns_) break;
      if (p == end || *p != delimiter) return false;
      ++p;
    }
    if (p != end) return false;
    // Only now, so a fallback leaves no half row behind.
    if (label_ >= 0) add_label(label, line_no, static_cast<size_t>(label_));
    out_ = out;
    return true;
  }

  // The non-blank lines left: the data rows of a valid file. A cheap pass (one memchr per line)
  // that lets the features be parsed straight into a tensor of the right size.
  static size_t count_rows(Lines lines) {
    size_t rows = 0;
    std::string_view line;
    while (lines.next(line)) rows += is_blank(line) ? 0 : 1;
    return rows;
  }

  // Fixes the column count and resolves the label column against it.
  // `names`: the header's fields (empty without a header).
  void set_columns(size_t count, const std::vector<Field>& names) {
    NEUTRINO_CHECK_IO(count <= kMaxCsvColumns, "{}:{}: {} columns, more than the limit of {}",
                      source_, header_line_, count, kMaxCsvColumns);
    for (const Field& field : names) header_names_.push_back(unescape(field));
    columns_ = count;
    label_ = resolve_label();
    NEUTRINO_CHECK_IO(label_ < 0 || columns_ > 1,
                      "{}: the label is the only column; there are no feature columns", source_);
    data_.feature_names = header_names_;
    if (label_ >= 0 && header_) {
      data_.label_name = header_names_[static_cast<size_t>(label_)];
      data_.feature_names.erase(data_.feature_names.begin() + label_);
    }
  }

  // Sizes the outputs for `rows` rows. A valid row spends at least two bytes a cell (a non-empty
  // cell and a delimiter or line end), so more cells than half the text means the file is
  // invalid: then nothing is allocated (a short file must not make us allocate rows x columns
  // from a huge header) and the rows are only parsed, until the error that must come.
  void allocate(size_t rows, size_t text_size) {
    const size_t max_cells = text_size / 2 + 1;
    if (rows > max_cells / columns_) return;
    const auto features = static_cast<int64_t>(columns_) - (label_ >= 0 ? 1 : 0);
    features_ = Tensor::empty({static_cast<int64_t>(rows), features});
    out_ = features_.data<float>();
    if (label_ >= 0) labels_.reserve(rows);
  }

  int64_t resolve_label() const {
    return resolve_column(options_.label, header_ ? &header_names_ : nullptr, columns_, source_,
                          header_line_, "label");
  }

  std::string column_name(size_t column) const {
    std::string out = fmt::format("column {}", column + 1);
    if (header_ && !header_names_.empty()) out += " (" + shown(header_names_[column]) + ")";
    return out;
  }

  // `found`: the line's field count (only the first columns_ + 1 are in `fields`).
  void add_row(const std::vector<Field>& fields, size_t found, int64_t line_no) {
    if (found != columns_) {
      throw IOError(fmt::format(
          "{}:{}: expected {} fields (as in the {} on line {}), found {}", source_, line_no,
          columns_, header_ ? "header" : "first row", header_line_, found));
    }
    for (size_t j = 0; j < columns_; ++j) {
      const Field& field = fields[j];
      if (static_cast<int64_t>(j) == label_) {
        add_label(field, line_no, j);
        continue;
      }
      double value = 0;
      const NumberStatus status =
          field.escaped ? NumberStatus::kNotNumber : parse_number(field.text, value);
      if (status == NumberStatus::kOk && std::fabs(value) <= std::numeric_limits<float>::max()) {
        if (out_ != nullptr) *out_++ = static_cast<float>(value);
        continue;
      }
      cell_error(status == NumberStatus::kOk ? NumberStatus::kOutOfRange : status, field, line_no,
                 j);
    }
  }

  [[noreturn]] void cell_error(NumberStatus status, const Field& field, int64_t line_no,
                               size_t column) const {
    const std::string cell = shown(unescape(field));
    const std::string what =
        status == NumberStatus::kEmpty        ? "empty cell (a missing value)"
        : status == NumberStatus::kNotFinite  ? cell + " is not finite (NaN and inf are refused)"
        : status == NumberStatus::kOutOfRange ? cell + " is out of the float32 range"
                                              : cell + " is not a number";
    throw IOError(fmt::format("{}:{}: {}: {}", source_, line_no, column_name(column), what));
  }

  void add_label(const Field& field, int64_t line_no, size_t column) {
    labels_.push_back({field, line_no});
    double value = 0;
    const NumberStatus status =
        field.escaped ? NumberStatus::kNotNumber : parse_number(field.text, value);
    // Refused even in a text column: "" and "NaN" there are missing values, not a class.
    if (status != NumberStatus::kOk && status != NumberStatus::kNotNumber) {
      cell_error(status, field, line_no, column);
    }
    if (status != NumberStatus::kOk) numeric_labels_ = false;
    if (!numeric_labels_) return;  // the column is text; its cells are kept in labels_
    label_values_.push_back(value);
    int64_t whole = 0;
    constexpr double kExact = 9007199254740992.0;  // 2^53: every whole double below is exact
    if (!parse_int(field.text, whole)) {
      if (value != std::trunc(value) || std::fabs(value) > kExact) whole_labels_ = false;
      whole = static_cast<int64_t>(std::clamp(value, -kExact, kExact));
    }
    label_ints_.push_back(whole);
  }

  CsvData finish() {
    // Every row was counted ahead, and a file too short for its cells must have failed a check.
    NEUTRINO_ASSERT(out_ != nullptr && features_.size(0) == static_cast<int64_t>(rows_) &&
                    out_ == features_.data<float>() + features_.numel());
    const auto rows = static_cast<int64_t>(rows_);
    data_.features = std::move(features_);
    if (label_ < 0) return std::move(data_);
    if (numeric_labels_ && whole_labels_) {
      data_.labels = Tensor::from_vector(label_ints_, {rows});
    } else if (numeric_labels_) {
      std::vector<float> values(label_values_.size());
      for (size_t i = 0; i < values.size(); ++i) {
        if (std::fabs(label_values_[i]) > std::numeric_limits<float>::max()) {
          cell_error(NumberStatus::kOutOfRange, labels_[i].field, labels_[i].line,
                     static_cast<size_t>(label_));
        }
        values[i] = static_cast<float>(label_values_[i]);
      }
      data_.labels = Tensor::from_vector(values, {rows});
    } else {
      std::vector<std::string> texts;
      texts.reserve(labels_.size());
      for (const LabelCell& cell : labels_) texts.push_back(unescape(cell.field));
      data_.class_names = texts;
      std::sort(data_.class_names.begin(), data_.class_names.end());
      data_.class_names.erase(std::unique(data_.class_names.begin(), data_.class_names.end()),
                              data_.class_names.end());
      std::vector<int64_t> indices(texts.size());
      for (size_t i = 0; i < texts.size(); ++i) {
        indices[i] =
            std::lower_bound(data_.class_names.begin(), data_.class_names.end(), texts[i]) -
            data_.class_names.begin();
      }
      data_.labels = Tensor::from_vector(indices, {rows});
    }
    return std::move(data_);
  }

  const std::string& source_;
  const CsvOptions& options_;
  bool header_;  // options.header, or what detect_header decided
  const bool fast_delimiter_;
  CsvData data_;
  std::vector<std::string> header_names_;  // every header name, the label's included
  size_t columns_ = 0;
  int64_t label_ = -1;
  int64_t header_line_ = 0;  // the header's line, or the first data row's without a header
  size_t rows_ = 0;
  Tensor features_;
  float* out_ = nullptr;  // the next feature cell in features_; null while only validating
  std::vector<LabelCell> labels_;
  std::vector<double> label_values_;
  std::vector<int64_t> label_ints_;
  bool numeric_labels_ = true;
  bool whole_labels_ = true;
};

std::string errno_message(int error) { return std::generic_category().message(error); }

CsvData parse(std::string_view text, const std::string& source_name, const CsvOptions& options) {
  const char d = options.delimiter;
  NEUTRINO_CHECK_VALUE(d != '"' && d != '\n' && d != '\r' && d != '\0',
                       "read_csv: {}: the delimiter cannot be a quote, a line break or NUL",
                       source_name);
  NEUTRINO_CHECK_VALUE(options.skip_rows >= 0, "read_csv: {}: skip_rows is negative ({})",
                       source_name, options.skip_rows);
  return Reader(source_name, options).read(text);
}

}  // namespace

CsvData read_csv_text(const std::string& text, const std::string& source_name,
                      const CsvOptions& options) {
  return parse(text, source_name, options);
}

CsvData read_csv(const std::string& path, const CsvOptions& options) {
  uint64_t file_size = 0;
  const io::FilePtr file = io::open_regular_file(path, file_size);  // never a FIFO or a device
  const int fd = ::fileno(file.get());
  // Sized by st_size (+1, so EOF shows without growing) and read with read(2) straight into an
  // uninitialized buffer: no zero-fill and no bounce copy of a file that may be 100+ MB. Reading
  // to EOF rather than trusting st_size keeps a growing file working. Not mmap: a file
  // truncated while mapped would kill us with SIGBUS.
  size_t capacity = static_cast<size_t>(file_size) + 1;
  auto buffer = std::make_unique_for_overwrite<char[]>(capacity);
  size_t size = 0;
  while (true) {
    if (size == capacity) {
      auto bigger = std::make_unique_for_overwrite<char[]>(capacity * 2);
      std::memcpy(bigger.get(), buffer.get(), size);
      buffer = std::move(bigger);
      capacity *= 2;
    }
    const ssize_t n = ::read(fd, buffer.get() + size, capacity - size);
    if (n < 0 && errno == EINTR) continue;
    NEUTRINO_CHECK_IO(n >= 0, "{}: cannot read: {}", path, errno_message(errno));
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  return parse(std::string_view(buffer.get(), size), path, options);
}


CsvTexts read_csv_texts_from(const std::string& text_in, const std::string& source,
                             const CsvTextOptions& options) {
  std::string_view text = text_in;
  check_no_nul(text, options.delimiter, source);
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  Lines lines(text);
  std::string_view line;
  std::vector<Field> fields;
  std::vector<std::string> names;
  const auto next = [&] {
    while (lines.next(line)) {
      if (!is_blank(line)) return true;
    }
    return false;
  };
  NEUTRINO_CHECK_IO(next(), "{}: empty file", source);
  size_t columns = split_line(line, options.delimiter, source, lines.number(), fields, kMaxCsvColumns + 1);
  NEUTRINO_CHECK_IO(columns <= kMaxCsvColumns, "{}:{}: more than {} columns", source,
                    lines.number(), kMaxCsvColumns);
  bool pending = !options.header;  // without a header the first line is data
  if (options.header) {
    for (const Field& f : fields) names.push_back(unescape(f));
  }
  const std::vector<std::string>* header = options.header ? &names : nullptr;
  NEUTRINO_CHECK_VALUE(!options.text.empty(), "{}: no text column given", source);
  const int64_t header_line = lines.number();
  const auto text_col =
      static_cast<size_t>(resolve_column(options.text, header, columns, source, header_line, "text"));
  const bool labelled = !options.label.empty();
  const int64_t label_at = resolve_column(options.label, header, columns, source, header_line, "label");
  const size_t label_col = labelled ? static_cast<size_t>(label_at) : 0;
  CsvTexts out;
  std::vector<std::string> labels;
  while (pending || next()) {
    if (!pending) {
      const size_t found = split_line(line, options.delimiter, source, lines.number(), fields, columns + 1);
      NEUTRINO_CHECK_IO(found == columns, "{}:{}: expected {} fields, got {}", source,
                        lines.number(), columns, found);
    }
    pending = false;
    out.texts.push_back(unescape(fields[text_col]));
    if (labelled) {
      labels.push_back(unescape(fields[label_col]));
      NEUTRINO_CHECK_IO(!labels.back().empty(), "{}:{}: empty label", source, lines.number());
    }
  }
  NEUTRINO_CHECK_IO(!out.texts.empty(), "{}: no data rows", source);
  if (!labelled) return out;
  std::vector<int64_t> ids(labels.size());
  bool whole = true;
  for (size_t i = 0; i < labels.size() && whole; ++i) whole = parse_int(labels[i], ids[i]);
  if (!whole) {
    out.class_names = labels;
    std::sort(out.class_names.begin(), out.class_names.end());
    out.class_names.erase(std::unique(out.class_names.begin(), out.class_names.end()), out.class_names.end());
    for (size_t i = 0; i < labels.size(); ++i) {
      ids[i] = std::lower_bound(out.class_names.begin(), out.class_names.end(), labels[i]) -
               out.class_names.begin();
    }
  }
  out.labels = Tensor::from_vector(ids, {static_cast<int64_t>(ids.size())});
  return out;
}

CsvTexts read_csv_texts(const std::string& path, const CsvTextOptions& options) {
  const std::vector<uint8_t> bytes = io::read_file(path);
  return read_csv_texts_from(std::string(bytes.begin(), bytes.end()), path, options);
}

}  // namespace neutrino::data
