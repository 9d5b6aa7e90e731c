#include "neutrino/data/pipeline.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "neutrino/data/preprocess.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"

namespace neutrino::data {

using nlohmann::json;

namespace {
constexpr const char* kKnownSteps = "rescale, standardize, one_hot, random_flip, random_crop";
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
  for (double& s : stddev) {
    NEUTRINO_CHECK_VALUE(s >= 0, "{}: a standard deviation must be >= 0, got {}", r.path_of("std"),
                         s);
    if (s == 0) s = 1;
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
