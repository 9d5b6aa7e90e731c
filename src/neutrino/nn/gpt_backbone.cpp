#include "neutrino/nn/gpt_backbone.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "neutrino/core/error.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/model_file.h"
#include "neutrino/ops/ops.h"

namespace neutrino::nn {

GPTBackbone::GPTBackbone(GPTOptions gpt, GPTBackboneOptions options)
    : Layer(options.input_shape, options.name), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(options_.pooling == "last" || options_.pooling == "mean",
                       "GPTBackbone.pooling: expected \"last\" or \"mean\", got \"{}\"",
                       options_.pooling);
  check_gpt_options(gpt);
  gpt_ = std::make_shared<GPT>(std::move(gpt));
}

Shape GPTBackbone::output_shape(const Shape& in) const {
  NEUTRINO_CHECK_SHAPE(in.size() == 1 && in[0] >= 1 && in[0] <= gpt_->options().context,
                       "GPTBackbone '{}': expected token ids (T) with 1 <= T <= the context ({}) "
                       "per sample, got {}", name(), gpt_->options().context, shape_str(in));
  return {gpt_->options().d_model};
}

WeightShapes GPTBackbone::weight_shapes(const Shape& /*in*/) const {
  WeightShapes out;
  for (const auto& [name, tensor] : gpt_->named_parameters()) out.emplace_back(name, tensor.shape());
  return out;
}

void GPTBackbone::build_weights(const Shape& /*in*/) { register_module("", gpt_); }

// Pooling as one weighted sum over time: out[b] = sum_t w[b, t] h[b, t, :], with w one-hot at the
// last real token ("last") or 1/n over the n real tokens ("mean"); a row of padding only counts
// its first position. h: (B, T, d), w: (B, T, 1).
Tensor GPTBackbone::call(const Tensor& x) {
  const Tensor ids = x.dtype() == DType::kInt64 ? x : cast(x.detach(), DType::kInt64);
  NEUTRINO_CHECK_SHAPE(ids.dim() == 2, "GPTBackbone '{}': expected ids (B, T), got {}", name(),
                       shape_str(ids.shape()));
  const Tensor hidden = gpt_->hidden_states(ids);
  const int64_t batch = ids.size(0), steps = ids.size(1);
  const std::vector<int64_t> values = ids.to_vector<int64_t>();
  std::vector<float> weights(static_cast<size_t>(batch * steps), 0.0f);
  for (int64_t b = 0; b < batch; ++b) {
    const auto row = values.begin() + b * steps;
    // The real tokens are those before the trailing padding.
    int64_t length = steps;
    while (length > 0 && row[length - 1] == 0) --length;
    length = std::max<int64_t>(length, 1);
    float* w = weights.data() + b * steps;
    if (options_.pooling == "last") {
      w[length - 1] = 1.0f;
    } else {
      std::fill(w, w + length, 1.0f / static_cast<float>(length));
    }
  }
  const Tensor w = Tensor::from_vector(weights, {batch, steps, 1});
  return sum(mul(hidden, w), {1});
}

LayerPtr gpt_backbone_from_config(io::ConfigReader& r, const Shape& input_shape,
                                  const std::string& name) {
  GPTBackboneOptions o{.input_shape = input_shape, .name = name};
  o.pooling = r.get_string("pooling", o.pooling);
  const bool has_model = r.has("from_model");
  NEUTRINO_CHECK_VALUE(has_model != r.has("GPT"),
                       "{}: expected either GPT (the options of a new GPT) or from_model (a "
                       "language-model file)", r.path());
  if (!has_model) {
    const nlohmann::json& gpt = r.get_raw("GPT");
    NEUTRINO_CHECK_VALUE(gpt.is_object(), "{}: expected a map of GPT options", r.path_of("GPT"));
    return std::make_shared<GPTBackbone>(gpt_options_from_json(gpt.dump(), r.path_of("GPT")), o);
  }
  const std::string path = r.require_string("from_model");
  const bool pretrained = r.get_bool("pretrained", true);
  io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kModel);
  const auto gpt = gpt_options_of_architecture(file.architecture, path);
  NEUTRINO_CHECK_VALUE(gpt.has_value(), "{}: {} is not a language model (its architecture is not "
                       "a GPT)", r.path_of("from_model"), path);
  auto layer = std::make_shared<GPTBackbone>(*gpt, o);
  if (pretrained) {
    try {
      layer->gpt().load_state_dict(file.weights);
    } catch (const Error& e) {
      throw IOError(fmt::format("{}: {}", path, e.what()));
    }
  }
  return layer;
}

bool gpt_backbone_to_config(const Layer& layer, nlohmann::json& config) {
  const auto* b = dynamic_cast<const GPTBackbone*>(&layer);
  if (b == nullptr) return false;
  config["GPT"] = nlohmann::json::parse(gpt_options_to_json(b->gpt_options()));
  config["pooling"] = b->options().pooling;
  return true;
}

}  // namespace neutrino::nn
