#include "neutrino/nn/layers.h"

#include <cmath>
#include <limits>

#include "neutrino/core/random.h"
#include "neutrino/nn/activation.h"
#include "neutrino/nn/init.h"

namespace neutrino::nn {

namespace {
Shape per_sample(const Tensor& x, const std::string& layer) {
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1, "{}: input must have a batch dim, got a scalar", layer);
  return Shape(x.shape().begin() + 1, x.shape().end());
}

void check_init(const std::string& name) {
  NEUTRINO_CHECK_VALUE(is_initializer(name), "unknown initializer '{}'", name);
}

void check_padding(const std::string& padding, const std::string& layer) {
  NEUTRINO_CHECK_VALUE(padding == "valid" || padding == "same",
                       "{}: padding must be 'valid' or 'same', got '{}'", layer, padding);
}

// The product of the dims, or -1 past kMaxLayerElements (or for a negative dim): never overflows.
int64_t bounded_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > kMaxLayerElements / d)) return -1;
    n *= d;
  }
  return n;
}

// The product as a double, for messages about sizes too large to count exactly.
double approx_numel(const Shape& shape) {
  double n = 1;
  for (int64_t d : shape) n *= static_cast<double>(d);
  return n;
}

void check_window(Size2 size, int64_t min, const std::string& what) {
  NEUTRINO_CHECK_VALUE(size.h >= min && size.w >= min && size.h <= kMaxWindow && size.w <= kMaxWindow,
                       "{} must be in [{}, {}], got ({}, {})", what, min, kMaxWindow, size.h, size.w);
}
}  // namespace

// ---- Layer ---------------------------------------------------------------------------------

Tensor Layer::forward(const Tensor& x) {
  check_input_count(1);
  build(per_sample(x, name_));
  return call(x);
}

Tensor Layer::forward(const Tensor& x, const Tensor& mask) {
  if (!mask.defined()) return forward(x);
  check_input_count(1);
  build(per_sample(x, name_));
  NEUTRINO_CHECK_SHAPE(mask.dtype() == DType::kBool && mask.dim() == 2 && x.dim() >= 2 &&
                           mask.size(0) == x.size(0) && mask.size(1) == x.size(1),
                       "{} '{}': a mask must be bool (batch, steps) for input {}, got {} {}",
                       type_name(), name_, x.shape_string(), dtype_name(mask.dtype()),
                       mask.shape_string());
  return call_masked(x, mask);
}

Tensor Layer::forward(const std::vector<Tensor>& inputs) {
  if (num_inputs() == 1) {
    check_input_count(inputs.size());
    return forward(inputs.front());
  }
  check_input_count(inputs.size());
  std::vector<Shape> shapes;
  for (const Tensor& x : inputs) shapes.push_back(per_sample(x, name_));
  build_for(shapes);
  return call_inputs(inputs);
}

std::shared_ptr<Layer> Layer::clone() const {
  throw ValueError(fmt::format("{} '{}' cannot be copied into a graph: hold it in a shared_ptr "
                               "(std::make_shared) and call that, or give the class "
                               "NEUTRINO_LAYER_CLONE", type_name(), name_));
}

void Layer::check_input_count(size_t count) const {
  const int want = num_inputs();
  if (want == 1) {
    NEUTRINO_CHECK_VALUE(count == 1, "{} '{}' takes one input, got {}", type_name(), name_, count);
  } else if (want < 0) {
    NEUTRINO_CHECK_VALUE(count >= 2, "{} '{}' takes a list of at least 2 inputs, got {}",
                         type_name(), name_, count);
  } else {
    NEUTRINO_CHECK_VALUE(count == static_cast<size_t>(want), "{} '{}' takes {} inputs, got {}",
                         type_name(), name_, want, count);
  }
}

Shape Layer::output_shape_for(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  return output_shape(input_shapes.front());
}

Tensor Layer::call_inputs(const std::vector<Tensor>& inputs) {
  check_input_count(inputs.size());
  return call(inputs.front());
}

