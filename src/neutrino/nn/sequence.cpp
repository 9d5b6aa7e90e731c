#include "neutrino/nn/sequence.h"

#include <limits>

#include "neutrino/nn/activation.h"
#include "neutrino/nn/init.h"

namespace neutrino::nn {

namespace {
void check_steps_channels(const Shape& in, const Layer& layer) {
  NEUTRINO_CHECK_SHAPE(in.size() == 2, "{} '{}': expected (steps, channels) inputs, got {}",
                       layer.type_name(), layer.name(), shape_str(in));
}

// A built layer's input at call time: (N, steps, channels), or an error naming the layer.
void check_sequence_input(const Tensor& x, const Layer& layer) {
  NEUTRINO_CHECK_SHAPE(x.dim() == 3, "{} '{}': input must be (N, steps, channels), got {}",
                       layer.type_name(), layer.name(), x.shape_string());
}

// (N, T, C) <-> (N, C, 1, T), the layout conv2d and the 2-D pools read.
Tensor as_image(const Tensor& x) {
  return reshape(transpose(x, 1, 2), {x.size(0), x.size(2), 1, x.size(1)});
}
Tensor from_image(const Tensor& y) {
  return transpose(reshape(y, {y.size(0), y.size(1), y.size(3)}), 1, 2);
}

// (N, T) bool -> (N, T, 1) in x's dtype.
Tensor mask_column(const Tensor& mask, const Tensor& x) {
  return reshape(cast(mask, x.dtype()), {mask.size(0), mask.size(1), 1});
}
}  // namespace

// ---- Conv1D ----------------------------------------------------------------------------------

Conv1D::Conv1D(int64_t filters, int64_t kernel_size, Conv1DOptions options)
    : Layer(options.input_shape, options.name),
      filters_(filters),
      kernel_(kernel_size),
      options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(filters > 0 && filters <= kMaxLayerElements,
                       "Conv1D: filters must be in [1, {}], got {}", kMaxLayerElements, filters);
  for (int64_t v : {kernel_size, options_.strides, options_.dilation_rate}) {
    NEUTRINO_CHECK_VALUE(v >= 1 && v <= kMaxWindow,
                         "Conv1D: kernel_size, strides and dilation_rate must be in [1, {}], got {}",
                         kMaxWindow, v);
  }
  const std::string& p = options_.padding;
  NEUTRINO_CHECK_VALUE(p == "valid" || p == "same" || p == "causal",
                       "Conv1D: padding must be 'valid', 'same' or 'causal', got '{}'", p);
  check_activation(options_.activation);
  NEUTRINO_CHECK_VALUE(is_initializer(options_.kernel_initializer) &&
                           is_initializer(options_.bias_initializer),
                       "Conv1D: unknown initializer '{}' or '{}'", options_.kernel_initializer,
                       options_.bias_initializer);
}

Conv2dParams Conv1D::params_for(int64_t steps) const {
  Conv2dParams p;
  p.stride_w = options_.strides;
  p.dilation_w = options_.dilation_rate;
  if (options_.padding == "same") {
    std::tie(p.pad_left, p.pad_right) = same_padding(steps, kernel_, p.stride_w, p.dilation_w);
  } else if (options_.padding == "causal") {
    p.pad_left = (kernel_ - 1) * options_.dilation_rate;
  }
  return p;
}

Shape Conv1D::output_shape(const Shape& in) const {
  check_steps_channels(in, *this);
  const int64_t span = (kernel_ - 1) * options_.dilation_rate + 1;
  NEUTRINO_CHECK_SHAPE(options_.dilation_rate == 1 || span <= in[0],
                       "Conv1D '{}': with dilation_rate {} the kernel spans {} steps, more than "
                       "the {} of the input", name(), options_.dilation_rate, span, in[0]);
  const Conv2dParams p = params_for(in[0]);
  const int64_t steps = window_output_size(in[0], kernel_, p.stride_w, p.dilation_w, p.pad_left,
                                           p.pad_right);
  NEUTRINO_CHECK_SHAPE(steps > 0, "Conv1D '{}': input {} is too short for a kernel of {}", name(),
                       shape_str(in), kernel_);
  return {steps, filters_};
}

WeightShapes Conv1D::weight_shapes(const Shape& in) const {
  WeightShapes out{{"weight", {filters_, in[1], kernel_}}};
  if (options_.use_bias) out.emplace_back("bias", Shape{filters_});
  return out;
}

void Conv1D::build_weights(const Shape& in) {
  weight_ = register_parameter("weight", Tensor::zeros({filters_, in[1], kernel_}));
  initialize(weight_, options_.kernel_initializer);
  if (options_.use_bias) {
    bias_ = register_parameter("bias", Tensor::zeros({filters_}));
    initialize(bias_, options_.bias_initializer);
  }
}

