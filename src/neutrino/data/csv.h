// A CSV reader for tabular datasets: numeric feature columns plus an optional label column.
//
// Policy (what is accepted, what is refused; every refusal is a neutrino::IOError whose message
// starts with the path or source name, and names the line and column where there is one):
// - Encoding: bytes, read as UTF-8. A UTF-8 byte order mark at the very start is skipped. A NUL
//   byte anywhere (skipped rows included) is refused, naming its line and column: it means a
//   binary or UTF-16 file, never a CSV.
// - Lines: LF and CRLF ends are both accepted. Blank lines (empty or only spaces/tabs) are skipped
//   anywhere, so a trailing newline is fine. Lines may be of any length. Line numbers in messages
//   are 1-based physical lines of the file, counting skipped rows, the header and blank lines.
// - Fields: split on `delimiter`. A field may be quoted ("a,b", with "" for a quote); a quoted
//   field must close on the same line (no embedded line breaks, so line numbers stay physical),
//   and only spaces/tabs may follow the closing quote. Spaces and tabs around a field are
//   trimmed. A quote inside an unquoted field is kept as a literal character.
// - Header: with `header`, the first row after `skip_rows` names the columns and fixes their count;
//   without it, the first data row fixes the count, and feature_names and label_name stay empty.
//   With `detect_header`, a first row of numbers only is data, any other first row the header.
// - Columns: at most kMaxCsvColumns. A row is split only as far as one field past the count it
//   must have, so a line of millions of fields costs no more memory than its text.
// - Rows: each must have exactly that many fields, else the error names the line, the expected
//   and the actual count. A dataset with no data rows (an empty file, a header only) is refused,
//   and so is one whose only column is the label.
// - Numbers: parsed with std::from_chars as double (locale-independent), one leading '+' allowed,
//   the whole trimmed field must match ("1.5x" and "" are refused), then rounded to float32, which
//   is what NumPy/pandas give for float64-parsed data cast to float32. A value beyond float32's
//   range is refused. NaN and infinity ("nan", "inf", "-inf", "infinity", any case) are refused:
//   a non-finite input would silently poison training, and a missing value needs a decision the
//   reader cannot make. A bad feature cell reads like
//   `iris.csv:17: column 3 ("petal length"): "abc" is not a number`.
// - Label: `label` picks the column by header name (an exact name match wins) or by a decimal
//   index, negative counting from the end ("-1" = last). An unknown name lists the available
//   ones; a name given twice in the header is ambiguous and refused. When every label cell is a
//   number, labels are int64 if all are whole numbers (exact up to 2^53; integer text exact to
//   int64), else float32. When any label cell is not a number, the whole column is text:
//   class_names are the sorted distinct strings (byte order) and labels hold int64 indices into
//   them. Empty label cells and NaN/inf labels are refused like features.
// Option errors (a negative skip_rows, a delimiter that is a quote, a line break or NUL) throw
// neutrino::ValueError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

// Wider files are refused: the header's names and one row's fields are held at once, and a
// 10 MB line of empty fields must not cost 200 MB of them. Far above any tabular dataset.
inline constexpr size_t kMaxCsvColumns = size_t{1} << 20;

struct CsvOptions {
  bool header = true;      // first row names the columns
  std::string label = "";  // label column by name, or by index as a decimal string ("0", "-1" =
                           // last); "" = no label
  char delimiter = ',';
  int64_t skip_rows = 0;  // rows to skip before the header (sklearn's data files start with a
                          // count line)
  // Decide `header` by content instead: the first row (after skip_rows) is data when every one
  // of its cells is a number, else it is the header. A header made only of numbers needs
  // detect_header = false and header = true.
  bool detect_header = false;
};

struct CsvData {
  Tensor features;  // float32 (rows, feature columns), in file order with the label column removed
  Tensor labels;    // int64 (rows) when every label is a whole number, else float32; undefined
                    // when there is no label
  std::vector<std::string> feature_names;  // from the header; empty without one
  std::string label_name;                  // from the header; empty without one or without a label
  std::vector<std::string> class_names;    // when the label column is text: the sorted distinct
                                           // strings, and labels hold their indices
};

// Reads the whole file at `path` into memory and parses it; errors start with `path`.
CsvData read_csv(const std::string& path, const CsvOptions& options = {});

// Parses CSV text held in memory; `source_name` starts every error message.
CsvData read_csv_text(const std::string& text, const std::string& source_name,
                      const CsvOptions& options = {});

// A text column (and a label column) of a CSV/TSV file, for text classification: the same
// lines, quoting and field rules as above, except that cells are kept as text. Columns by header
// name or index as `label` above; labels are int64 when every label cell is a whole number, else
// sorted class names with int64 indices into them. An empty label cell is refused.
struct CsvTextOptions {
  std::string text;          // required
  std::string label = "-1";  // "" = no label
  bool header = true;
  char delimiter = ',';
};
struct CsvTexts {
  std::vector<std::string> texts;
  Tensor labels;  // int64 (rows), undefined without a label column
  std::vector<std::string> class_names;
};
CsvTexts read_csv_texts(const std::string& path, const CsvTextOptions& options);
CsvTexts read_csv_texts_from(const std::string& text, const std::string& source_name,
                             const CsvTextOptions& options);

}  // namespace neutrino::data