Shape Layer::plan_for(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  if (num_inputs() == 1) return plan(input_shapes.front());
  for (const Shape& shape : input_shapes) {
    NEUTRINO_CHECK_SHAPE(bounded_numel(shape) >= 0,
                         "{} '{}': input shape {} has {:.3g} values per sample, more than the "
                         "limit of {}", type_name(), name_, shape_str(shape), approx_numel(shape),
                         kMaxLayerElements);
  }
  const Shape out = output_shape_for(input_shapes);
  NEUTRINO_CHECK_SHAPE(bounded_numel(out) >= 0,
                       "{} '{}': output shape {} has {:.3g} values per sample, more than the limit "
                       "of {}", type_name(), name_, shape_str(out), approx_numel(out),
                       kMaxLayerElements);
  return out;
}

void Layer::build_for(const std::vector<Shape>& input_shapes) {
  if (num_inputs() == 1) {
    check_input_count(input_shapes.size());
    build(input_shapes.front());
    return;
  }
  if (built_) return;
  plan_for(input_shapes);
  // A layer with several inputs and weights (cross-attention) sizes them from the first input.
  build_weights(input_shapes.front());
  built_shape_ = input_shapes.front();
  built_ = true;
}

Shape Layer::plan(const Shape& input_shape) const {
  NEUTRINO_CHECK_SHAPE(bounded_numel(input_shape) >= 0,
                       "{} '{}': input shape {} has {:.3g} values per sample, more than the limit "
                       "of {}", type_name(), name_, shape_str(input_shape), approx_numel(input_shape),
                       kMaxLayerElements);
  const Shape out = output_shape(input_shape);  // throws if the shape does not fit
  double params = 0;
  for (const auto& [weight, shape] : weight_shapes(input_shape)) params += approx_numel(shape);
  NEUTRINO_CHECK_SHAPE(params <= static_cast<double>(kMaxLayerElements),
                       "{} '{}': {:.3g} parameters for input shape {}, more than the limit of {} "
                       "per layer", type_name(), name_, params, shape_str(input_shape),
                       kMaxLayerElements);
  NEUTRINO_CHECK_SHAPE(bounded_numel(out) >= 0,
                       "{} '{}': output shape {} has {:.3g} values per sample, more than the limit "
                       "of {}", type_name(), name_, shape_str(out), approx_numel(out),
                       kMaxLayerElements);
  return out;
}

void Layer::build(const Shape& input_shape) {
  if (built_) {
    return;
  }
  plan(input_shape);
  build_weights(input_shape);
  built_shape_ = input_shape;
  built_ = true;
}

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  for (const auto& [name, t] : named_buffers()) n += t.numel();
  return n;
}

// ---- Dense ---------------------------------------------------------------------------------

Dense::Dense(int64_t units, DenseOptions options)
    : Layer(options.input_shape, options.name), units_(units), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(units > 0 && units <= kMaxLayerElements,
                       "Dense: units must be in [1, {}], got {}", kMaxLayerElements, units);
  check_activation(options_.activation);
  check_init(options_.kernel_initializer);
  check_init(options_.bias_initializer);
}

Shape Dense::output_shape(const Shape& input_shape) const {
  NEUTRINO_CHECK_SHAPE(!input_shape.empty(), "Dense '{}': input needs at least one feature dim",
                       name());
  if (built()) {
    NEUTRINO_CHECK_SHAPE(input_shape.back() == weight_.size(1),
                         "Dense '{}': expected {} input features, got input shape {}", name(),
                         weight_.size(1), shape_str(input_shape));
  }
  Shape out = input_shape;
  out.back() = units_;
  return out;
}

WeightShapes Dense::weight_shapes(const Shape& input_shape) const {
  WeightShapes out{{"weight", {units_, input_shape.back()}}};
  if (options_.use_bias) out.emplace_back("bias", Shape{units_});
  return out;
}

void Dense::build_weights(const Shape& input_shape) {
  weight_ = register_parameter("weight", Tensor::zeros({units_, input_shape.back()}));
  initialize(weight_, options_.kernel_initializer);
  if (options_.use_bias) {
    bias_ = register_parameter("bias", Tensor::zeros({units_}));
    initialize(bias_, options_.bias_initializer);
  }
}

Tensor Dense::call(const Tensor& x) {
  NEUTRINO_CHECK_SHAPE(x.size(-1) == weight_.size(1),
                       "Dense '{}': expected {} input features, got input shape {}", name(),
                       weight_.size(1), x.shape_string());
  if (options_.activation == "relu") return linear(x, weight_, bias_, Epilogue::kRelu);
  return apply_activation(options_.activation, linear(x, weight_, bias_));
}