Tensor Conv1D::call(const Tensor& x) {
  NEUTRINO_CHECK_SHAPE(x.dim() == 3 && x.size(2) == weight_.size(1),
                       "Conv1D '{}': input must be (N, steps, {} channels), got {}", name(),
                       weight_.size(1), x.shape_string());
  const Tensor w = reshape(weight_, {filters_, weight_.size(1), 1, kernel_});
  const bool relu = options_.activation == "relu";
  const Tensor y = from_image(conv2d(as_image(x), w, bias_, params_for(x.size(1)),
                                     relu ? Epilogue::kRelu : Epilogue::kNone));
  return relu ? y : apply_activation(options_.activation, y);
}

// ---- MaxPooling1D ----------------------------------------------------------------------------

MaxPooling1D::MaxPooling1D(int64_t pool_size, Pool1DOptions options)
    : Layer(options.input_shape, options.name), pool_(pool_size), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(pool_size >= 1 && pool_size <= kMaxWindow && options_.strides >= 0 &&
                           options_.strides <= kMaxWindow,
                       "MaxPooling1D: pool_size must be in [1, {0}] and strides in [0, {0}], got "
                       "{1} and {2}", kMaxWindow, pool_size, options_.strides);
  NEUTRINO_CHECK_VALUE(options_.padding == "valid" || options_.padding == "same",
                       "MaxPooling1D: padding must be 'valid' or 'same', got '{}'", options_.padding);
}

Pool2dParams MaxPooling1D::params_for(int64_t steps) const {
  Pool2dParams p{.kernel_h = 1, .kernel_w = pool_, .stride_h = 1,
                 .stride_w = options_.strides > 0 ? options_.strides : pool_};
  if (options_.padding == "same") std::tie(p.pad_left, p.pad_right) = same_padding(steps, pool_, p.stride_w);
  return p;
}

Shape MaxPooling1D::output_shape(const Shape& in) const {
  check_steps_channels(in, *this);
  const Pool2dParams p = params_for(in[0]);
  const int64_t steps = window_output_size(in[0], pool_, p.stride_w, 1, p.pad_left, p.pad_right);
  NEUTRINO_CHECK_SHAPE(steps > 0, "MaxPooling1D '{}': input {} is too short for a pool of {}",
                       name(), shape_str(in), pool_);
  return {steps, in[1]};
}

Tensor MaxPooling1D::call(const Tensor& x) {
  check_sequence_input(x, *this);
  return from_image(max_pool2d(as_image(x), params_for(x.size(1))));
}

// ---- global pooling over time ----------------------------------------------------------------

GlobalAveragePooling1D::GlobalAveragePooling1D(LayerOptions options)
    : Layer(options.input_shape, options.name) {}

Shape GlobalAveragePooling1D::output_shape(const Shape& in) const {
  check_steps_channels(in, *this);
  return {in[1]};
}

Tensor GlobalAveragePooling1D::call(const Tensor& x) {
  check_sequence_input(x, *this);
  return mean(x, {1});
}

// sum(x * m) / max(sum(m), 1): a sample with no real step gives zeros.
Tensor GlobalAveragePooling1D::call_masked(const Tensor& x, const Tensor& mask) {
  check_sequence_input(x, *this);
  const Tensor m = mask_column(mask, x);
  const Tensor count = clamp(sum(m, {1}), 1, std::numeric_limits<double>::infinity());
  return div(sum(mul(x, m), {1}), count);
}

GlobalMaxPooling1D::GlobalMaxPooling1D(LayerOptions options)
    : GlobalAveragePooling1D(std::move(options)) {}

Tensor GlobalMaxPooling1D::call(const Tensor& x) {
  check_sequence_input(x, *this);
  return max(x, {1});
}

Tensor GlobalMaxPooling1D::call_masked(const Tensor& x, const Tensor& mask) {
  check_sequence_input(x, *this);
  const Tensor m = cast(mask, x.dtype());
  const Tensor padded = reshape(less(m, Tensor::scalar(0.5, x.dtype())), {mask.size(0), mask.size(1), 1});
  const Tensor best = max(masked_fill(x, padded, -std::numeric_limits<double>::infinity()), {1});
  // A sample with every step masked: zeros rather than -inf.
  const Tensor any = greater(sum(m, {1}, true), Tensor::scalar(0, x.dtype()));
  return where(any, best, Tensor::scalar(0, x.dtype()));
}

}  // namespace neutrino::nn
