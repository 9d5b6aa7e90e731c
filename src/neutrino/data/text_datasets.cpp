#include "neutrino/data/text_datasets.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <fmt/ranges.h>

#include "neutrino/core/random.h"
#include "neutrino/data/csv.h"
#include "neutrino/data/text_records.h"
#include "neutrino/data/utf8.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/file_io.h"

namespace neutrino::data {

namespace fs = std::filesystem;

namespace {

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Records without surrounding whitespace; empty ones dropped.
std::vector<std::string> trimmed(const std::vector<std::string>& records) {
  std::vector<std::string> out;
  for (const std::string& r : records) {
    const std::string_view t = trim(r);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

// Adds the records of one class.
void add_class(Dataset& d, const std::string& name, const std::vector<std::string>& records,
               const std::string& source) {
  NEUTRINO_CHECK_VALUE(!records.empty(), "{}: no records (an empty file?)", source);
  const auto label = static_cast<int64_t>(d.class_names.size());
  d.class_names.push_back(name);
  d.texts.insert(d.texts.end(), records.begin(), records.end());
  std::vector<int64_t> labels = d.y.defined() ? d.y.to_vector<int64_t>() : std::vector<int64_t>{};
  labels.insert(labels.end(), records.size(), label);
  d.y = Tensor::from_vector(labels, {static_cast<int64_t>(labels.size())});
}

struct SplitSpec {
  std::string split = "all";
  double validation = 0.1, test = 0.1;
  uint64_t seed = 0;
  bool stratify = false;
};

SplitSpec read_split(io::ConfigReader& r) {
  SplitSpec s;
  s.split = r.get_string("split", s.split);
  NEUTRINO_CHECK_VALUE(s.split == "all" || s.split == "train" || s.split == "validation" ||
                           s.split == "test",
                       "{}: expected all, train, validation or test, got \"{}\"", r.path_of("split"),
                       s.split);
  s.validation = r.get_double("validation", s.validation, 0.0, 1.0);
  s.test = r.get_double("test", s.test, 0.0, 1.0);
  NEUTRINO_CHECK_VALUE(s.validation + s.test < 1.0, "{}: validation ({}) and test ({}) leave no "
                       "training records", r.path(), s.validation, s.test);
  s.seed = static_cast<uint64_t>(r.get_int("seed", 0, 0));
  s.stratify = r.get_bool("stratify", s.stratify);
  return s;
}

// The positions [begin, end) of `members` (record indices) that one split keeps: a Fisher-Yates
// shuffle with Generator(seed), then test first, validation next, train last.
void select_split(std::vector<int64_t> members, const SplitSpec& s, std::vector<int64_t>& kept) {
  const auto n = static_cast<int64_t>(members.size());
  Generator gen(s.seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(members[static_cast<size_t>(i)], members[gen.below(static_cast<uint64_t>(i + 1))]);
  }
  const auto n_test = static_cast<int64_t>(static_cast<double>(n) * s.test);
  const auto n_val = static_cast<int64_t>(static_cast<double>(n) * s.validation);
  int64_t begin = 0, end = n_test;
  if (s.split == "validation") begin = n_test, end = n_test + n_val;
  if (s.split == "train") begin = n_test + n_val, end = n;
  kept.insert(kept.end(), members.begin() + begin, members.begin() + end);
}

// Keeps one split's records, in shuffled order (see the header). Stratified, each class is
// shuffled and cut on its own, so a class's split does not depend on which other classes the
// dataset holds (a language model pre-trained on many fortune files never sees the test records
// of a classifier over a few of them).
void keep_split(Dataset& d, const SplitSpec& s) {
  if (s.split == "all") return;
  const auto n = static_cast<int64_t>(d.texts.size());
  const std::vector<int64_t> labels = d.y.to_vector<int64_t>();
  std::vector<int64_t> kept;
  if (s.stratify) {
    std::vector<std::vector<int64_t>> by_class;
    for (int64_t i = 0; i < n; ++i) {
      const auto label = static_cast<size_t>(std::max<int64_t>(labels[static_cast<size_t>(i)], 0));
      if (by_class.size() <= label) by_class.resize(label + 1);
      by_class[label].push_back(i);
    }
    for (const std::vector<int64_t>& members : by_class) select_split(members, s, kept);
  } else {
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    select_split(std::move(all), s, kept);
  }
  NEUTRINO_CHECK_VALUE(!kept.empty(), "{}: the {} split has no records ({} in all)", d.source,
                       s.split, n);
  std::vector<std::string> texts;
  std::vector<int64_t> kept_labels;
  for (const int64_t i : kept) {
    texts.push_back(std::move(d.texts[static_cast<size_t>(i)]));
    kept_labels.push_back(labels[static_cast<size_t>(i)]);
  }
  d.texts = std::move(texts);
  d.y = Tensor::from_vector(kept_labels, {static_cast<int64_t>(kept_labels.size())});
}

std::vector<std::string> string_list(io::ConfigReader& r, const std::string& key) {
  const std::vector<std::string> items = r.get_strings(key, {});
  NEUTRINO_CHECK_VALUE(!items.empty(), "{}: expected a list of at least one name", r.path_of(key));
  return items;
}

Dataset load_fortunes(io::ConfigReader& r) {
  const std::vector<std::string> topics = string_list(r, "fortunes");
  const std::string dir = fortunes_dir();
  Dataset d;
  d.source = "fortunes:" + fmt::format("{}", fmt::join(topics, ","));
  for (const std::string& topic : topics) {
    NEUTRINO_CHECK_VALUE(!topic.empty() && topic.find("..") == std::string::npos &&
                             topic.front() != '/',
                         "{}: \"{}\" is not a fortune topic name", r.path_of("fortunes"), topic);
    const std::string path = (fs::path(dir) / topic).string();
    std::error_code ec;
    NEUTRINO_CHECK_IO(fs::is_regular_file(path, ec),
                      "{}: no fortune file \"{}\" in {} (install the Debian packages fortunes and "
                      "fortunes-zh: apt-get install fortunes fortunes-zh)",
                      r.path_of("fortunes"), topic, dir);
    add_class(d, topic, read_fortune_records(path), path);
  }
  return d;
}

Dataset load_text_files(io::ConfigReader& r) {
  const std::vector<std::string> files = string_list(r, "text_files");
  const std::string format = r.get_string("format", "lines");
  NEUTRINO_CHECK_VALUE(format == "lines" || format == "fortune",
                       "{}: expected lines or fortune, got \"{}\"", r.path_of("format"), format);
  const std::string label = r.get_string("label", "file");
  NEUTRINO_CHECK_VALUE(label == "file", "{}: the only label for text files is \"file\" (each "
                       "file one class), got \"{}\"", r.path_of("label"), label);
  Dataset d;
  d.source = fmt::format("{}", fmt::join(files, ","));
  for (const std::string& file : files) {
    add_class(d, fs::path(file).stem().string(),
              format == "fortune" ? read_fortune_records(file) : read_text_lines(file), file);
  }
  return d;
}

Dataset load_text_csv(io::ConfigReader& r) {
  const std::string file = r.get_string("csv", "");
  NEUTRINO_CHECK_VALUE(!file.empty(), "{}: expected a file path", r.path_of("csv"));
  CsvTextOptions o;
  const auto column = [&](const std::string& key, const std::string& fallback) {
    if (!r.has(key)) return fallback;
    const nlohmann::json& v = r.get_raw(key);
    NEUTRINO_CHECK_VALUE(v.is_string() || v.is_number_integer(),
                         "{}: expected a column name or index, got {}", r.path_of(key), v.dump());
    return v.is_string() ? v.get<std::string>() : std::to_string(v.get<int64_t>());
  };
  o.text = column("text", "");
  NEUTRINO_CHECK_VALUE(!o.text.empty(), "{}: missing required field", r.path_of("text"));
  o.label = column("label", "-1");
  o.header = r.get_bool("header", true);
  const std::string delimiter = r.get_string("delimiter", ",");
  NEUTRINO_CHECK_VALUE(delimiter.size() == 1 || delimiter == "\\t",
                       "{}: expected one character, got \"{}\"", r.path_of("delimiter"), delimiter);
  o.delimiter = delimiter == "\\t" ? '\t' : delimiter[0];
  CsvTexts csv = read_csv_texts(file, o);
  for (size_t i = 0; i < csv.texts.size(); ++i) {
    check_utf8(csv.texts[i], fmt::format("{}: text of data row {}", file, i + 1));
  }
  Dataset d;
  d.source = file;
  d.texts = std::move(csv.texts);
  d.y = csv.labels;
  d.class_names = std::move(csv.class_names);
  return d;
}

}  // namespace

std::string fortunes_dir() {
  const char* env = std::getenv("NEUTRINO_DATA_DIR");
  return env != nullptr && env[0] != '\0' ? std::string(env) : std::string("/usr/share/games/fortunes");
}

std::vector<std::string> read_fortune_records(const std::string& path) {
  return trimmed(read_text_records(path, TextFormat::kFortune));
}

std::vector<std::string> read_text_lines(const std::string& path) {
  return trimmed(read_text_records(path, TextFormat::kLines));
}

Dataset load_text_dataset(io::ConfigReader& reader, const std::string& kind) {
  Dataset d = kind == "fortunes" ? load_fortunes(reader)
              : kind == "text_files" ? load_text_files(reader)
                                     : load_text_csv(reader);
  const SplitSpec split = read_split(reader);
  NEUTRINO_CHECK_VALUE(!d.texts.empty(), "{}: no text records", reader.path());
  if (split.split != "all") d.source += ":" + split.split;
  keep_split(d, split);
  return d;
}

}  // namespace neutrino::data
