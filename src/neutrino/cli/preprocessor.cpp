#include "neutrino/cli/preprocessor.h"

#include <nlohmann/json.hpp>

#include "neutrino/data/preprocess.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"

namespace neutrino::cli {

using nlohmann::json;

Preprocessor Preprocessor::from_config(const std::string& json_text, const std::string& path) {
  const json steps = json::parse(json_text);
  NEUTRINO_CHECK_VALUE(steps.is_array(), "{}: expected a list of preprocessing steps", path);
  Preprocessor p;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", path, i);
    const auto [kind, options] = io::named_entry(steps[i], where);
    Step step{.kind = kind};
    if (kind == "rescale") {
      // Written as `rescale: FACTOR` or `rescale: {factor: F}`.
      if (options.is_number()) {
        step.factor = options.get<double>();
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
      throw ValueError(fmt::format(
          "{}: unknown preprocessing step '{}' (known: rescale, standardize, one_hot, random_flip, "
          "random_crop)",
          where, kind));
    }
    p.steps_.push_back(step);
  }
  return p;
}

Preprocessor Preprocessor::from_saved(const std::string& json_text, const std::string& source) {
  Preprocessor p;
  try {
    for (const json& s : json::parse(json_text)) {
      Step step{.kind = s.at("kind").get<std::string>()};
      step.factor = s.value("factor", 1.0);
      step.padding = s.value("padding", int64_t{0});
      if (step.kind == "standardize") {
        const auto shape = s.at("shape").get<std::vector<int64_t>>();
        step.mean = Tensor::from_vector(s.at("mean").get<std::vector<float>>(), shape);
        step.stddev = Tensor::from_vector(s.at("std").get<std::vector<float>>(), shape);
      }
      p.steps_.push_back(step);
    }
  } catch (const json::exception& e) {
    throw IOError(fmt::format("{}: malformed preprocessing metadata: {}", source, e.what()));
  }
  return p;
}

void Preprocessor::fit(const Tensor& x_train) {
  Tensor x = x_train;
  for (Step& step : steps_) {
    if (step.kind == "standardize") {
      const data::Standardizer s = data::Standardizer::fit(x);
      step.mean = s.mean;
      step.stddev = s.stddev;
    }
    // Later steps see the data as the earlier ones leave it.
    if (step.kind == "rescale") x = data::rescale(x, step.factor);
    if (step.kind == "standardize") x = data::Standardizer{step.mean, step.stddev}.apply(x);
  }
}

Tensor Preprocessor::apply_x(const Tensor& x) const {
  Tensor out = x.dtype() == DType::kFloat32 ? x : x.detach().to(DType::kFloat32);
  for (const Step& step : steps_) {
    if (step.kind == "rescale") out = data::rescale(out, step.factor);
    if (step.kind == "standardize") {
      NEUTRINO_CHECK_VALUE(step.mean.defined(), "standardize: used before being fitted");
      out = data::Standardizer{step.mean, step.stddev}.apply(out);
    }
  }
  return out;
}

Tensor Preprocessor::apply_y(const Tensor& y, int64_t num_classes) const {
  for (const Step& step : steps_) {
    if (step.kind == "one_hot") {
      NEUTRINO_CHECK_VALUE(y.dtype() == DType::kInt64, "one_hot: labels must be integers");
      return nn::one_hot(reshape(y, {y.numel()}), num_classes, DType::kFloat32, "one_hot");
    }
  }
  return y;
}

std::function<Tensor(const Tensor&, Generator&)> Preprocessor::augmenter() const {
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

std::string Preprocessor::to_saved() const {
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

}  // namespace neutrino::cli
