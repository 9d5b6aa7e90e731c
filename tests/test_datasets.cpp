// Built-in datasets and data specs: the real Fashion-MNIST and sklearn files when their Debian
// packages are installed (skipped otherwise), small files written here for every file form and
// config form, and each error a user can hit (unknown names, bad splits, missing packages).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/datasets.h"
#include "neutrino/data/idx.h"
#include "neutrino/data/npy.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::data {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";
const std::string kSklearnDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

// Sets (or, with nullopt, unsets) NEUTRINO_DATA_DIR for one scope and restores it after, so the
// built-in tests read the packages' files whatever the caller's environment holds.
class DataDirEnv {
 public:
  explicit DataDirEnv(const std::optional<std::string>& value) {
    if (const char* old = std::getenv("NEUTRINO_DATA_DIR")) old_ = old;
    if (value) {
      ::setenv("NEUTRINO_DATA_DIR", value->c_str(), 1);
    } else {
      ::unsetenv("NEUTRINO_DATA_DIR");
    }
  }
  ~DataDirEnv() {
    if (old_) {
      ::setenv("NEUTRINO_DATA_DIR", old_->c_str(), 1);
    } else {
      ::unsetenv("NEUTRINO_DATA_DIR");
    }
  }
  DataDirEnv(const DataDirEnv&) = delete;
  DataDirEnv& operator=(const DataDirEnv&) = delete;

 private:
  std::optional<std::string> old_;
};

// Each test gets its own scratch directory.
class DatasetsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("neutrino_datasets_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string put(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  std::string put(const std::string& name, const Bytes& bytes) const {
    return put(name, std::string(bytes.begin(), bytes.end()));
  }
  std::string put_gz(const std::string& name, const Bytes& bytes) const {
    gzFile f = gzopen(path(name).c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(f);
    return path(name);
  }

  fs::path dir_;
};

// An IDX file of type `type` (0x08 u8, 0x0D f32) with the given dims and raw big-endian data.
Bytes idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Runs `fn`, which must throw E with every string of `parts` in its message.
template <class E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << parts.front() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
    }
  }
}

std::vector<int64_t> label_counts(const Tensor& y) {
  std::vector<int64_t> counts;
  const int64_t* p = y.data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (p[i] >= static_cast<int64_t>(counts.size())) counts.resize(static_cast<size_t>(p[i] + 1));
    EXPECT_GE(p[i], 0);
    ++counts[static_cast<size_t>(p[i])];
  }
  return counts;
}

float max_of(const Tensor& x) {
  const float* p = x.data<float>();
  return *std::max_element(p, p + x.numel());
}

bool have_fashion() { return fs::exists(kFashionDir + "/t10k-images-idx3-ubyte.gz"); }
bool have_sklearn() { return fs::exists(kSklearnDir + "/iris.csv"); }

TEST(DatasetsBuiltin, Names) {
  EXPECT_EQ(builtin_dataset_names(),
            (std::vector<std::string>{"fashion_mnist", "iris", "wine", "breast_cancer", "digits"}));
}

TEST(DatasetsBuiltin, FashionMnistTest) {
  if (!have_fashion()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  DataDirEnv env(std::nullopt);
  const Dataset ds = load_dataset("fashion_mnist:test");
  EXPECT_EQ(ds.source, "fashion_mnist:test");
  ASSERT_EQ(ds.x.dtype(), DType::kFloat32);
  EXPECT_EQ(ds.x.shape(), Shape({10000, 1, 28, 28}));
  ASSERT_EQ(ds.y.dtype(), DType::kInt64);
  EXPECT_EQ(ds.y.shape(), Shape({10000}));
  EXPECT_EQ(label_counts(ds.y), std::vector<int64_t>(10, 1000));  // the test set is balanced
  EXPECT_EQ(ds.y.data<int64_t>()[0], 9);  // the first test image is an ankle boot
  EXPECT_EQ(max_of(ds.x), 255.0f);        // raw pixels, not rescaled
  ASSERT_EQ(ds.class_names.size(), 10u);
  EXPECT_EQ(ds.class_names[0], "T-shirt/top");
  EXPECT_EQ(ds.class_names[9], "Ankle boot");
  // The u8 fast path must agree with the general IDX reader, pixel for pixel.
  const Tensor ref = read_idx(kFashionDir + "/t10k-images-idx3-ubyte.gz");
  const int64_t* r = ref.data<int64_t>();
  const float* x = ds.x.data<float>();
  int64_t mismatches = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) mismatches += static_cast<float>(r[i]) != x[i];
  EXPECT_EQ(mismatches, 0);
}

