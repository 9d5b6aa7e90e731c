#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/csv.h"

namespace neutrino::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

CsvData parse(const std::string& text, const CsvOptions& options = {}) {
  return read_csv_text(text, "test.csv", options);
}

// The IOError message read_csv_text throws for `text`; fails the test when it does not throw.
std::string error_of(const std::string& text, const CsvOptions& options = {}) {
  try {
    parse(text, options);
  } catch (const IOError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no IOError for: " << text.substr(0, 80);
  return "";
}

std::vector<float> features(const CsvData& d) { return d.features.to_vector<float>(); }
std::vector<int64_t> int_labels(const CsvData& d) { return d.labels.to_vector<int64_t>(); }

constexpr const char* kSmall =
    "a,b,y\n"
    "1,2,0\n"
    "3.5,-4,1\n";

TEST(CsvRead, LabelByName) {
  const CsvData d = parse(kSmall, {.label = "y"});
  EXPECT_EQ(d.features.shape(), (Shape{2, 2}));
  EXPECT_EQ(d.features.dtype(), DType::kFloat32);
  EXPECT_EQ(features(d), (std::vector<float>{1, 2, 3.5f, -4}));
  EXPECT_EQ(d.labels.dtype(), DType::kInt64);
  EXPECT_EQ(int_labels(d), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.label_name, "y");
  EXPECT_TRUE(d.class_names.empty());
}

TEST(CsvRead, LabelByIndexAndNegativeIndex) {
  const CsvData first = parse(kSmall, {.label = "0"});
  EXPECT_EQ(first.label_name, "a");
  EXPECT_EQ(first.feature_names, (std::vector<std::string>{"b", "y"}));
  EXPECT_EQ(first.labels.dtype(), DType::kFloat32);  // 3.5 is not whole
  EXPECT_EQ(first.labels.to_vector<float>(), (std::vector<float>{1, 3.5f}));
  EXPECT_EQ(features(first), (std::vector<float>{2, 0, -4, 1}));

  const CsvData last = parse(kSmall, {.label = "-1"});
  EXPECT_EQ(last.label_name, "y");
  EXPECT_EQ(int_labels(last), (std::vector<int64_t>{0, 1}));
  const CsvData middle = parse(kSmall, {.label = "-2"});
  EXPECT_EQ(middle.label_name, "b");
}

TEST(CsvRead, NameMatchWinsOverIndex) {
  const CsvData d = parse("x,0\n5,6\n", {.label = "0"});
  EXPECT_EQ(d.label_name, "0");
  EXPECT_EQ(int_labels(d), (std::vector<int64_t>{6}));
}

TEST(CsvRead, NoHeader) {
  const CsvData d = parse("1,2,3\n4,5,6\n", {.header = false, .label = "1"});
  EXPECT_EQ(features(d), (std::vector<float>{1, 3, 4, 6}));
  EXPECT_EQ(int_labels(d), (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(d.feature_names.empty());
  EXPECT_TRUE(d.label_name.empty());
}

TEST(CsvRead, NoLabel) {
  const CsvData d = parse(kSmall);
  EXPECT_EQ(d.features.shape(), (Shape{2, 3}));
  EXPECT_FALSE(d.labels.defined());
  EXPECT_EQ(d.feature_names.size(), 3u);
}

TEST(CsvRead, QuotedHeaderNames) {
  const CsvData d = parse("\"petal, length\", \"say \"\"hi\"\"\" ,\"\"\n1,2,3\n", {.label = "-1"});
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"petal, length", "say \"hi\""}));
  EXPECT_EQ(d.label_name, "");
  const CsvData by_name = parse("\"a b\",c\n1,2\n", {.label = "a b"});
  EXPECT_EQ(by_name.label_name, "a b");
}