// ---- Activation, Dropout, Flatten ----------------------------------------------------------

Activation::Activation(std::string activation, LayerOptions options)
    : Layer(options.input_shape, options.name), activation_(std::move(activation)) {
  check_activation(activation_);
}

Tensor Activation::call(const Tensor& x) { return apply_activation(activation_, x); }

Dropout::Dropout(double rate, LayerOptions options)
    : Layer(options.input_shape, options.name), rate_(rate) {
  NEUTRINO_CHECK_VALUE(rate >= 0 && rate < 1, "Dropout: rate must be in [0, 1), got {}", rate);
}

Tensor Dropout::call(const Tensor& x) { return dropout(x, rate_, is_training()); }

Flatten::Flatten(LayerOptions options) : Layer(options.input_shape, options.name) {}

Shape Flatten::output_shape(const Shape& input_shape) const { return {shape_numel(input_shape)}; }

Tensor Flatten::call(const Tensor& x) {
  return reshape(x, {x.size(0), x.dim() == 1 ? 1 : x.numel() / std::max<int64_t>(x.size(0), 1)});
}

// ---- Conv2D --------------------------------------------------------------------------------

Conv2D::Conv2D(int64_t filters, Size2 kernel_size, Conv2DOptions options)
    : Layer(options.input_shape, options.name),
      filters_(filters),
      kernel_(kernel_size),
      options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(filters > 0 && filters <= kMaxLayerElements,
                       "Conv2D: filters must be in [1, {}], got {}", kMaxLayerElements, filters);
  check_window(kernel_, 1, "Conv2D: kernel_size");
  check_window(options_.strides, 1, "Conv2D: strides");
  check_window(options_.dilation_rate, 1, "Conv2D: dilation_rate");
  NEUTRINO_CHECK_VALUE(options_.groups >= 1 && filters % options_.groups == 0,
                       "Conv2D: filters {} must be divisible by groups {}", filters,
                       options_.groups);
  check_padding(options_.padding, "Conv2D");
  check_activation(options_.activation);
  check_init(options_.kernel_initializer);
  check_init(options_.bias_initializer);
}

Conv2dParams Conv2D::params_for(int64_t height, int64_t width) const {
  Conv2dParams p;
  p.stride_h = options_.strides.h;
  p.stride_w = options_.strides.w;
  p.dilation_h = options_.dilation_rate.h;
  p.dilation_w = options_.dilation_rate.w;
  p.groups = options_.groups;
  if (options_.padding == "same") {
    std::tie(p.pad_top, p.pad_bottom) = same_padding(height, kernel_.h, p.stride_h, p.dilation_h);
    std::tie(p.pad_left, p.pad_right) = same_padding(width, kernel_.w, p.stride_w, p.dilation_w);
  }
  return p;
}

Shape Conv2D::output_shape(const Shape& in) const {
  NEUTRINO_CHECK_SHAPE(in.size() == 3, "Conv2D '{}': input must be (channels, height, width), got {}",
                       name(), shape_str(in));
  NEUTRINO_CHECK_SHAPE(in[0] % options_.groups == 0,
                       "Conv2D '{}': {} input channels are not divisible by groups {}", name(),
                       in[0], options_.groups);
  // A dilated kernel that spans more than the input only multiplies the padding ('same') or
  // leaves no output ('valid'): refused rather than run for minutes over zeros.
  const Size2& d = options_.dilation_rate;
  const int64_t span_h = (kernel_.h - 1) * d.h + 1, span_w = (kernel_.w - 1) * d.w + 1;
  NEUTRINO_CHECK_SHAPE((d.h == 1 || span_h <= in[1]) && (d.w == 1 || span_w <= in[2]),
                       "Conv2D '{}': with dilation_rate ({}, {}) the {}x{} kernel spans {}x{} "
                       "pixels, more than the {}x{} input", name(), d.h, d.w, kernel_.h, kernel_.w,
                       span_h, span_w, in[1], in[2]);
  const Conv2dParams p = params_for(in[1], in[2]);
  const ConvGeometry g =
      conv_geometry({1, in[0], in[1], in[2]}, {filters_, in[0] / options_.groups, kernel_.h, kernel_.w}, p);
  const int64_t oh = g.out_h, ow = g.out_w;
  NEUTRINO_CHECK_SHAPE(oh > 0 && ow > 0, "Conv2D '{}': input {} is too small for a {}x{} kernel",
                       name(), shape_str(in), kernel_.h, kernel_.w);
  return {filters_, oh, ow};
}