TEST(DatasetsBuiltin, FashionMnistTrainIsTheDefault) {
  if (!have_fashion()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  DataDirEnv env(std::nullopt);
  const auto start = std::chrono::steady_clock::now();
  const Dataset ds = load_dataset("fashion_mnist");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Not asserted: sanitizer builds are several times slower. Release takes about a second.
  std::printf("fashion_mnist:train loaded in %.2f s\n", seconds);
  EXPECT_EQ(ds.source, "fashion_mnist:train");
  EXPECT_EQ(ds.x.shape(), Shape({60000, 1, 28, 28}));
  EXPECT_EQ(label_counts(ds.y), std::vector<int64_t>(10, 6000));
}

TEST(DatasetsBuiltin, Sklearn) {
  if (!have_sklearn()) GTEST_SKIP() << "python3-sklearn is not installed";
  DataDirEnv env(std::nullopt);
  struct Expected {
    std::string name;
    Shape x_shape;
    std::vector<int64_t> counts;
    std::vector<std::string> class_names;
  };
  const std::vector<Expected> sets = {
      {"iris", {150, 4}, {50, 50, 50}, {"setosa", "versicolor", "virginica"}},
      {"wine", {178, 13}, {59, 71, 48}, {"class_0", "class_1", "class_2"}},
      {"breast_cancer", {569, 30}, {212, 357}, {"malignant", "benign"}},
      {"digits",
       {1797, 64},
       {178, 182, 177, 183, 181, 182, 181, 179, 174, 180},
       {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
  };
  for (const Expected& e : sets) {
    SCOPED_TRACE(e.name);
    const Dataset ds = load_dataset(e.name);
    EXPECT_EQ(ds.source, e.name);
    ASSERT_EQ(ds.x.dtype(), DType::kFloat32);
    EXPECT_EQ(ds.x.shape(), e.x_shape);
    ASSERT_EQ(ds.y.dtype(), DType::kInt64);
    EXPECT_EQ(ds.y.shape(), Shape({e.x_shape[0]}));
    EXPECT_EQ(label_counts(ds.y), e.counts);
    EXPECT_EQ(ds.class_names, e.class_names);
  }
  EXPECT_FLOAT_EQ(load_dataset("iris").x.at({0, 0}), 5.1f);
  EXPECT_EQ(max_of(load_dataset("digits").x), 16.0f);  // 8x8 images with values 0..16
}

TEST(DatasetsErrors, UnknownNameListsBuiltins) {
  expect_error<IOError>([] { load_dataset("mnist"); },
                        {"\"mnist\"", "fashion_mnist, iris, wine, breast_cancer, digits"});
  expect_error<IOError>([] { load_dataset("/no/such/file.csv"); },
                        {"/no/such/file.csv", "fashion_mnist, iris"});
  expect_error<ValueError>([] { load_dataset(""); }, {"empty"});
}

TEST(DatasetsErrors, BadSplits) {
  // Split checks come before any file is read, so these need neither package.
  expect_error<ValueError>([] { load_dataset("fashion_mnist:valid"); },
                           {"\"valid\"", "train, test"});
  expect_error<ValueError>([] { load_dataset("fashion_mnist:"); }, {"train, test"});
  expect_error<ValueError>([] { load_dataset("iris:train"); },
                           {"iris has no built-in splits", "\"iris\"", "validation_split"});
  expect_error<ValueError>([] { load_dataset("breast_cancer:test"); },
                           {"breast_cancer has no built-in splits"});
}

TEST_F(DatasetsFiles, MissingPackagesViaDataDir) {
  DataDirEnv env(dir_.string());
  expect_error<IOError>([] { load_dataset("fashion_mnist:test"); },
                        {"fashion_mnist: data not found in " + dir_.string(),
                         "apt-get install dataset-fashion-mnist"});
  for (const std::string name : {"iris", "wine", "breast_cancer", "digits"}) {
    expect_error<IOError>(
        [&] { load_dataset(name); },
        {name + ": data not found in " + dir_.string(), "apt-get install python3-sklearn"});
  }
}

TEST_F(DatasetsFiles, DataDirIsUsedInsteadOfThePackages) {
  DataDirEnv env(dir_.string());
  // Two 28x28 images with pixel value = index % 256, in the package's file names, gzipped.
  Bytes pixels(2 * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i % 256);
  put_gz("t10k-images-idx3-ubyte.gz", idx_bytes(0x08, {2, 28, 28}, pixels));
  put_gz("t10k-labels-idx1-ubyte.gz", idx_bytes(0x08, {2}, {7, 3}));
  const Dataset ds = load_dataset("fashion_mnist:test");
  EXPECT_EQ(ds.x.shape(), Shape({2, 1, 28, 28}));
  EXPECT_EQ(ds.x.at({1, 0, 0, 1}), static_cast<double>((784 + 1) % 256));
  EXPECT_EQ(ds.y.to_vector<int64_t>(), (std::vector<int64_t>{7, 3}));
  // The train files are absent there, and the package directory is not searched instead.
  expect_error<IOError>([] { load_dataset("fashion_mnist:train"); }, {"data not found"});

  put("iris.csv", "3,2,a,b\n1,2,0\n3,4,1\n5,6,1\n");
  const Dataset iris = load_dataset("iris");
  EXPECT_EQ(iris.x.shape(), Shape({3, 2}));
  EXPECT_EQ(iris.class_names, (std::vector<std::string>{"a", "b"}));
  put("wine_data.csv", "4,2\n1,2,0\n3,4,1\n");  // wrong count: a truncated file
  expect_error<IOError>([] { load_dataset("wine"); }, {"wine_data.csv:1", "2 rows"});
}

TEST_F(DatasetsFiles, CsvSpec) {
  const std::string file =
      put("flowers.csv", "length,width,species\n1.5,2,rose\n3,4.25,iris\n5,6,rose\n");
  const Dataset ds = load_dataset(file);
  EXPECT_EQ(ds.source, file);
  EXPECT_EQ(ds.x.shape(), Shape({3, 2}));
  EXPECT_EQ(ds.x.to_vector<float>(), (std::vector<float>{1.5f, 2, 3, 4.25f, 5, 6}));
  EXPECT_EQ(ds.y.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"iris", "rose"}));

  // A regression target stays float32.
  const Dataset reg = load_dataset(put("reg.csv", "a,target\n1,0.5\n2,1.5\n"));
  EXPECT_EQ(reg.y.dtype(), DType::kFloat32);
  EXPECT_EQ(reg.y.to_vector<float>(), (std::vector<float>{0.5f, 1.5f}));

  expect_error<IOError>([&] { load_dataset(put("bad.csv", "a,b,c\n1,x,0\n")); },
                        {"bad.csv:2", "\"x\" is not a number"});
}

TEST_F(DatasetsFiles, NpzAndNpySpecs) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 2, 1}, {3});
  write_npz(path("d.npz"), {{"x", x}, {"y", y}});
  const Dataset ds = load_dataset(path("d.npz"));
  ASSERT_EQ(ds.x.dtype(), DType::kFloat32);  // float64 features become float32
  EXPECT_EQ(ds.x.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ds.y.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 1}));

  write_npz(path("noy.npz"), {{"x", x}});
  EXPECT_FALSE(load_dataset(path("noy.npz")).y.defined());
  write_npz(path("nox.npz"), {{"features", x}});
  expect_error<IOError>([&] { load_dataset(path("nox.npz")); }, {"no array \"x\"", "features"});
  write_npz(path("short.npz"), {{"x", x}, {"y", Tensor::zeros({2}, DType::kInt64)}});
  expect_error<IOError>([&] { load_dataset(path("short.npz")); }, {"(2,)", "(3, 2)"});

  write_npy(path("x.npy"), Tensor::from_vector(std::vector<int64_t>{7, 8}, {2, 1}));
  const Dataset features = load_dataset(path("x.npy"));
  EXPECT_EQ(features.x.to_vector<float>(), (std::vector<float>{7, 8}));
  EXPECT_FALSE(features.y.defined());
}

