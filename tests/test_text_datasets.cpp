// Text datasets (data/text_datasets.h): the fortunes topics, text files, CSV text columns, the
// seeded split by record, and their errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "neutrino/core/error.h"
#include "neutrino/data/datasets.h"
#include "neutrino/data/pipeline.h"
#include "neutrino/data/text_datasets.h"
#include "neutrino/data/tokenizer.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

const std::string kFortunes = "/usr/share/games/fortunes";

std::string spec(const std::string& split, const std::string& topics = "\"love\", \"food\"") {
  return "{\"fortunes\": [" + topics + "], \"split\": \"" + split + "\"}";
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class TextDatasets : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("text_datasets");
    if (const char* env = std::getenv("NEUTRINO_DATA_DIR")) saved_env_ = env;
    ::unsetenv("NEUTRINO_DATA_DIR");
  }
  void TearDown() override {
    if (!saved_env_.empty()) ::setenv("NEUTRINO_DATA_DIR", saved_env_.c_str(), 1);
    fs::remove_all(dir_);
  }
  static bool have_fortunes() { return fs::exists(kFortunes + "/love"); }
  fs::path dir_;
  std::string saved_env_;
};

TEST_F(TextDatasets, FortuneRecordsSplitOnPercentLinesWithoutAnsiEscapes) {
  write(dir_ / "topic", "first line\nsecond\n%\n\x1b[1;31mred\x1b[0m words\n%\n  \n%\nlast");
  const auto records = data::read_fortune_records((dir_ / "topic").string());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0], "first line\nsecond");
  EXPECT_EQ(records[1], "red words");
  EXPECT_EQ(records[2], "last");
}

TEST_F(TextDatasets, TopicsAreClassesInTheGivenOrder) {
  if (!have_fortunes()) GTEST_SKIP() << "the fortunes package is not installed";
  const data::Dataset all = data::load_dataset_config(spec("all"), "data");
  EXPECT_EQ(all.class_names, (std::vector<std::string>{"love", "food"}));
  EXPECT_FALSE(all.x.defined());
  ASSERT_EQ(static_cast<int64_t>(all.texts.size()), all.y.size(0));
  const auto labels = all.y.to_vector<int64_t>();
  EXPECT_EQ(labels.front(), 0);
  EXPECT_EQ(labels.back(), 1);
}

TEST_F(TextDatasets, SplitsAreDisjointSeededAndCoverEveryRecord) {
  if (!have_fortunes()) GTEST_SKIP() << "the fortunes package is not installed";
  const data::Dataset all = data::load_dataset_config(spec("all"), "data");
  std::multiset<std::string> seen;
  size_t total = 0;
  for (const char* split : {"train", "validation", "test"}) {
    const data::Dataset part = data::load_dataset_config(spec(split), "data");
    EXPECT_EQ(part.texts, data::load_dataset_config(spec(split), "data").texts) << split;
    total += part.texts.size();
    seen.insert(part.texts.begin(), part.texts.end());
  }
  EXPECT_EQ(total, all.texts.size());
  EXPECT_EQ(seen, std::multiset<std::string>(all.texts.begin(), all.texts.end()));
  const data::Dataset test = data::load_dataset_config(spec("test"), "data");
  EXPECT_EQ(test.texts.size(), all.texts.size() / 10);
  const std::string other = "{\"fortunes\": [\"love\", \"food\"], \"split\": \"test\", \"seed\": 7}";
  EXPECT_NE(data::load_dataset_config(other, "data").texts, test.texts);
}

// Stratified, each file is cut on its own: a file's test records are the same whatever other
// files the dataset holds, and each file keeps its tenth in the test split.
TEST_F(TextDatasets, StratifiedSplitCutsEachFileOnItsOwn) {
  if (!have_fortunes()) GTEST_SKIP() << "the fortunes package is not installed";
  const auto stratified = [](const std::string& topics, const std::string& split) {
    return data::load_dataset_config("{\"fortunes\": [" + topics + "], \"split\": \"" + split +
                                         "\", \"stratify\": true}",
                                     "data");
  };
  const data::Dataset both = stratified("\"love\", \"food\"", "test");
  const data::Dataset love = stratified("\"love\"", "test");
  const data::Dataset food = stratified("\"food\"", "test");
  std::vector<std::string> joined = love.texts;
  joined.insert(joined.end(), food.texts.begin(), food.texts.end());
  EXPECT_EQ(both.texts, joined);
  const data::Dataset love_all = data::load_dataset_config("{\"fortunes\": [\"love\"]}", "data");
  EXPECT_EQ(love.texts.size(), love_all.texts.size() / 10);
  EXPECT_EQ(both.y.to_vector<int64_t>(), [&] {
    std::vector<int64_t> labels(love.texts.size(), 0);
    labels.insert(labels.end(), food.texts.size(), 1);
    return labels;
  }());
  std::multiset<std::string> seen;
  for (const char* split : {"train", "validation", "test"}) {
    const data::Dataset part = stratified("\"love\", \"food\"", split);
    seen.insert(part.texts.begin(), part.texts.end());
  }
  const data::Dataset all = data::load_dataset_config(spec("all"), "data");
  EXPECT_EQ(seen, std::multiset<std::string>(all.texts.begin(), all.texts.end()));
}