WeightShapes Conv2D::weight_shapes(const Shape& in) const {
  WeightShapes out{{"weight", {filters_, in[0] / options_.groups, kernel_.h, kernel_.w}}};
  if (options_.use_bias) out.emplace_back("bias", Shape{filters_});
  return out;
}

void Conv2D::build_weights(const Shape& in) {
  weight_ = register_parameter(
      "weight", Tensor::zeros({filters_, in[0] / options_.groups, kernel_.h, kernel_.w}));
  initialize(weight_, options_.kernel_initializer);
  if (options_.use_bias) {
    bias_ = register_parameter("bias", Tensor::zeros({filters_}));
    initialize(bias_, options_.bias_initializer);
  }
}

Layer::Bf16Use Conv2D::bf16_use() const {
  const std::string& a = options_.activation;
  return a.empty() || a == "linear" || a == "relu" ? Bf16Use::kComputes : Bf16Use::kNo;
}

Tensor Conv2D::call(const Tensor& x) {
  NEUTRINO_CHECK_SHAPE(x.dim() == 4, "Conv2D '{}': input must be (N, C, H, W), got {}", name(),
                       x.shape_string());
  const Conv2dParams params = params_for(x.size(2), x.size(3));
  if (options_.activation == "relu") return conv2d(x, weight_, bias_, params, Epilogue::kRelu);
  return apply_activation(options_.activation, conv2d(x, weight_, bias_, params));
}

// ---- pooling -------------------------------------------------------------------------------

MaxPooling2D::MaxPooling2D(Size2 pool_size, Pool2DOptions options)
    : Layer(options.input_shape, options.name), pool_(pool_size), options_(std::move(options)) {
  check_window(pool_, 1, type_name() + ": pool_size");
  check_window(options_.strides, 0, type_name() + ": strides");
  check_padding(options_.padding, type_name());
}

Pool2dParams MaxPooling2D::params_for(int64_t height, int64_t width) const {
  Pool2dParams p;
  p.kernel_h = pool_.h;
  p.kernel_w = pool_.w;
  p.stride_h = options_.strides > 0 ? options_.strides : pool_.h;
  p.stride_w = options_.strides > 0 ? options_.strides : pool_.w;
  if (options_.padding == "same") {
    std::tie(p.pad_top, p.pad_bottom) = same_padding(height, pool_.h, p.stride_h, 1);
    std::tie(p.pad_left, p.pad_right) = same_padding(width, pool_.w, p.stride_w, 1);
    p.count_include_pad = false;  // Keras averages over the real pixels only
  }
  return p;
}

Shape MaxPooling2D::output_shape(const Shape& in) const {
  NEUTRINO_CHECK_SHAPE(in.size() == 3, "{} '{}': input must be (channels, height, width), got {}",
                       type_name(), name(), shape_str(in));
  const Pool2dParams p = params_for(in[1], in[2]);
  const ConvGeometry g = pool_geometry({1, in[0], in[1], in[2]}, p);
  const int64_t oh = g.out_h, ow = g.out_w;
  NEUTRINO_CHECK_SHAPE(oh > 0 && ow > 0,
                       "{} '{}': input {} is smaller than the {}x{} pool", type_name(), name(),
                       shape_str(in), p.kernel_h, p.kernel_w);
  return {in[0], oh, ow};
}

Tensor MaxPooling2D::call(const Tensor& x) {
  return max_pool2d(x, params_for(x.size(2), x.size(3)));
}

std::optional<Tensor> fused_conv_relu_max_pool(Layer& first, Layer& second, const Tensor& x) {
  auto* conv = dynamic_cast<Conv2D*>(&first);
  auto* pool = dynamic_cast<MaxPooling2D*>(&second);
  // AveragePooling2D derives from MaxPooling2D: the type name tells them apart.
  if (conv == nullptr || pool == nullptr || pool->type_name() != "MaxPooling2D" ||
      conv->options_.activation != "relu" || !conv->built() || !pool->built() || x.dim() != 4) {
    return std::nullopt;
  }
  const Conv2dParams conv_params = conv->params_for(x.size(2), x.size(3));
  const Shape conv_out = conv->output_shape({x.size(1), x.size(2), x.size(3)});
  return conv2d_relu_max_pool2d(x, conv->weight_, conv->bias_, conv_params,
                                pool->params_for(conv_out[1], conv_out[2]));
}

