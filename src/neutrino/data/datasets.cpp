#include "neutrino/data/datasets.h"
#include "neutrino/data/text_datasets.h"
#include "neutrino/ops/ops.h"
#include "neutrino/io/file_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <system_error>

#include "neutrino/core/error.h"
#include "neutrino/data/csv.h"
#include "neutrino/data/idx.h"
#include "neutrino/data/npy.h"
#include "neutrino/io/config_reader.h"

namespace neutrino::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kSklearnDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};

struct SklearnSet {
  const char* name;
  const char* file;
  bool count_line;  // first line "n_samples,n_features,class names..." (digits has none)
};
constexpr SklearnSet kSklearnSets[] = {
    {"iris", "iris.csv", true},
    {"wine", "wine_data.csv", true},
    {"breast_cancer", "breast_cancer.csv", true},
    {"digits", "digits.csv.gz", false},
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// NEUTRINO_DATA_DIR replaces the package directory rather than being searched before it, so a
// test (or a user) can be sure which files were read.
std::string data_dir(const char* package_dir, bool* from_env) {
  const char* env = std::getenv("NEUTRINO_DATA_DIR");
  *from_env = env != nullptr && env[0] != '\0';
  return *from_env ? std::string(env) : std::string(package_dir);
}

[[noreturn]] void throw_not_found(const std::string& name, const std::string& dir, bool from_env,
                                  const std::string& package) {
  throw IOError(
      fmt::format("{}: data not found in {}{} (install the Debian package {}: apt-get "
                  "install {})",
                  name, dir, from_env ? " (from NEUTRINO_DATA_DIR)" : "", package, package));
}

// The fields of one line split on commas, trimmed of spaces and a CR (the count line only; the
// data go through the CSV reader).
std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t end = std::min(line.find(',', start), line.size());
    std::string field = line.substr(start, end - start);
    const size_t first = field.find_first_not_of(" \t\r");
    const size_t last = field.find_last_not_of(" \t\r");
    fields.push_back(first == std::string::npos ? "" : field.substr(first, last - first + 1));
    if (end == line.size()) return fields;
    start = end + 1;
  }
}

bool is_gzip(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// The file's bytes, inflated if it is gzipped (with the IDX reader's cap on the output size).
std::vector<uint8_t> read_maybe_gzipped(const std::string& path) {
  std::vector<uint8_t> bytes = io::read_file(path);
  if (!is_gzip(bytes)) return bytes;
  return detail::gunzip(bytes.data(), bytes.size(), kMaxIdxDecompressedBytes, path);
}

// Any dtype to a new contiguous float32 tensor, through raw pointers (at() is far too slow for
// 47M pixels). float32 input is returned as is, sharing storage.
Tensor to_float32(const Tensor& t) {
  if (t.dtype() == DType::kFloat32) return contiguous(t);
  const Tensor src = contiguous(t);
  Tensor out = Tensor::empty(src.shape(), DType::kFloat32);
  float* dst = out.data<float>();
  const int64_t n = src.numel();
  auto convert = [&](const auto* p) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(p[i]);
  };
  switch (src.dtype()) {
    case DType::kFloat64:
      convert(src.data<double>());
      break;
    case DType::kInt64:
      convert(src.data<int64_t>());
      break;
    case DType::kBool:
      convert(static_cast<const uint8_t*>(src.raw_data()));
      break;
    case DType::kBFloat16:
      convert(src.data<bfloat16>());
      break;
    case DType::kFloat32:
      NEUTRINO_ASSERT(false);
  }
  return out;
}

// Reads IDX images as float32. read_idx widens u8 pixels to int64 first (8 bytes each, ~1 s for
// Fashion-MNIST's 47M pixels), so the common u8 case is converted straight from the inflated
// bytes; anything else, including every malformed file, goes through read_idx_bytes, whose
// checks and messages stay the single source of truth.
Tensor read_idx_images(const std::string& path) {
  const std::vector<uint8_t> bytes = read_maybe_gzipped(path);
  const uint8_t* d = bytes.data();
  const size_t size = bytes.size();
  if (size >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 0x08 && d[3] >= 1 && d[3] <= 8) {
    const size_t header = 4 + 4 * size_t{d[3]};
    if (size >= header) {
      Shape shape;
      uint64_t count = 1;
      bool fits = true;
      for (size_t i = 0; i < d[3]; ++i) {
        const uint8_t* p = d + 4 + 4 * i;
        const uint64_t dim = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) |
                             (uint64_t{p[2]} << 8) | uint64_t{p[3]};
        shape.push_back(static_cast<int64_t>(dim));
        if (dim != 0 && count > size / dim) fits = false;  // more elements than bytes
        count *= fits ? dim : 1;
      }
      if (fits && count == size - header) {
        Tensor out = Tensor::empty(shape, DType::kFloat32);
        float* dst = out.data<float>();
        const uint8_t* src = d + header;
        for (uint64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
        return out;
      }
    }
  }
  return to_float32(read_idx_bytes(d, size, path));
}