// fortunes-zh colours its titles and authors with ANSI escapes: the records come without them,
// and every record survives a character tokenizer byte for byte.
TEST_F(TextDatasets, ChineseFortunesAreCleanAndRoundTrip) {
  if (!fs::exists(kFortunes + "/tang300")) GTEST_SKIP() << "the fortunes-zh package is not installed";
  const data::Dataset d =
      data::load_dataset_config("{\"fortunes\": [\"tang300\", \"song100\"]}", "data");
  ASSERT_GT(d.texts.size(), 300u);
  const auto tokenizer = data::train_char_tokenizer(d.texts);
  for (const std::string& text : d.texts) {
    ASSERT_EQ(text.find('\x1b'), std::string::npos) << text;
    ASSERT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
  }
}

TEST_F(TextDatasets, TextFilesAndCsvTextColumns) {
  write(dir_ / "spam.txt", "buy now\n\ncheap pills\n");
  write(dir_ / "ham.txt", "see you at lunch\n");
  const std::string files = "{\"text_files\": [\"" + (dir_ / "spam.txt").string() + "\", \"" +
                            (dir_ / "ham.txt").string() + "\"]}";
  const data::Dataset d = data::load_dataset_config(files, "data");
  EXPECT_EQ(d.texts, (std::vector<std::string>{"buy now", "cheap pills", "see you at lunch"}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"spam", "ham"}));
  EXPECT_EQ(d.y.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1}));

  write(dir_ / "reviews.tsv", "id\treview\tstars\n1\t\"great, \"\"really\"\"\"\tgood\n2\tawful\tbad\n");
  const std::string csv = "{\"csv\": \"" + (dir_ / "reviews.tsv").string() +
                          "\", \"text\": \"review\", \"label\": \"stars\", \"delimiter\": \"\\\\t\"}";
  const data::Dataset r = data::load_dataset_config(csv, "data");
  EXPECT_EQ(r.texts, (std::vector<std::string>{"great, \"really\"", "awful"}));
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"bad", "good"}));
  EXPECT_EQ(r.y.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

TEST_F(TextDatasets, BadInputNamesTheFileOrField) {
  write(dir_ / "bad.txt", "fine\n\xff\xfe broken\n");
  expect_error<ValueError>(
      [&] {
        data::load_dataset_config("{\"text_files\": [\"" + (dir_ / "bad.txt").string() + "\"]}", "data.train");
      },
      {"data.train", "bad.txt", "invalid UTF-8", "byte 5"});
  write(dir_ / "empty.txt", "\n\n");
  expect_error<ValueError>(
      [&] {
        data::load_dataset_config("{\"text_files\": [\"" + (dir_ / "empty.txt").string() + "\"]}", "data");
      },
      {"empty.txt", "no records"});
  expect_error<IOError>([&] { data::load_dataset_config(spec("all", "\"no_such_topic\""), "data"); },
                        {"no_such_topic", "fortunes"});
  expect_error<ValueError>([&] { data::load_dataset_config(spec("tset"), "data"); },
                           {"data.split", "tset"});
  expect_error<ValueError>([&] { data::load_dataset_config(spec("all", "\"../etc\""), "data"); },
                           {"not a fortune topic"});
}

TEST_F(TextDatasets, TokenizeStepPadsTruncatesAndSurvivesSaving) {
  data::Pipeline pre;
  pre.tokenize({.kind = "char", .max_length = 4});
  pre.fit_text({"abc", "cab d"});
  const Tensor ids = pre.apply_text({"ab", "abcdcba", ""}, "texts");
  ASSERT_EQ(ids.shape(), (Shape{3, 4}));
  const auto v = ids.to_vector<int64_t>();
  EXPECT_NE(v[0], 0);
  EXPECT_EQ(v[2], 0);  // padding after "ab"
  EXPECT_NE(v[7], 0);  // cut after four characters
  EXPECT_EQ(v[8] + v[9] + v[10] + v[11], 0);
  const data::Pipeline restored = data::Pipeline::from_saved(pre.to_saved(), "m.safetensors");
  EXPECT_EQ(restored.apply_text({"ab", "abcdcba", ""}, "texts").to_vector<int64_t>(), v);
  // A damaged tokenizer in a model file is refused, naming the file.
  nlohmann::json saved = nlohmann::json::parse(pre.to_saved());
  saved[0]["tokenizer"] = "AAAA";
  expect_error<IOError>([&] { data::Pipeline::from_saved(saved.dump(), "m.safetensors"); },
                        {"m.safetensors", "tokenizer"});
  expect_error<ValueError>([&] { data::Pipeline().apply_text({"x"}, "input.txt"); },
                           {"input.txt", "no tokenize step"});
}

}  // namespace
}  // namespace neutrino