AveragePooling2D::AveragePooling2D(Size2 pool_size, Pool2DOptions options)
    : MaxPooling2D(pool_size, std::move(options)) {}

Tensor AveragePooling2D::call(const Tensor& x) {
  return avg_pool2d(x, params_for(x.size(2), x.size(3)));
}

// ---- normalization -------------------------------------------------------------------------

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : Layer(options.input_shape, options.name), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(options_.momentum >= 0 && options_.momentum <= 1 && options_.epsilon > 0,
                       "BatchNormalization: momentum must be in [0, 1] and epsilon positive");
}

WeightShapes BatchNormalization::weight_shapes(const Shape& in) const {
  NEUTRINO_CHECK_SHAPE(!in.empty(), "BatchNormalization '{}': input needs a feature dim", name());
  WeightShapes out;
  if (options_.scale) out.emplace_back("weight", Shape{in[0]});
  if (options_.center) out.emplace_back("bias", Shape{in[0]});
  out.emplace_back("running_mean", Shape{in[0]});
  out.emplace_back("running_var", Shape{in[0]});
  return out;
}

void BatchNormalization::build_weights(const Shape& in) {
  const int64_t channels = in[0];
  if (options_.scale) weight_ = register_parameter("weight", Tensor::ones({channels}));
  if (options_.center) bias_ = register_parameter("bias", Tensor::zeros({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::ones({channels}));
}

Tensor BatchNormalization::call(const Tensor& x) {
  // Keras's momentum keeps the old value; PyTorch's weights the new batch.
  return batch_norm(x, weight_, bias_, running_mean_, running_var_, is_training(),
                    1.0 - options_.momentum, options_.epsilon);
}

LayerNormalization::LayerNormalization(LayerNormalizationOptions options)
    : Layer(options.input_shape, options.name), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(options_.epsilon > 0, "LayerNormalization: epsilon must be positive");
}

WeightShapes LayerNormalization::weight_shapes(const Shape& in) const {
  NEUTRINO_CHECK_SHAPE(!in.empty(), "LayerNormalization '{}': input needs a feature dim", name());
  WeightShapes out;
  if (options_.scale) out.emplace_back("weight", Shape{in.back()});
  if (options_.center) out.emplace_back("bias", Shape{in.back()});
  return out;
}

void LayerNormalization::build_weights(const Shape& in) {
  if (options_.scale) weight_ = register_parameter("weight", Tensor::ones({in.back()}));
  if (options_.center) bias_ = register_parameter("bias", Tensor::zeros({in.back()}));
}

Tensor LayerNormalization::call(const Tensor& x) {
  return layer_norm(x, {x.size(-1)}, weight_, bias_, options_.epsilon);
}

// ---- Embedding -----------------------------------------------------------------------------

Embedding::Embedding(int64_t input_dim, int64_t output_dim, EmbeddingOptions options)
    : Layer(options.input_shape, options.name),
      input_dim_(input_dim),
      output_dim_(output_dim),
      options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(input_dim > 0 && output_dim > 0 && input_dim <= kMaxLayerElements &&
                           output_dim <= kMaxLayerElements,
                       "Embedding: input_dim and output_dim must be in [1, {}]", kMaxLayerElements);
  NEUTRINO_CHECK_VALUE(options_.embeddings_initializer == "uniform" ||
                           is_initializer(options_.embeddings_initializer),
                       "Embedding: unknown initializer '{}'", options_.embeddings_initializer);
}

Shape Embedding::output_shape(const Shape& in) const {
  Shape out = in;
  out.push_back(output_dim_);
  return out;
}

WeightShapes Embedding::weight_shapes(const Shape& /*in*/) const {
  return {{"weight", {input_dim_, output_dim_}}};
}

void Embedding::build_weights(const Shape& /*in*/) {
  if (options_.embeddings_initializer == "uniform") {
    weight_ = register_parameter("weight", Tensor::uniform({input_dim_, output_dim_}, -0.05, 0.05));
  } else {
    weight_ = register_parameter("weight", Tensor::zeros({input_dim_, output_dim_}));
    initialize(weight_, options_.embeddings_initializer);
  }
}