TEST(CsvRead, TextLabelsBecomeClassIndices) {
  const CsvData d =
      parse("x,species\n1,virginica\n2,setosa\n3,\"versi,color\"\n4,setosa\n5, virginica \n",
            {.label = "species"});
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa", "versi,color", "virginica"}));
  EXPECT_EQ(d.labels.dtype(), DType::kInt64);
  EXPECT_EQ(int_labels(d), (std::vector<int64_t>{2, 0, 1, 0, 2}));
  // One non-numeric cell makes the whole column text, numbers included.
  const CsvData mixed = parse("x,y\n1,10\n2,cat\n3,9\n", {.label = "y"});
  EXPECT_EQ(mixed.class_names, (std::vector<std::string>{"10", "9", "cat"}));
  EXPECT_EQ(int_labels(mixed), (std::vector<int64_t>{0, 2, 1}));
}

TEST(CsvRead, IntegerVersusFloatLabels) {
  const CsvData ints = parse("x,y\n1,3\n2,-7\n3,2.0\n4,+5\n", {.label = "y"});
  EXPECT_EQ(ints.labels.dtype(), DType::kInt64);
  EXPECT_EQ(int_labels(ints), (std::vector<int64_t>{3, -7, 2, 5}));
  const CsvData big = parse("x,y\n1,9007199254740993\n", {.label = "y"});  // 2^53 + 1, exact
  EXPECT_EQ(int_labels(big), (std::vector<int64_t>{9007199254740993}));
  const CsvData floats = parse("x,y\n1,3\n2,0.25\n", {.label = "y"});
  EXPECT_EQ(floats.labels.dtype(), DType::kFloat32);
  EXPECT_EQ(floats.labels.to_vector<float>(), (std::vector<float>{3, 0.25f}));
}

TEST(CsvRead, CrlfBomBlankLinesAndSpaces) {
  const CsvData d = parse(
      "\xEF\xBB\xBF"
      "a,b\r\n\r\n 1 ,\t2\r\n   \n3,4\r\n\n",
      {.label = "b"});
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"a"}));  // no BOM glued to "a"
  EXPECT_EQ(features(d), (std::vector<float>{1, 3}));
  EXPECT_EQ(int_labels(d), (std::vector<int64_t>{2, 4}));
  const CsvData no_final_newline = parse("a,b\n1,2");
  EXPECT_EQ(no_final_newline.features.shape(), (Shape{1, 2}));
}

TEST(CsvRead, DelimiterAndSkipRows) {
  const CsvData d = parse("junk line\nmore, junk\na;b\n1;2.5e1\n",
                          {.label = "a", .delimiter = ';', .skip_rows = 2});
  EXPECT_EQ(features(d), (std::vector<float>{25}));
  const CsvData tabs = parse("a\tb\n1\t2\n", {.delimiter = '\t'});
  EXPECT_EQ(features(tabs), (std::vector<float>{1, 2}));
}

// Plain rows take a fast path and rows with spaces, '+' or quotes the general one; both must
// give the same values.
TEST(CsvRead, PlainAndSpacedRowsAgree) {
  std::string text = "a,label,b\n";
  for (int i = 0; i < 3; ++i) text += "1.25,cat,-3e2\n 1.25 ,cat\t, -3e2 \n+1.25,\"cat\",-300\n";
  const CsvData d = parse(text, {.label = "label"});
  ASSERT_EQ(d.features.shape(), (Shape{9, 2}));
  for (int64_t row = 0; row < 9; ++row) {
    EXPECT_EQ(d.features.at({row, 0}), 1.25);
    EXPECT_EQ(d.features.at({row, 1}), -300.0);
  }
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat"}));
  EXPECT_EQ(int_labels(d), std::vector<int64_t>(9, 0));
}

TEST(CsvRead, LongLines) {
  constexpr int kColumns = 100000;
  std::string text;
  for (int row = 0; row < 3; ++row) {
    for (int j = 0; j < kColumns; ++j) text += (j == 0 ? "" : ",") + std::to_string(j % 7);
    text += '\n';
  }
  const CsvData d = parse(text, {.header = false, .label = "-1"});
  EXPECT_EQ(d.features.shape(), (Shape{3, kColumns - 1}));
  EXPECT_EQ(d.features.at({2, 8}), 1.0);
  const CsvData long_cell = parse("a\n" + std::string(100000, '0') + "1\n");
  EXPECT_EQ(features(long_cell), (std::vector<float>{1}));
}

