// libFuzzer target for saved preprocessing (data::Pipeline::from_saved: the JSON a model file's
// `preprocessing` metadata holds, with a tokenize step's tokenizer as base64 inside it). Any
// input must either be refused with a neutrino::Error or load into a pipeline that saves back to
// JSON which loads into the same pipeline, and that applies itself: texts through a tokenize step
// into ids of shape (N, max_length) inside the vocabulary; numbers through rescale and
// standardize; labels through one_hot; images through the augmentations. A crash, a sanitizer
// report, an InternalError, any other exception, an error from a pipeline that loaded on input of
// the shape it expects, or a hang is a bug.
//
//   build: CXX=clang++-14 scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON ...
//   run:   scripts/fuzz.sh build-fuzz/bin/fuzz_pipeline 60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/data/pipeline.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/tensor/tensor.h"

namespace {

namespace nd = neutrino::data;
using neutrino::Shape;
using neutrino::Tensor;

// Tensors past this are skipped: their cost is their size, not a finding.
constexpr int64_t kMaxElements = int64_t{1} << 16;

void exercise(const nd::Pipeline& p) {
  // Saved and loaded again, it is the same pipeline.
  const std::string saved = p.to_saved();
  if (nd::Pipeline::from_saved(saved, "fuzz round trip").to_saved() != saved) std::abort();

  if (p.takes_text()) {
    const nd::Tokenizer* tok = p.tokenizer();
    if (tok == nullptr) std::abort();  // a saved tokenize step always has its tokenizer
    int64_t max_length = 0;
    for (const auto& step : p.steps()) {
      if (step.kind == "tokenize") max_length = step.tokenize.max_length;
    }
    if (max_length > kMaxElements) return;
    const std::vector<std::string> texts = {"hello there", "", "\xe4\xb8\xad\xe6\x96\x87"};
    Tensor ids;
    try {
      ids = p.apply_text(texts, "fuzz texts");
    } catch (const neutrino::ValueError&) {
      bool truncates = true;
      for (const auto& step : p.steps()) {
        if (step.kind == "tokenize") truncates = step.tokenize.truncate;
      }
      if (truncates) std::abort();  // only truncate: false may refuse a (long) text
      return;
    }
    if (ids.shape() != Shape{3, max_length}) std::abort();
    for (int64_t id : ids.to_vector<int64_t>()) {
      if (id < 0 || id >= tok->vocab_size()) std::abort();
    }
    return;
  }

  // Numbers: the sample shape a standardize step was fitted on, or a small default.
  // Two standardize steps fitted on different shapes take no input at all; that is skipped.
  Shape sample = {3};
  bool one_shape = true, standardized = false;
  for (const auto& step : p.steps()) {
    if (step.kind != "standardize") continue;
    one_shape = one_shape && (!standardized || step.mean.shape() == sample);
    sample = step.mean.shape();
    standardized = true;
  }
  Shape batch = sample;
  batch.insert(batch.begin(), 2);
  if (one_shape && neutrino::shape_numel(batch) <= kMaxElements) {
    const Tensor x = p.apply_x(Tensor::ones(batch));
    if (x.shape() != batch) std::abort();
  }
  const Tensor y = p.apply_y(Tensor::from_vector(std::vector<int64_t>{0, 2, 1}, {3}), 3);
  if (y.size(0) != 3) std::abort();
  if (auto augment = p.augmenter()) {
    neutrino::Generator gen(5);
    const Tensor images = Tensor::ones({2, 1, 4, 4});
    if (augment(images, gen).shape() != images.shape()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nd::Pipeline p;
  try {
    p = nd::Pipeline::from_saved(text, "fuzz");
  } catch (const neutrino::InternalError&) {
    std::abort();  // our own invariant broke: a bug, whatever the input
  } catch (const neutrino::Error&) {
    return 0;  // refusing the input is the expected outcome for most fuzzed files
  }
  // Outside the try: what loaded must work, so an exception here is a finding too.
  exercise(p);
  return 0;
}