Tensor Embedding::call(const Tensor& x) {
  // Keras feeds indices as floats too; accept either.
  const Tensor indices = x.dtype() == DType::kInt64 ? x : cast(x.detach(), DType::kInt64);
  return embedding(weight_, indices);
}

Tensor Embedding::compute_mask(const Tensor& x, const Tensor& /*mask*/) const {
  if (!options_.mask_zero) return Tensor();
  const Tensor indices = x.dtype() == DType::kInt64 ? x : cast(x.detach(), DType::kInt64);
  return not_equal(indices, Tensor::scalar(0, DType::kInt64));
}

// ---- ReLU, global pooling, zero padding ------------------------------------------------------

ReLU::ReLU(ReLUOptions options)
    : Layer(options.input_shape, options.name), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(options_.max_value >= 0 && std::isfinite(options_.max_value),
                       "ReLU: max_value must be >= 0 (0: none), got {}", options_.max_value);
  NEUTRINO_CHECK_VALUE(options_.negative_slope >= 0 && std::isfinite(options_.negative_slope),
                       "ReLU: negative_slope must be >= 0, got {}", options_.negative_slope);
}

Tensor ReLU::call(const Tensor& x) {
  Tensor y = options_.negative_slope > 0 ? leaky_relu(x, options_.negative_slope) : relu(x);
  if (options_.max_value > 0) y = clamp(y, -std::numeric_limits<double>::infinity(), options_.max_value);
  return y;
}

GlobalAveragePooling2D::GlobalAveragePooling2D(LayerOptions options)
    : Layer(options.input_shape, options.name) {}

Shape GlobalAveragePooling2D::output_shape(const Shape& input_shape) const {
  NEUTRINO_CHECK_SHAPE(input_shape.size() == 3, "{} '{}': expected (C, H, W) inputs, got {}",
                       type_name(), name(), shape_str(input_shape));
  return {input_shape[0]};
}

Tensor GlobalAveragePooling2D::call(const Tensor& x) { return mean(x, {2, 3}); }

GlobalMaxPooling2D::GlobalMaxPooling2D(LayerOptions options) : GlobalAveragePooling2D(options) {}

Tensor GlobalMaxPooling2D::call(const Tensor& x) { return max(x, {2, 3}); }

ZeroPadding2D::ZeroPadding2D(Size2 padding, ZeroPadding2DOptions options)
    : ZeroPadding2D(Size2(padding.h, padding.h), Size2(padding.w, padding.w), std::move(options)) {}

ZeroPadding2D::ZeroPadding2D(Size2 rows, Size2 columns, ZeroPadding2DOptions options)
    : Layer(options.input_shape, options.name), rows_(rows), columns_(columns) {
  for (int64_t p : {rows.h, rows.w, columns.h, columns.w}) {
    NEUTRINO_CHECK_VALUE(p >= 0 && p <= kMaxWindow, "ZeroPadding2D: padding must be in [0, {}], "
                         "got {}", kMaxWindow, p);
  }
}

Shape ZeroPadding2D::output_shape(const Shape& input_shape) const {
  NEUTRINO_CHECK_SHAPE(input_shape.size() == 3, "ZeroPadding2D '{}': expected (C, H, W) inputs, "
                       "got {}", name(), shape_str(input_shape));
  return {input_shape[0], input_shape[1] + rows_.h + rows_.w,
          input_shape[2] + columns_.h + columns_.w};
}

Tensor ZeroPadding2D::call(const Tensor& x) {
  // Zero blocks joined on each side: concat's backward slices the gradient back out.
  auto pad_dim = [](const Tensor& t, int64_t dim, int64_t before, int64_t after) {
    if (before == 0 && after == 0) return t;
    std::vector<Tensor> parts;
    Shape block = t.shape();
    if (before > 0) {
      block[dim] = before;
      parts.push_back(Tensor::zeros(block, t.dtype()));
    }
    parts.push_back(t);
    if (after > 0) {
      block[dim] = after;
      parts.push_back(Tensor::zeros(block, t.dtype()));
    }
    return concat(parts, dim);
  };
  return pad_dim(pad_dim(x, 2, rows_.h, rows_.w), 3, columns_.h, columns_.w);
}

}  // namespace neutrino::nn