// Images plus optional labels; (N, H, W) images gain a channel dimension, (N, 1, H, W).
Dataset load_idx(const std::string& images, const std::string& labels) {
  Dataset ds;
  ds.x = read_idx_images(images);
  ds.source = images;
  if (ds.x.dim() == 3) {
    const Shape s = ds.x.shape();
    ds.x = ds.x.view_as({s[0], 1, s[1], s[2]}, contiguous_strides({s[0], 1, s[1], s[2]}), 0);
  }
  if (!labels.empty()) {
    ds.y = read_idx(labels);
    NEUTRINO_CHECK_IO(ds.y.size(0) == ds.x.size(0),
                      "{}: {} labels for {} images in {} (first dimensions must match)", labels,
                      ds.y.size(0), ds.x.size(0), images);
    if (is_floating(ds.y.dtype())) ds.y = to_float32(ds.y);
  }
  return ds;
}

Dataset from_csv(CsvData data, const std::string& source) {
  Dataset ds;
  ds.x = std::move(data.features);
  ds.y = std::move(data.labels);
  ds.class_names = std::move(data.class_names);
  ds.source = source;
  return ds;
}

Dataset load_csv(const std::string& path, const CsvOptions& options) {
  if (!ends_with(path, ".gz")) return from_csv(read_csv(path, options), path);
  const std::vector<uint8_t> bytes = read_maybe_gzipped(path);
  return from_csv(read_csv_text(std::string(bytes.begin(), bytes.end()), path, options), path);
}

Dataset load_npz(const std::string& path) {
  std::map<std::string, Tensor> arrays = read_npz(path);
  if (arrays.count("x") == 0) {
    std::string names;
    for (const auto& [name, t] : arrays) names += (names.empty() ? "" : ", ") + name;
    throw IOError(
        fmt::format("{}: no array \"x\" (the features; \"y\" holds the labels); the "
                    "archive holds: {}",
                    path, names.empty() ? "nothing" : names));
  }
  Dataset ds;
  ds.x = to_float32(arrays["x"]);
  ds.source = path;
  NEUTRINO_CHECK_IO(ds.x.dim() >= 1, "{}: \"x\" is a scalar; expected (N, ...)", path);
  if (arrays.count("y") > 0) {
    ds.y = contiguous(arrays["y"]);
    if (ds.y.dtype() == DType::kFloat64) ds.y = to_float32(ds.y);
    if (ds.y.dtype() == DType::kBool) {
      // A bool target is a class label; keep the int64 convention of classification labels.
      Tensor labels = Tensor::empty(ds.y.shape(), DType::kInt64);
      const auto* src = static_cast<const uint8_t*>(ds.y.raw_data());
      for (int64_t i = 0; i < ds.y.numel(); ++i) labels.data<int64_t>()[i] = src[i] != 0;
      ds.y = labels;
    }
    NEUTRINO_CHECK_IO(ds.y.dim() >= 1 && ds.y.size(0) == ds.x.size(0),
                      "{}: \"y\" {} does not match \"x\" {} (first dimensions must match)", path,
                      ds.y.shape_string(), ds.x.shape_string());
  }
  return ds;
}

// Features only: an .npy file holds one array.
Dataset load_npy(const std::string& path) {
  Dataset ds;
  ds.x = to_float32(read_npy(path));
  ds.source = path;
  NEUTRINO_CHECK_IO(ds.x.dim() >= 1, "{}: a scalar; expected (N, ...) features", path);
  return ds;
}

// A file spec, by extension, or by the IDX magic bytes when the name does not tell.
Dataset load_file(const std::string& path) {
  if (ends_with(path, ".csv") || ends_with(path, ".csv.gz")) {
    return load_csv(path, CsvOptions{.label = "-1"});
  }
  if (ends_with(path, ".npz")) return load_npz(path);
  if (ends_with(path, ".npy")) return load_npy(path);
  const std::string name = fs::path(path).filename().string();
  bool idx = name.find("idx") != std::string::npos || name.find("ubyte") != std::string::npos;
  if (!idx) {
    unsigned char magic[2] = {1, 1};
    uint64_t size = 0;
    const io::FilePtr f = io::open_regular_file(path, size);  // never a FIFO or a device
    idx = std::fread(magic, 1, 2, f.get()) == 2 && magic[0] == 0 && magic[1] == 0;
  }
  NEUTRINO_CHECK_IO(idx,
                    "{}: cannot tell the data format (expected .csv, .csv.gz, .npz, .npy or an "
                    "IDX file)",
                    path);
  return load_idx(path, "");
}

