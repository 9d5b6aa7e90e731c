// Built-in datasets by name, like keras.datasets, and a "data spec" resolver for configs and the
// command line. Nothing is downloaded: the built-in sets come from Debian packages that are either
// installed or not, and a missing one is an error saying which package to install.
//
// Built-in names (see builtin_dataset_names()):
// - fashion_mnist: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). Splits
//   "train" (60000, the default) and "test" (10000). x is float32 (N, 1, 28, 28) with the raw
//   pixel values 0..255, not rescaled (use rescale(x, 1.0 / 255)); y is int64 0..9.
// - iris, wine, breast_cancer, digits: python3-sklearn's data files
//   (/usr/lib/python3/dist-packages/sklearn/datasets/data). The whole set, x float32 (N, F) as
//   sklearn's load_*().data (digits too: (1797, 64), pixel values 0..16), y int64. They have no
//   built-in splits: split with validation_split or train_test_split.
// If the environment variable NEUTRINO_DATA_DIR is set (and not empty), the same file names are
// looked up in that directory instead of the packages' directories, for machines without the
// packages or for tests.
//
// A spec is one of:
// - a path to an existing file, by extension: .csv or .csv.gz (a header row, the label in the last
//   column), .npz (arrays "x" and, optionally, "y"), .npy (features only, y undefined), or an IDX
//   file (a name containing "idx" or "ubyte", or starting with the IDX magic; images only, y
//   undefined: give the labels with the config form {idx: {images, labels}});
// - a built-in name with an optional split: "fashion_mnist", "fashion_mnist:test", "iris".
// An existing file wins over a built-in name, so a file named "iris" in the working directory is
// read as a file.
//
// Errors: a spec that is neither a file nor a built-in name, and missing package data, throw
// neutrino::IOError (the first lists the built-in names, the second names the package); a split
// the dataset does not have throws neutrino::ValueError naming the valid ones. File contents are
// checked by the readers (csv.h, npy.h, idx.h), whose errors name the file.
#pragma once

#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

struct Dataset {
  Tensor x;  // float32 features: images as (N, C, H, W) channels-first with raw pixel values
             // 0..255 (not rescaled); tabular as (N, F)
  Tensor y;  // int64 class labels (N), or float32 targets for regression CSVs; undefined for
             // features-only specs (.npy, a bare IDX file, an NPZ without "y")
  std::vector<std::string> texts;  // text datasets (text_datasets.h): one string per sample, and
                                   // x undefined until a tokenize step makes ids of them
  std::vector<std::string> class_names;  // "T-shirt/top", ... or "setosa", ...; empty if unknown
  std::string source;                    // what was loaded, for messages ("fashion_mnist:test")
};

// Resolves a spec (see above) and loads it.
Dataset load_dataset(const std::string& spec);

// The YAML/JSON form of a data spec, given as the JSON text of the value:
//   "fashion_mnist:test"                               a bare string spec, as load_dataset
//   {"csv": PATH, "label": COLUMN, "header": true, "delimiter": ",", "skip_rows": 0}
//       label by header name or index ("-1" or -1 = last, the default); see csv.h
//   {"idx": {"images": PATH, "labels": PATH}}           labels optional; (N, H, W) images come
//                                                       back as (N, 1, H, W)
//   {"npz": PATH}  {"npy": PATH}
//   {"fortunes": [TOPIC, ...]}, {"text_files": [PATH, ...]}, {"csv": PATH, "text": COLUMN}: text
//       datasets, with "split" and friends (text_datasets.h)
// Relative paths are taken from the working directory. `path` names the config field in errors
// ("train.data: unknown field 'lable'"); a form error is a ValueError, and errors from loading
// keep their type with `path` prefixed to the message.
Dataset load_dataset_config(const std::string& json_text, const std::string& path);

// fashion_mnist, iris, wine, breast_cancer, digits.
std::vector<std::string> builtin_dataset_names();

}  // namespace neutrino::data