TEST_F(DatasetsFiles, IdxSpecs) {
  const std::string images =
      put("imgs-idx3-ubyte",
          idx_bytes(0x08, {2, 2, 3}, {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}));
  const std::string labels = put_gz("labels-idx1-ubyte.gz", idx_bytes(0x08, {2}, {1, 0}));
  // A bare IDX path: images only, with a channel dimension added.
  const Dataset bare = load_dataset(images);
  EXPECT_EQ(bare.x.shape(), Shape({2, 1, 2, 3}));
  EXPECT_EQ(bare.x.at({1, 0, 1, 2}), 255.0);
  EXPECT_FALSE(bare.y.defined());

  const Dataset ds = load_dataset_config(
      R"({"idx": {"images": ")" + images + R"(", "labels": ")" + labels + R"("}})", "data");
  EXPECT_EQ(ds.x.dtype(), DType::kFloat32);
  EXPECT_EQ(ds.x.shape(), Shape({2, 1, 2, 3}));
  EXPECT_EQ(ds.y.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));

  // Non-u8 images take the general reader: big-endian f32 1.5 and -2.
  const std::string floats =
      put("f.idx", idx_bytes(0x0D, {2, 1}, {0x3F, 0xC0, 0, 0, 0xC0, 0x00, 0, 0}));
  EXPECT_EQ(load_dataset(floats).x.to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));

  // Malformed files get the IDX reader's own messages, and mismatched pairs are refused.
  const std::string truncated = put("t-idx3-ubyte", idx_bytes(0x08, {2, 2, 3}, {1, 2, 3}));
  expect_error<IOError>([&] { load_dataset(truncated); }, {truncated});
  const std::string three = put("l3-idx1-ubyte", idx_bytes(0x08, {3}, {0, 1, 2}));
  expect_error<IOError>(
      [&] {
        load_dataset_config(
            R"({"idx": {"images": ")" + images + R"(", "labels": ")" + three + R"("}})", "data");
      },
      {"data: ", "3 labels for 2 images"});
  expect_error<IOError>([&] { load_dataset(put("mystery.bin", "hello")); },
                        {"cannot tell the data format"});
}