Dataset load_fashion_mnist(const std::string& split) {
  const char* prefix = split == "train" ? "train" : "t10k";
  bool from_env = false;
  const std::string dir = data_dir(kFashionDir, &from_env);
  const std::string images = fmt::format("{}/{}-images-idx3-ubyte.gz", dir, prefix);
  const std::string labels = fmt::format("{}/{}-labels-idx1-ubyte.gz", dir, prefix);
  if (!is_file(images) || !is_file(labels)) {
    throw_not_found("fashion_mnist", dir, from_env, "dataset-fashion-mnist");
  }
  Dataset ds = load_idx(images, labels);
  // A truncated or replaced file would otherwise surface later as a shape error in the model.
  NEUTRINO_CHECK_IO(ds.x.shape() == Shape({ds.x.size(0), 1, 28, 28}) && ds.y.dim() == 1 &&
                        ds.y.dtype() == DType::kInt64,
                    "{}: expected 28x28 images with int64 labels, got images {} and labels {}",
                    images, ds.x.shape_string(), ds.y.shape_string());
  ds.class_names = kFashionClasses;
  ds.source = "fashion_mnist:" + split;
  return ds;
}

Dataset load_sklearn(const SklearnSet& set) {
  bool from_env = false;
  const std::string dir = data_dir(kSklearnDir, &from_env);
  const std::string path = fmt::format("{}/{}", dir, set.file);
  if (!is_file(path)) throw_not_found(set.name, dir, from_env, "python3-sklearn");
  const std::vector<uint8_t> bytes = read_maybe_gzipped(path);
  const std::string text(bytes.begin(), bytes.end());
  // No header; the count line (when there is one) is skipped so that CSV line numbers in errors
  // stay those of the file.
  Dataset ds =
      from_csv(read_csv_text(text, path,
                             {.header = false, .label = "-1", .skip_rows = set.count_line ? 1 : 0}),
               set.name);
  NEUTRINO_CHECK_IO(ds.y.dtype() == DType::kInt64 && ds.class_names.empty(),
                    "{}: the last column must hold whole-number class labels", path);
  int64_t num_classes = 0;
  const int64_t* labels = ds.y.data<int64_t>();
  for (int64_t i = 0; i < ds.y.numel(); ++i) {
    NEUTRINO_CHECK_IO(labels[i] >= 0, "{}: negative class label {} in data row {}", path, labels[i],
                      i + 1);
    num_classes = std::max(num_classes, labels[i] + 1);
  }
  if (set.count_line) {
    // "n_samples,n_features,names...": the counts catch a truncated file, the names label y.
    const std::vector<std::string> cols = split_line(text.substr(0, text.find('\n')));
    NEUTRINO_CHECK_IO(cols.size() >= 2 && cols[0] == std::to_string(ds.x.size(0)) &&
                          cols[1] == std::to_string(ds.x.size(1)),
                      "{}:1: count line says \"{},{}\" but the file holds {} rows of {} features",
                      path, cols.empty() ? "" : cols[0], cols.size() < 2 ? "" : cols[1],
                      ds.x.size(0), ds.x.size(1));
    ds.class_names.assign(cols.begin() + 2, cols.end());
  }
  if (ds.class_names.empty()) {
    const char* format = set.count_line ? "class_{}" : "{}";  // digits: "0".."9"
    for (int64_t c = 0; c < num_classes; ++c) {
      ds.class_names.push_back(fmt::format(fmt::runtime(format), c));
    }
  }
  NEUTRINO_CHECK_IO(static_cast<int64_t>(ds.class_names.size()) >= num_classes,
                    "{}: label {} but only {} class names", path, num_classes - 1,
                    ds.class_names.size());
  return ds;
}

[[noreturn]] void throw_unknown(const std::string& spec) {
  std::string names;
  for (const std::string& n : builtin_dataset_names()) names += (names.empty() ? "" : ", ") + n;
  throw IOError(fmt::format(
      "unknown dataset \"{}\": not an existing file nor a built-in name ({}; fashion_mnist "
      "takes a split, e.g. fashion_mnist:test)",
      spec, names));
}

// Rethrows a loading error with the config field's path in front, keeping its type.
template <class F>
Dataset with_path(const std::string& path, F&& load) {
  try {
    return load();
  } catch (const IOError& e) {
    throw IOError(path + ": " + e.what());
  } catch (const ValueError& e) {
    throw ValueError(path + ": " + e.what());
  }
}

std::string config_path(io::ConfigReader& reader, const std::string& key) {
  const std::string value = reader.get_string(key, "");
  NEUTRINO_CHECK_VALUE(!value.empty(), "{}: expected a file path", reader.path_of(key));
  return value;
}

}  // namespace