TEST(CsvRead, FileAndMissingFile) {
  const fs::path path = fs::temp_directory_path() / ("neutrino_csv_" + std::to_string(getpid()));
  std::ofstream(path) << kSmall;
  const CsvData d = read_csv(path.string(), {.label = "y"});
  EXPECT_EQ(d.features.shape(), (Shape{2, 2}));
  fs::remove(path);
  try {
    read_csv(path.string());
    FAIL() << "no error for a missing file";
  } catch (const IOError& e) {
    EXPECT_THAT(e.what(), StartsWith(path.string() + ": cannot open"));
  }
}

TEST(CsvBadInput, NonNumericCell) {
  const std::string text = "sepal,width,petal length\n1,2,3\n\n4,5,abc\n";
  EXPECT_EQ(error_of(text), "test.csv:4: column 3 (\"petal length\"): \"abc\" is not a number");
  EXPECT_THAT(error_of("1,2\n3,1.5x\n", {.header = false}),
              StartsWith("test.csv:2: column 2: \"1.5x\" is not a number"));
  EXPECT_THAT(error_of("a,b\n1,\n"), HasSubstr(":2: column 2 (\"b\"): empty cell"));
  EXPECT_THAT(error_of("a,b\n1,\"1\"\"\"\n"), HasSubstr(":2: column 2 (\"b\"): \"1\\\"\" is not"));
  EXPECT_THAT(error_of("a\n1e999\n"), HasSubstr(":2: column 1 (\"a\"): \"1e999\" is out of"));
  EXPECT_THAT(error_of("a\n1e300\n"), HasSubstr("out of the float32 range"));
  // skip_rows and the header count as physical lines.
  EXPECT_THAT(error_of("3,2\nx,y\n1,2\nq,2\n", {.skip_rows = 1}),
              StartsWith("test.csv:4: column 1"));
}

TEST(CsvBadInput, NanAndInfCells) {
  for (const char* cell : {"nan", "NaN", "inf", "-inf", "Infinity", "+nan"}) {
    const std::string message = error_of(std::string("a,b\n1,2\n3,") + cell + "\n");
    EXPECT_THAT(message, StartsWith("test.csv:3: column 2 (\"b\"): ")) << cell;
    EXPECT_THAT(message, HasSubstr("is not finite")) << cell;
  }
  EXPECT_THAT(error_of("a,y\n1,cat\n2,NaN\n", {.label = "y"}),
              StartsWith("test.csv:3: column 2 (\"y\"): \"NaN\" is not finite"));
  EXPECT_THAT(error_of("a,y\n1,cat\n2,\n", {.label = "y"}), HasSubstr(":3: column 2"));
}

TEST(CsvBadInput, NulByte) {
  using namespace std::string_literals;
  EXPECT_THAT(error_of("a,b\n1,2\n3,4\0\n"s), StartsWith("test.csv:3: column 2: NUL byte"));
  EXPECT_THAT(error_of("\0a,b\n"s), StartsWith("test.csv:1: column 1: NUL byte"));
  // Also in a skipped row, and as UTF-16 text would have it.
  EXPECT_THAT(error_of("x\0\na\n1\n"s, {.skip_rows = 1}), StartsWith("test.csv:1: column 1"));
}

TEST(CsvBadInput, RaggedRows) {
  EXPECT_EQ(error_of("a,b,c\n1,2,3\n4,5\n"),
            "test.csv:3: expected 3 fields (as in the header on line 1), found 2");
  EXPECT_EQ(error_of("1,2\n\n3,4,5\n", {.header = false}),
            "test.csv:3: expected 2 fields (as in the first row on line 1), found 3");
}

TEST(CsvBadInput, EmptyOrHeaderOnly) {
  EXPECT_THAT(error_of(""), StartsWith("test.csv: empty file"));
  EXPECT_THAT(error_of("\xEF\xBB\xBF\r\n\n  \n"), StartsWith("test.csv: empty file"));
  EXPECT_THAT(error_of("", {.header = false}), StartsWith("test.csv: empty file"));
  EXPECT_THAT(error_of("150,4\n", {.skip_rows = 1}), HasSubstr("after skipping 1 rows"));
  EXPECT_EQ(error_of("a,b\n\n"), "test.csv:1: no data rows after the header");
}

