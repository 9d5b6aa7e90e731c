#include "neutrino/data/pipeline.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "neutrino/data/preprocess.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/io/base64.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"

namespace neutrino::data {

using nlohmann::json;

namespace {
constexpr const char* kKnownSteps =
    "rescale, standardize, one_hot, random_flip, random_crop, tokenize";
}  // namespace

Pipeline& Pipeline::rescale(double factor) {
  NEUTRINO_CHECK_VALUE(std::isfinite(factor), "rescale: expected a finite factor, got {}", factor);
  steps_.push_back({.kind = "rescale", .factor = factor});
  return *this;
}

Pipeline& Pipeline::standardize() {
  steps_.push_back({.kind = "standardize"});
  return *this;
}

Pipeline& Pipeline::one_hot() {
  steps_.push_back({.kind = "one_hot"});
  return *this;
}

Pipeline& Pipeline::random_flip() {
  steps_.push_back({.kind = "random_flip"});
  return *this;
}

Pipeline& Pipeline::random_crop(int64_t padding) {
  NEUTRINO_CHECK_VALUE(padding >= 0, "random_crop: padding must be >= 0, got {}", padding);
  steps_.push_back({.kind = "random_crop", .padding = padding});
  return *this;
}

Pipeline& Pipeline::tokenize(TokenizeOptions options) {
  NEUTRINO_CHECK_VALUE(options.kind == "char" || options.kind == "bpe" || options.kind == "unigram",
                       "tokenize: kind must be char, bpe or unigram, got '{}'", options.kind);
  NEUTRINO_CHECK_VALUE(options.max_length >= 1 && options.max_length <= (1 << 20),
                       "tokenize: max_length must be in [1, {}], got {}", 1 << 20, options.max_length);
  NEUTRINO_CHECK_VALUE(options.vocab_size >= 8 && options.vocab_size <= (1 << 20),
                       "tokenize: vocab_size must be in [8, {}], got {}", 1 << 20, options.vocab_size);
  NEUTRINO_CHECK_VALUE(steps_.empty(), "tokenize: must be the first preprocessing step");
  steps_.push_back({.kind = "tokenize", .tokenize = std::move(options)});
  return *this;
}

bool Pipeline::takes_text() const {
  return std::any_of(steps_.begin(), steps_.end(), [](const Step& s) { return s.kind == "tokenize"; });
}

const Tokenizer* Pipeline::tokenizer() const {
  for (const Step& s : steps_) {
    if (s.kind == "tokenize") return s.tokenizer.get();
  }
  return nullptr;
}

void Pipeline::fit_text(const std::vector<std::string>& texts) {
  for (Step& step : steps_) {
    if (step.kind != "tokenize") continue;
    TokenizeOptions& o = step.tokenize;
    if (!o.from_model.empty()) {
      step.tokenizer = tokenizer_of_model_file(o.from_model);
      o.kind = step.tokenizer->kind();
    } else if (o.kind == "char") {
      step.tokenizer = train_char_tokenizer(texts);
    } else {
      // One thread: unigram training sums over threads, and a model file must not depend on the
      // machine it was trained on.
      step.tokenizer = train_sentencepiece(
          texts, {.model_type = o.kind, .vocab_size = o.vocab_size, .num_threads = 1});
    }
  }
}

Tensor Pipeline::apply_text(const std::vector<std::string>& texts, const std::string& what) const {
  const Step* step = nullptr;
  for (const Step& s : steps_) {
    if (s.kind == "tokenize") step = &s;
  }
  NEUTRINO_CHECK_VALUE(step != nullptr, "{}: text given, but the preprocessing has no tokenize step "
                       "(the model takes numbers, not text)", what);
  NEUTRINO_CHECK_VALUE(step->tokenizer != nullptr, "tokenize: used before being fitted");
  const int64_t length = step->tokenize.max_length, n = static_cast<int64_t>(texts.size());
  Tensor ids = Tensor::zeros({n, length}, DType::kInt64);
  int64_t* out = ids.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> encoded;
    try {
      encoded = step->tokenizer->encode(texts[static_cast<size_t>(i)]);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("{}: text {}: {}", what, i, e.what()));
    }
    NEUTRINO_CHECK_VALUE(step->tokenize.truncate || static_cast<int64_t>(encoded.size()) <= length,
                         "{}: text {} has {} tokens, more than max_length {} (tokenize: set "
                         "truncate: true to cut texts, or raise max_length)", what, i,
                         encoded.size(), length);
    const auto kept = std::min<int64_t>(length, static_cast<int64_t>(encoded.size()));
    std::copy(encoded.begin(), encoded.begin() + kept, out + i * length);
  }
  return ids;
}

