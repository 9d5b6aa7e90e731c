// A preprocessing pipeline, fitted on the training split and saved with the model, so that
// evaluation and prediction see data exactly as training did. Steps (preprocess.h does the
// work): rescale (factor), standardize (per-feature statistics from the training split), one_hot
// (labels), and the training-only augmentations random_flip and random_crop (padding).
// Text: a tokenize step (kind char, bpe or unigram; vocab_size for the subword kinds;
// max_length) is trained on the training texts and turns texts into int64 ids
// (N, max_length), truncated at the end and padded with 0 (Embedding(mask_zero) masks the
// padding); the trained tokenizer is saved with the rest, so a model file needs nothing else.
// With from_model: PATH the tokenizer of that model file (a language model's) is reused.
//
//   data::Pipeline pre = data::Pipeline().rescale(1.0 / 255).standardize();
//   pre.fit(x_train);                                   // standardize's statistics
//   model.fit(pre.apply_x(x_train), y_train, {.augment = pre.augmenter()});
//   train::save_model(path, model, {.preprocessing = pre.to_saved()});
//   auto [loaded, info] = train::load_model(path);
//   const auto restored = data::Pipeline::from_saved(info.preprocessing, path);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "neutrino/core/random.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

class Tokenizer;  // tokenizer.h

struct TokenizeOptions {
  std::string kind = "char";  // char, bpe or unigram
  int64_t max_length = 128;   // ids per text: longer texts are cut, shorter ones padded with 0
  int64_t vocab_size = 8000;  // bpe and unigram
  bool truncate = true;       // false: a text longer than max_length is an error, not cut
  // A model file whose tokenizer is used as it is instead of training one (fine-tuning a
  // pre-trained language model keeps its vocabulary); kind and vocab_size then come from it.
  std::string from_model = "";
};

class Pipeline {
 public:
  // From a config's `preprocess` list as JSON text ([{"rescale": 0.5}, "standardize"]); `path`
  // names it in errors.
  static Pipeline from_config(const std::string& json_text, const std::string& path);
  // From to_saved()'s form (a model file's): every field checked (an unknown step, a missing or
  // non-finite value is an IOError naming `source` and the field). A saved standard deviation of
  // 0 is read as 1, as scikit-learn's StandardScaler does for constant features.
  static Pipeline from_saved(const std::string& json_text, const std::string& source);

  // Steps appended in the order they apply.
  Pipeline& rescale(double factor);
  Pipeline& standardize();
  Pipeline& one_hot();
  Pipeline& random_flip();
  Pipeline& random_crop(int64_t padding = 4);
  Pipeline& tokenize(TokenizeOptions options = {});

  // Whether the pipeline starts from text (it has a tokenize step).
  bool takes_text() const;
  // Trains the tokenize step's tokenizer on the training texts.
  void fit_text(const std::vector<std::string>& texts);
  // Texts -> int64 ids (N, max_length), through the fitted tokenizer; `what` names the source in
  // errors (invalid UTF-8 names the text's index).
  Tensor apply_text(const std::vector<std::string>& texts, const std::string& what) const;
  // The fitted tokenizer, or null.
  const Tokenizer* tokenizer() const;

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
    double factor = 1.0;            // rescale
    int64_t padding = 0;            // random_crop
    Tensor mean = {}, stddev = {};  // standardize, once fitted
    TokenizeOptions tokenize = {};
    std::shared_ptr<const Tokenizer> tokenizer = {};  // tokenize, once fitted
  };
  const std::vector<Step>& steps() const { return steps_; }

 private:
  std::vector<Step> steps_;
};

}  // namespace neutrino::data