std::vector<std::string> builtin_dataset_names() {
  std::vector<std::string> names = {"fashion_mnist"};
  for (const SklearnSet& set : kSklearnSets) names.push_back(set.name);
  return names;
}

Dataset load_dataset(const std::string& spec) {
  NEUTRINO_CHECK_VALUE(!spec.empty(), "load_dataset: empty data spec");
  // A FIFO or a device is a file too, which load_file refuses by name (reading it could block).
  std::error_code ec;
  if (is_file(spec) || (fs::exists(spec, ec) && !fs::is_directory(spec, ec))) {
    return load_file(spec);
  }
  const size_t colon = spec.rfind(':');
  const std::string name = spec.substr(0, colon);
  const bool has_split = colon != std::string::npos;
  const std::string split = has_split ? spec.substr(colon + 1) : "";
  if (name == "fashion_mnist") {
    if (!has_split) return load_fashion_mnist("train");
    NEUTRINO_CHECK_VALUE(split == "train" || split == "test",
                         "{}: fashion_mnist has no split \"{}\" (valid splits: train, test)", spec,
                         split);
    return load_fashion_mnist(split);
  }
  for (const SklearnSet& set : kSklearnSets) {
    if (name != set.name) continue;
    NEUTRINO_CHECK_VALUE(!has_split,
                         "{}: {} has no built-in splits (valid: \"{}\" alone, the whole set; "
                         "split it with validation_split or train_test_split)",
                         spec, name, name);
    return load_sklearn(set);
  }
  throw_unknown(spec);
}

Dataset load_dataset_config(const std::string& json_text, const std::string& path) {
  json value;
  try {
    value = json::parse(json_text);
  } catch (const json::exception& e) {
    throw ValueError(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
  if (value.is_string()) {
    return with_path(path, [&] { return load_dataset(value.get<std::string>()); });
  }
  NEUTRINO_CHECK_VALUE(value.is_object(),
                       "{}: expected a data spec string or a map with one of csv, idx, npz, npy, "
                       "fortunes, text_files; "
                       "got {}",
                       path, value.dump());
  io::ConfigReader reader(value, path);
  for (const char* text_kind : {"fortunes", "text_files"}) {
    if (!reader.has(text_kind)) continue;
    Dataset d = with_path(path, [&] { return load_text_dataset(reader, text_kind); });
    reader.finish();
    return d;
  }
  if (reader.has("csv") && reader.has("text")) {
    Dataset d = with_path(path, [&] { return load_text_dataset(reader, "csv"); });
    reader.finish();
    return d;
  }
  const std::vector<std::string> kinds = {"csv", "idx", "npz", "npy"};
  std::string kind;
  for (const std::string& k : kinds) {
    if (!reader.has(k)) continue;
    NEUTRINO_CHECK_VALUE(kind.empty(), "{}: both '{}' and '{}' given; choose one", path, kind, k);
    kind = k;
  }
  NEUTRINO_CHECK_VALUE(!kind.empty(), "{}: expected one of the fields csv, idx, npz, npy; got {}",
                       path, value.dump());

  if (kind == "csv") {
    const std::string file = config_path(reader, "csv");
    CsvOptions options{.label = "-1"};
    if (reader.has("label")) {
      // YAML gives `label: 4` as a number and `label: species` as a string; accept both.
      const json& label = reader.get_raw("label");
      NEUTRINO_CHECK_VALUE(label.is_string() || label.is_number_integer(),
                           "{}: expected a column name or index, got {}", reader.path_of("label"),
                           label.dump());
      options.label =
          label.is_string() ? label.get<std::string>() : std::to_string(label.get<int64_t>());
    }
    options.header = reader.get_bool("header", true);
    options.skip_rows = reader.get_int("skip_rows", 0);
    const std::string delimiter = reader.get_string("delimiter", ",");
    NEUTRINO_CHECK_VALUE(delimiter.size() == 1, "{}: expected one character, got \"{}\"",
                         reader.path_of("delimiter"), delimiter);
    options.delimiter = delimiter[0];
    reader.finish();
    return with_path(path, [&] { return load_csv(file, options); });
  }
  if (kind == "idx") {
    io::ConfigReader files(reader.get_raw("idx"), reader.path_of("idx"));
    reader.finish();
    const std::string images = config_path(files, "images");
    const std::string labels = files.has("labels") ? config_path(files, "labels") : "";
    files.finish();
    return with_path(path, [&] { return load_idx(images, labels); });
  }
  const std::string file = config_path(reader, kind);
  reader.finish();
  return with_path(path, [&] { return kind == "npz" ? load_npz(file) : load_npy(file); });
}

}  // namespace neutrino::data