Pipeline Pipeline::from_config(const std::string& json_text, const std::string& path) {
  const json steps = io::parse_json(json_text, path);
  NEUTRINO_CHECK_VALUE(steps.is_array(), "{}: expected a list of preprocessing steps", path);
  Pipeline p;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", path, i);
    const auto [kind, options] = io::named_entry(steps[i], where);
    Step step{.kind = kind};
    if (kind == "rescale") {
      // Written as `rescale: FACTOR` or `rescale: {factor: F}`.
      if (options.is_number()) {
        step.factor = options.get<double>();
        NEUTRINO_CHECK_VALUE(std::isfinite(step.factor),
                             "{}.rescale: expected a finite number, got {}", where,
                             io::describe(options));
      } else {
        io::ConfigReader r(options, where + ".rescale");
        step.factor = r.get_double("factor", 1.0);
        r.finish();
      }
    } else if (kind == "standardize" || kind == "one_hot" || kind == "random_flip") {
      io::ConfigReader(options, where + "." + kind).finish();
    } else if (kind == "random_crop") {
      io::ConfigReader r(options, where + ".random_crop");
      step.padding = r.get_int("padding", 4);
      NEUTRINO_CHECK_VALUE(step.padding >= 0, "{}.random_crop.padding: must be >= 0", where);
      r.finish();
    } else if (kind == "tokenize") {
      io::ConfigReader r(options, where + ".tokenize");
      TokenizeOptions o;
      o.kind = r.get_string("kind", o.kind);
      o.max_length = r.get_int("max_length", o.max_length);
      o.vocab_size = r.get_int("vocab_size", o.vocab_size);
      o.truncate = r.get_bool("truncate", o.truncate);
      o.from_model = r.get_string("from_model", o.from_model);
      NEUTRINO_CHECK_VALUE(o.from_model.empty() || (!r.has("kind") && !r.has("vocab_size")),
                           "{}: from_model takes the model's tokenizer; kind and vocab_size "
                           "cannot be set beside it", r.path());
      r.finish();
      try {
        p.tokenize(o);
      } catch (const ValueError& e) {
        throw ValueError(fmt::format("{}: {}", where, e.what()));
      }
      continue;
    } else {
      throw ValueError(
          fmt::format("{}: unknown preprocessing step '{}' (known: {})", where, kind, kKnownSteps));
    }
    p.steps_.push_back(step);
  }
  return p;
}

namespace {
// A saved standardize step's statistics. A zero standard deviation (a constant feature) divides
// by 1, as scikit-learn's StandardScaler does; a negative one is refused.
void read_statistics(io::ConfigReader& r, Pipeline::Step& step) {
  const std::vector<int64_t> shape = r.get_ints("shape", {}, 1, int64_t{1} << 31);
  NEUTRINO_CHECK_VALUE(r.has("shape"), "{}: missing required field", r.path_of("shape"));
  const int64_t n = shape_numel(shape);
  std::vector<double> mean = r.require_doubles("mean");
  std::vector<double> stddev = r.require_doubles("std");
  NEUTRINO_CHECK_VALUE(
      static_cast<int64_t>(mean.size()) == n && static_cast<int64_t>(stddev.size()) == n,
      "{}: shape {} needs {} values in mean and std, got {} and {}", r.path(), shape_str(shape), n,
      mean.size(), stddev.size());
  // The statistics are float32: a value beyond its range would become infinite, and a standard
  // deviation too small for it would become 0 (read as 1, as a saved 0 is, so that saving the
  // step again gives what was read).
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  for (const double m : mean) {
    NEUTRINO_CHECK_VALUE(std::abs(m) <= kFloatMax, "{}: {} is beyond float32's range",
                         r.path_of("mean"), m);
  }
  for (double& s : stddev) {
    NEUTRINO_CHECK_VALUE(s >= 0, "{}: a standard deviation must be >= 0, got {}", r.path_of("std"),
                         s);
    NEUTRINO_CHECK_VALUE(s <= kFloatMax, "{}: {} is beyond float32's range", r.path_of("std"), s);
    if (static_cast<float>(s) == 0) s = 1;
  }
  step.mean = cast(Tensor::from_vector(mean, shape), DType::kFloat32);
  step.stddev = cast(Tensor::from_vector(stddev, shape), DType::kFloat32);
}

Pipeline::Step saved_step(const json& value, const std::string& where) {
  io::ConfigReader r(value, where);
  Pipeline::Step step{.kind = r.require_string("kind")};
  if (step.kind == "rescale") {
    step.factor = r.require_double("factor");
  } else if (step.kind == "random_crop") {
    step.padding = r.require_int("padding", 0, 1 << 16);
  } else if (step.kind == "standardize") {
    read_statistics(r, step);
  } else if (step.kind == "tokenize") {
    step.tokenize.kind = r.require_string("tokenizer_kind");
    step.tokenize.max_length = r.require_int("max_length", 1, 1 << 20);
    step.tokenize.truncate = r.get_bool("truncate", true);
    const std::string what = r.path_of("tokenizer");
    step.tokenizer = load_tokenizer(io::base64_decode(r.require_string("tokenizer"), what), what);
    NEUTRINO_CHECK_VALUE(step.tokenizer->kind() == step.tokenize.kind,
                         "{}: a {} tokenizer where the step says {}", what, step.tokenizer->kind(),
                         step.tokenize.kind);
  } else if (step.kind != "one_hot" && step.kind != "random_flip") {
    throw ValueError(fmt::format("{}.kind: unknown preprocessing step '{}' (known: {})", where,
                                 step.kind, kKnownSteps));
  }
  r.finish();
  return step;
}
}  // namespace

