// Text datasets: records of UTF-8 text, each labelled by the file it came from, for text
// classification (and, unlabelled, for language modelling).
//
// Config forms (load_dataset_config in datasets.h hands them here):
//   {"fortunes": [computers, science, ...]}  Debian's fortunes packages (/usr/share/games/fortunes):
//       each topic file is one class, in the order given. NEUTRINO_DATA_DIR replaces the
//       directory, as for the other built-in sets.
//   {"text_files": [PATH, ...], "format": "fortune" | "lines"}  any text files, one class per file
//       (named by the file's stem); "lines" (the default) reads one record per non-empty line.
//   {"csv": PATH, "text": COLUMN, "label": COLUMN}  a text column of a CSV/TSV ("delimiter"),
//       labels as text (sorted class names) or whole numbers.
// Every form takes "split": "all" (the default), "train", "validation" or "test", with
// "validation" and "test" the fractions of records held out (0.1 each by default) and "seed" (0):
// the split is by record, from a Fisher-Yates shuffle with Generator(seed), so the same spec gives
// the same records on every machine; test records come first in the shuffled order, then
// validation, then train. "stratify": true shuffles and cuts each class (file) on its own, so
// each class keeps its share in every split and a file's split is the same whatever other files
// the dataset holds (a GPT pre-trained on all fortune files, then a classifier on six of them).
//
// Records: fortune files are split on lines that hold only "%"; ANSI escape sequences (colours,
// in fortunes-zh) are removed; surrounding whitespace is trimmed and empty records dropped.
// Invalid UTF-8 is refused with the file and byte offset; an empty dataset is refused.
// Chinese fortunes (fortunes-zh) are the topics chinese, song100 and tang300.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "neutrino/data/datasets.h"

namespace neutrino::io {
class ConfigReader;
}

namespace neutrino::data {

// The records of one file: a fortune file's (split on "%" lines) or a text file's lines, cleaned
// as above (text_records.h reads them).
std::vector<std::string> read_fortune_records(const std::string& path);
std::vector<std::string> read_text_lines(const std::string& path);

// One of the config forms above (`kind` is "fortunes", "text_files" or "csv"), read from `reader`
// (which the caller finishes); errors name the reader's path.
Dataset load_text_dataset(io::ConfigReader& reader, const std::string& kind);

// The fortune topics of the built-in text data: the files of the fortunes directory.
std::string fortunes_dir();

}  // namespace neutrino::data
