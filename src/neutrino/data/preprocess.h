// Preprocessing: rescaling, per-feature standardization fitted on training data only, splits,
// seeded shuffles, and image augmentation (random horizontal flip, random padded crop) for
// channels-first (N, C, H, W) batches. Nothing here records an autograd graph.
#pragma once

#include <cstdint>
#include <utility>

#include "neutrino/core/random.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

// x * factor, as float32.
Tensor rescale(const Tensor& x, double factor);

// Per-feature (every dim but the first) mean and standard deviation, fitted once and applied to
// any split: (x - mean) / std, with std of constant features taken as 1.
struct Standardizer {
  Tensor mean;  // float32, x's per-sample shape
  Tensor stddev;
  static Standardizer fit(const Tensor& x);
  Tensor apply(const Tensor& x) const;
};

// A permutation of 0..n-1 drawn from `gen` (Fisher-Yates).
std::vector<int64_t> permutation(int64_t n, Generator& gen);
// Rows of t (dim 0) in the given order.
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows);

struct Split {
  Tensor x_train, y_train, x_test, y_test;
};
// Shuffles (x, y) with `seed` and holds out `test_fraction` of the rows.
Split train_test_split(const Tensor& x, const Tensor& y, double test_fraction, uint64_t seed);

// Flips each image of an (N, C, H, W) batch left-right with probability 0.5.
Tensor random_flip(const Tensor& images, Generator& gen);
// Pads each image by `padding` zeros on every side and crops back to (H, W) at a random offset.
Tensor random_crop(const Tensor& images, int64_t padding, Generator& gen);

}  // namespace neutrino::data