TEST_F(DatasetsFiles, ConfigForms) {
  const std::string file = put("t.csv", "species,a,b\ncat,1,2\ndog,3,4\n");
  const std::string quoted = "\"" + file + "\"";
  // By name, by index as a YAML integer, and the default (the last column).
  const Dataset by_name =
      load_dataset_config(R"({"csv": )" + quoted + R"(, "label": "species"})", "train.data");
  EXPECT_EQ(by_name.x.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(by_name.class_names, (std::vector<std::string>{"cat", "dog"}));
  const Dataset by_index = load_dataset_config(R"({"csv": )" + quoted + R"(, "label": 0})", "d");
  EXPECT_EQ(by_index.class_names, (std::vector<std::string>{"cat", "dog"}));
  const Dataset last =
      load_dataset_config(R"({"csv": ")" + put("n.csv", "a,b\n1,2\n3,4\n") + "\"}", "d");
  EXPECT_EQ(last.y.to_vector<int64_t>(), (std::vector<int64_t>{2, 4}));

  const std::string semi = put("s.csv", "1;2;0\n3;4;1\n");
  const Dataset options = load_dataset_config(
      R"({"csv": ")" + semi + R"(", "header": false, "delimiter": ";", "label": -1})", "d");
  EXPECT_EQ(options.x.shape(), Shape({2, 2}));

  // A bare string is a spec, resolved like load_dataset.
  EXPECT_EQ(load_dataset_config("\"" + path("n.csv") + "\"", "d").x.shape(), Shape({2, 1}));
  write_npz(path("d.npz"), {{"x", Tensor::ones({4, 3})}});
  EXPECT_EQ(load_dataset_config(R"({"npz": ")" + path("d.npz") + "\"}", "d").x.shape(),
            Shape({4, 3}));
}

TEST_F(DatasetsFiles, ConfigErrorsNameTheField) {
  const std::string file = put("t.csv", "a,b\n1,0\n");
  const std::string quoted = "\"" + file + "\"";
  expect_error<ValueError>(
      [&] { load_dataset_config(R"({"csv": )" + quoted + R"(, "lable": "b"})", "train.data"); },
      {"train.data", "unknown field 'lable'"});
  expect_error<ValueError>(
      [&] { load_dataset_config(R"({"csv": )" + quoted + R"(, "npz": "x.npz"})", "d"); },
      {"d: both 'csv' and 'npz'"});
  expect_error<ValueError>([] { load_dataset_config(R"({"parquet": "x"})", "d"); },
                           {"d: expected one of the fields csv, idx, npz, npy"});
  expect_error<ValueError>([] { load_dataset_config("[1, 2]", "d"); }, {"d: expected"});
  expect_error<ValueError>([] { load_dataset_config("{csv: x", "d"); }, {"d: invalid JSON"});
  expect_error<ValueError>([] { load_dataset_config(R"({"idx": "a"})", "d"); }, {"d.idx"});
  expect_error<ValueError>([] { load_dataset_config(R"({"idx": {"labels": "a"}})", "d"); },
                           {"d.idx.images: expected a file path"});
  expect_error<ValueError>(
      [&] { load_dataset_config(R"({"csv": )" + quoted + R"(, "label": 1.5})", "d"); },
      {"d.label"});
  // Loading errors keep their type and gain the field's path.
  expect_error<ValueError>([] { load_dataset_config(R"("fashion_mnist:valid")", "eval.data"); },
                           {"eval.data: ", "train, test"});
  expect_error<IOError>([] { load_dataset_config(R"("nope")", "eval.data"); },
                        {"eval.data: ", "fashion_mnist, iris"});
  expect_error<IOError>(
      [&] { load_dataset_config(R"({"csv": )" + quoted + R"(, "label": "c"})", "d"); },
      {"d: ", "\"c\""});
}

}  // namespace
}  // namespace neutrino::data