Pipeline Pipeline::from_saved(const std::string& json_text, const std::string& source) {
  const std::string path = source + ": preprocessing";
  Pipeline p;
  try {
    const json steps = io::parse_json(json_text, path);
    NEUTRINO_CHECK_VALUE(steps.is_array(), "{}: expected a list of steps, got {}", path,
                         io::describe(steps));
    for (size_t i = 0; i < steps.size(); ++i) {
      p.steps_.push_back(saved_step(steps[i], fmt::format("{}[{}]", path, i)));
    }
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
  return p;
}

void Pipeline::fit(const Tensor& x_train) {
  Tensor x = x_train;
  for (Step& step : steps_) {
    if (step.kind == "standardize") {
      const Standardizer s = Standardizer::fit(x);
      step.mean = s.mean;
      step.stddev = s.stddev;
    }
    // Later steps see the data as the earlier ones leave it.
    if (step.kind == "rescale") x = data::rescale(x, step.factor);
    if (step.kind == "standardize") x = Standardizer{step.mean, step.stddev}.apply(x);
  }
}

Tensor Pipeline::apply_x(const Tensor& x) const {
  Tensor out = x.dtype() == DType::kFloat32 ? x : cast(x.detach(), DType::kFloat32);
  for (const Step& step : steps_) {
    if (step.kind == "rescale") out = data::rescale(out, step.factor);
    if (step.kind == "standardize") {
      NEUTRINO_CHECK_VALUE(step.mean.defined(), "standardize: used before being fitted");
      out = Standardizer{step.mean, step.stddev}.apply(out);
    }
  }
  return out;
}

Tensor Pipeline::apply_y(const Tensor& y, int64_t num_classes) const {
  for (const Step& step : steps_) {
    if (step.kind == "one_hot") {
      NEUTRINO_CHECK_VALUE(y.dtype() == DType::kInt64, "one_hot: labels must be integers");
      return nn::one_hot(reshape(y, {y.numel()}), num_classes, DType::kFloat32, "one_hot");
    }
  }
  return y;
}

std::function<Tensor(const Tensor&, Generator&)> Pipeline::augmenter() const {
  std::vector<Step> augments;
  for (const Step& step : steps_) {
    if (step.kind == "random_flip" || step.kind == "random_crop") augments.push_back(step);
  }
  if (augments.empty()) return nullptr;
  return [augments](const Tensor& x, Generator& gen) {
    Tensor out = x;
    for (const Step& step : augments) {
      out = step.kind == "random_flip" ? data::random_flip(out, gen)
                                       : data::random_crop(out, step.padding, gen);
    }
    return out;
  };
}

std::string Pipeline::to_saved() const {
  json out = json::array();
  for (const Step& step : steps_) {
    json s{{"kind", step.kind}};
    if (step.kind == "rescale") s["factor"] = step.factor;
    if (step.kind == "random_crop") s["padding"] = step.padding;
    if (step.kind == "tokenize" && step.tokenizer) {
      s["tokenizer_kind"] = step.tokenize.kind;
      s["max_length"] = step.tokenize.max_length;
      s["truncate"] = step.tokenize.truncate;
      s["tokenizer"] = io::base64_encode(step.tokenizer->serialize());
    }
    if (step.kind == "standardize" && step.mean.defined()) {
      s["shape"] = step.mean.shape();
      s["mean"] = step.mean.to_vector<float>();
      s["std"] = step.stddev.to_vector<float>();
    }
    out.push_back(s);
  }
  return out.dump();
}

}  // namespace neutrino::data