// More cells than the text could hold: refused by the row check, never by allocating
// rows x columns up front.
TEST(CsvBadInput, WideHeaderShortRows) {
  std::string text(999, ',');
  text += '\n';
  for (int i = 0; i < 100000; ++i) text += "1\n";
  EXPECT_EQ(error_of(text),
            "test.csv:2: expected 1000 fields (as in the header on line 1), found 1");
}

TEST(CsvBadInput, Directory) {
  try {
    read_csv(fs::temp_directory_path().string());
    FAIL() << "no error for a directory";
  } catch (const IOError& e) {
    EXPECT_THAT(e.what(), HasSubstr(": not a regular file (a directory)"));
  }
}

TEST(CsvBadInput, LabelColumn) {
  EXPECT_EQ(error_of(kSmall, {.label = "z"}),
            "test.csv:1: no label column named \"z\"; the columns are: \"a\", \"b\", \"y\"");
  EXPECT_THAT(error_of(kSmall, {.label = "3"}), HasSubstr("index 3 is out of range for 3"));
  EXPECT_THAT(error_of(kSmall, {.label = "-4"}), HasSubstr("index -4 is out of range"));
  EXPECT_THAT(error_of(kSmall, {.label = "99999999999999999999"}), HasSubstr("no label column"));
  EXPECT_THAT(error_of("1,2\n", {.header = false, .label = "y"}), HasSubstr("no column names"));
  EXPECT_THAT(error_of("a,a\n1,2\n", {.label = "a"}), HasSubstr("appears 2 times"));
  EXPECT_THAT(error_of("y\n1\n", {.label = "y"}), HasSubstr("no feature columns"));
}

TEST(CsvBadInput, Quotes) {
  EXPECT_THAT(error_of("\"a,b\n1\n"), StartsWith("test.csv:1: column 1: a quoted field is not"));
  EXPECT_THAT(error_of("a,\"b\"x\n1,2\n"), StartsWith("test.csv:1: column 2: unexpected \"x\""));
}

TEST(CsvBadInput, Options) {
  EXPECT_THROW(parse(kSmall, {.delimiter = '"'}), ValueError);
  EXPECT_THROW(parse(kSmall, {.skip_rows = -1}), ValueError);
}

// scikit-learn's bundled data files: a count line ("150,4,setosa,versicolor,virginica"), no
// header, the class index last.
void check_sklearn(const std::string& name, int64_t rows, int64_t columns,
                   const std::vector<int64_t>& class_counts) {
  const std::string path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/" + name;
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent (apt-get install python3-sklearn)";
  const CsvData d = read_csv(path, {.header = false, .label = "-1", .skip_rows = 1});
  EXPECT_EQ(d.features.shape(), (Shape{rows, columns}));
  ASSERT_EQ(d.labels.dtype(), DType::kInt64);
  std::vector<int64_t> counts(class_counts.size());
  for (int64_t label : int_labels(d)) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, static_cast<int64_t>(counts.size()));
    ++counts[static_cast<size_t>(label)];
  }
  EXPECT_EQ(counts, class_counts);
}

TEST(CsvSklearn, Iris) {
  check_sklearn("iris.csv", 150, 4, {50, 50, 50});
  if (HasFatalFailure() || IsSkipped()) return;
  const CsvData d = read_csv("/usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv",
                             {.header = false, .label = "-1", .skip_rows = 1});
  EXPECT_EQ(d.features.at({0, 0}), static_cast<double>(5.1f));
}
TEST(CsvSklearn, BreastCancer) { check_sklearn("breast_cancer.csv", 569, 30, {212, 357}); }
TEST(CsvSklearn, Wine) { check_sklearn("wine_data.csv", 178, 13, {59, 71, 48}); }

}  // namespace
}  // namespace neutrino::data
