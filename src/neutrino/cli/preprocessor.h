// The preprocessing steps of a config, fitted on the training split and saved with the model, so
// evaluation and prediction see data exactly as training did. Steps: rescale (factor),
// standardize (per-feature statistics from the training split), one_hot (labels), and the
// training-only augmentations random_flip and random_crop (padding).
#pragma once

#include <functional>
#include <string>

#include "neutrino/core/random.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::cli {

class Preprocessor {
 public:
  // From the config's `preprocess` list (JSON text); `path` names it in errors.
  static Preprocessor from_config(const std::string& json_text, const std::string& path);
  // From a model file's saved (fitted) form: every field checked (an unknown step, a missing or
  // non-finite value is an IOError naming `source` and the field). A saved standard deviation of
  // 0 is read as 1, as scikit-learn's StandardScaler does for constant features.
  static Preprocessor from_saved(const std::string& json_text, const std::string& source);

  // Fits the statistics that need data (standardize) on the training features.
  void fit(const Tensor& x_train);
  // The deterministic steps, for training, evaluation and prediction alike.
  Tensor apply_x(const Tensor& x) const;
  Tensor apply_y(const Tensor& y, int64_t num_classes) const;
  // Augmentation for training batches, or nullptr when there is none.
  std::function<Tensor(const Tensor&, Generator&)> augmenter() const;
  // The fitted steps as JSON text, for the model file.
  std::string to_saved() const;

  struct Step {
    std::string kind;
    double factor = 1.0;  // rescale
    int64_t padding = 0;  // random_crop
    Tensor mean = {}, stddev = {};  // standardize, once fitted
  };

 private:
  std::vector<Step> steps_;
};

}  // namespace neutrino::cli
