// Hostile inputs: files and arguments made to mislead or hurt the readers and the CLI. Each must be
// refused with one line naming the file (or the option), or be read exactly as documented; never
// a crash, a hang, a huge allocation or a silent guess. The bad files are built here.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "neutrino/core/random.h"
#include "neutrino/data/csv.h"
#include "neutrino/data/image.h"
#include "neutrino/data/npy.h"
#include "neutrino/nn/layers.h"
#include "neutrino/train/model_file.h"
#include "neutrino/train/sequential.h"
#include "test_util.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fs = std::filesystem;
using namespace neutrino;
using neutrino::testing::CliResult;
using neutrino::testing::expect_error;
using neutrino::testing::run_cli;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("neutrino_hostile_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A small untrained model file taking samples of `input_shape` and giving `classes` scores.
std::string save_test_model(const fs::path& dir, const Shape& input_shape, int64_t classes = 3) {
  manual_seed(7);
  train::Sequential model({nn::Flatten({.input_shape = input_shape}), nn::Dense(classes)});
  model.info.extra["compile"] = R"({"loss": "sparse_categorical_crossentropy", "metrics": []})";
  const std::string path = (dir / "model.safetensors").string();
  train::save_model(path, model);
  return path;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

}  // namespace

// --- 1. A numeric CSV without a header: every row is data -----------------------------------

TEST(HostileCsv, DetectHeaderReadsAllNumericFirstRowAsData) {
  const data::CsvOptions detect{.detect_header = true};
  data::CsvData d = data::read_csv_text("0,1\n1,1\n1,0\n", "x.csv", detect);
  EXPECT_EQ(d.features.size(0), 3);
  EXPECT_TRUE(d.feature_names.empty());
  d = data::read_csv_text("a,b\n0,1\n1,1\n", "x.csv", detect);
  EXPECT_EQ(d.features.size(0), 2);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"a", "b"}));
  // One name among numbers still makes a header; quoted numbers are numbers, as in data rows.
  EXPECT_EQ(data::read_csv_text("1,b\n0,1\n", "x.csv", detect).features.size(0), 1);
  EXPECT_EQ(data::read_csv_text("\"1\",\"2\"\n0,1\n", "x.csv", detect).features.size(0), 2);
  // detect_header follows skip_rows, and blank lines are skipped first.
  const data::CsvOptions skip{.skip_rows = 1, .detect_header = true};
  EXPECT_EQ(data::read_csv_text("count\n\n5,6\n7,8\n", "x.csv", skip).features.size(0), 2);
}

TEST(HostileCli, PredictOnHeaderlessCsvPrintsEveryRow) {
  const fs::path dir = temp_dir("csv_header");
  const std::string model = save_test_model(dir, {2});
  const std::string csv = (dir / "x.csv").string();
  write(csv, "0,1\n1,1\n1,0\n");
  CliResult r = run_cli("predict " + model + " --input " + csv);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 3u) << r.output;
  EXPECT_NE(r.output.find("2: "), std::string::npos) << r.output;

  // Each printed row is the model's output for that row of the file.
  ASSERT_EQ(run_cli("predict " + model + " --input " + csv + " --output " +
                    (dir / "out.npy").string()).code, 0);
  const Tensor out = data::read_npy((dir / "out.npy").string());
  const Tensor expected = train::load_model(model).predict(
      Tensor::from_vector(std::vector<float>{0, 1, 1, 1, 1, 0}, {3, 2}));
  ASSERT_EQ(out.shape(), expected.shape());
  EXPECT_EQ(out.to_vector<float>(), expected.to_vector<float>());

  r = run_cli("predict " + model + " --input " + csv + " --header");  // forced: 2 data rows
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 2u) << r.output;
  write(csv, "x1,x2\n0,1\n");
  r = run_cli("predict " + model + " --input " + csv);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "\n"), 1u) << r.output;
  r = run_cli("predict " + model + " --input " + csv + " --no-header");  // "x1" is no number
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("x.csv:1"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("predict " + model + " --input " + csv + " --header --no-header").code, 2);
}
