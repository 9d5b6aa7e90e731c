// Keras-style layers with Keras names and defaults, holding PyTorch-layout weights
// (Dense: weight (out, in); Conv2D: weight (O, C/groups, KH, KW)) under PyTorch names.
// Images are channels-first (N, C, H, W), as in PyTorch; a layer's input_shape excludes the batch.
// Weights are created when the input shape is first known (from input_shape or the first call).
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <string>

#include "neutrino/nn/module.h"
#include "neutrino/ops/ops.h"

namespace neutrino::nn {

// Limits that keep a hostile config or model file from asking for an allocation of any size:
// one layer holds at most kMaxLayerElements parameters and buffers together, and its output at
// most kMaxLayerElements values per sample (2^31: 8 GiB of float32). Checked before anything is
// allocated (Layer::plan); the error names the layer.
inline constexpr int64_t kMaxLayerElements = int64_t{1} << 31;
// kernel_size, strides, dilation_rate and pool_size: at most this per axis (and at least 1).
inline constexpr int64_t kMaxWindow = int64_t{1} << 16;

// Names and shapes of a layer's parameters and buffers, in registration order.
using WeightShapes = std::vector<std::pair<std::string, Shape>>;

class SymbolicTensor;

class Layer : public Module, public std::enable_shared_from_this<Layer> {
 public:
  // Keras's type name ("Dense"); the default layer name is its snake_case form ("dense").
  virtual std::string type_name() const = 0;
  // Output shape for an input shape, both without the batch dim; ShapeError if they don't fit.
  virtual Shape output_shape(const Shape& input_shape) const = 0;
  // A copy of this layer (sharing any weights it already has): the functional API keeps one when
  // a layer is called by value, `Dense(10)(x)`. The built-in layers have one
  // (NEUTRINO_LAYER_CLONE); a layer class without it is called through a shared_ptr.
  virtual std::shared_ptr<Layer> clone() const;

  // Layers with several inputs (Add, Concatenate: MergeLayer) take `inputs` of them, -1 for any
  // number from 2; every other layer takes exactly one. The list forms below work for both.
  virtual int num_inputs() const { return 1; }
  // A ValueError naming the layer unless it takes `count` inputs.
  void check_input_count(size_t count) const;
  virtual Shape output_shape_for(const std::vector<Shape>& input_shapes) const;
  Shape plan_for(const std::vector<Shape>& input_shapes) const;
  void build_for(const std::vector<Shape>& input_shapes);

  Tensor forward(const Tensor& x) final;
  Tensor forward(const std::vector<Tensor>& inputs) final;
  // Keras's masking: `mask` is bool (batch, steps), false at padding. Embedding(mask_zero) makes
  // one; layers that read it (recurrent layers, 1-D global pooling) skip the padded steps; a graph
  // hands each layer its input's mask and passes on what compute_mask returns.
  Tensor forward(const Tensor& x, const Tensor& mask);
  // The mask of this layer's output for an input and its mask (either may be undefined): by
  // default none, so a mask stops at layers that do not keep the time axis aligned.
  virtual Tensor compute_mask(const Tensor& /*x*/, const Tensor& /*mask*/) const { return Tensor(); }
  using Module::operator();
  // The functional API (Keras): records a call on symbolic inputs and returns its output. A layer
  // owned by a shared_ptr joins the graph itself (call it twice to share its weights); one called
  // by value joins as a copy.
  SymbolicTensor operator()(const SymbolicTensor& input);
  SymbolicTensor operator()(const std::vector<SymbolicTensor>& inputs);

  // How the layer treats bfloat16 activations, which Sequential uses under a bf16 mixed-precision
  // policy: kComputes layers (Conv2D) start or continue a run of bf16 activations, kPassesThrough
  // layers (MaxPooling2D, Flatten) continue one, kEnds layers (Dense) read one and return float32,
  // and before any other layer the activations are cast back to float32.
  enum class Bf16Use { kNo, kPassesThrough, kComputes, kEnds };
  virtual Bf16Use bf16_use() const { return Bf16Use::kNo; }
  // What build() would create for this input, without allocating anything.
  virtual WeightShapes weight_shapes(const Shape& /*input_shape*/) const { return {}; }
  // Checks that the layer fits this input within the limits above and returns its output shape;
  // allocates nothing. build() calls it first.
  Shape plan(const Shape& input_shape) const;
  // Creates weights for this per-sample input shape; idempotent.
  void build(const Shape& input_shape);
  bool built() const { return built_; }
  int64_t count_params() const;

  const std::string& name() const { return name_; }
  void set_name(const std::string& name) { name_ = name; }
  const Shape& declared_input_shape() const { return input_shape_; }
  // The (first) input's shape it was built for.
  const Shape& built_input_shape() const { return built_shape_; }

 protected:
  Layer(Shape input_shape, std::string name)
      : input_shape_(std::move(input_shape)), name_(std::move(name)) {}
  virtual void build_weights(const Shape& /*input_shape*/) {}
  virtual Tensor call(const Tensor& x) = 0;
  // With a mask (defined); layers that do not read masks ignore it.
  virtual Tensor call_masked(const Tensor& x, const Tensor& /*mask*/) { return call(x); }
  // For layers with several inputs.
  virtual Tensor call_inputs(const std::vector<Tensor>& inputs);

 private:
  Shape input_shape_;
  std::string name_;
  Shape built_shape_;
  bool built_ = false;
};

// Gives a layer class its clone().
#define NEUTRINO_LAYER_CLONE(Type) \
  std::shared_ptr<Layer> clone() const override { return std::make_shared<Type>(*this); }

using LayerPtr = std::shared_ptr<Layer>;

// A layer by value or pointer, so Sequential({Dense(...), Dense(...)}) reads like Keras.
class AnyLayer {
 public:
  template <class L>
    requires std::derived_from<std::decay_t<L>, Layer>
  AnyLayer(L&& layer) : ptr_(std::make_shared<std::decay_t<L>>(std::forward<L>(layer))) {}
  AnyLayer(LayerPtr layer) : ptr_(std::move(layer)) {}
  const LayerPtr& get() const { return ptr_; }

 private:
  LayerPtr ptr_;
};

// Two sizes (height, width), from one number or two.
struct Size2 {
  Size2(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  int64_t h, w;
};

struct DenseOptions {
  Shape input_shape = {};
  std::string name = "";
  std::string activation = "";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};
// y = activation(x @ W^T + b) over the last axis. Parameters: weight (units, in), bias (units).
class Dense : public Layer {
 public:
  explicit Dense(int64_t units, DenseOptions options = {});
  // A template, so a braced options list never reads as an activation name.
  template <class S>
    requires std::convertible_to<S, std::string>
  Dense(int64_t units, S&& activation, DenseOptions options = {})
      : Dense(units, with_activation(std::move(options), std::string(std::forward<S>(activation)))) {}
  std::string type_name() const override { return "Dense"; }
  NEUTRINO_LAYER_CLONE(Dense)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Bf16Use bf16_use() const override { return Bf16Use::kEnds; }
  const DenseOptions& options() const { return options_; }
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }
  int64_t units() const { return units_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  static DenseOptions with_activation(DenseOptions options, std::string activation) {
    options.activation = std::move(activation);
    return options;
  }
  int64_t units_;
  DenseOptions options_;
  Tensor weight_, bias_;
};

struct LayerOptions {
  Shape input_shape = {};
  std::string name = "";
};

class Activation : public Layer {
 public:
  explicit Activation(std::string activation, LayerOptions options = {});
  std::string type_name() const override { return "Activation"; }
  NEUTRINO_LAYER_CLONE(Activation)
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  const std::string& activation() const { return activation_; }
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  std::string activation_;
};

// Inverted dropout in training, the identity in evaluation.
class Dropout : public Layer {
 public:
  explicit Dropout(double rate, LayerOptions options = {});
  std::string type_name() const override { return "Dropout"; }
  NEUTRINO_LAYER_CLONE(Dropout)
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  double rate() const { return rate_; }
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  double rate_;
};

class Flatten : public Layer {
 public:
  explicit Flatten(LayerOptions options = {});
  std::string type_name() const override { return "Flatten"; }
  NEUTRINO_LAYER_CLONE(Flatten)
  Shape output_shape(const Shape& input_shape) const override;
  Bf16Use bf16_use() const override { return Bf16Use::kPassesThrough; }

 protected:
  Tensor call(const Tensor& x) override;
};

struct Conv2DOptions {
  Shape input_shape = {};  // (C, H, W)
  std::string name = "";
  Size2 strides = 1;
  std::string padding = "valid";  // or "same" (Keras's split: the extra pixel goes bottom/right)
  Size2 dilation_rate = 1;
  int64_t groups = 1;
  std::string activation = "";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};
class Conv2D;
class MaxPooling2D;
// A Conv2D with relu activation and the MaxPooling2D after it as one op
// (conv2d_relu_max_pool2d), for Sequential; nullopt when `first` and `second` are any other pair
// or not built yet.
std::optional<Tensor> fused_conv_relu_max_pool(Layer& first, Layer& second, const Tensor& x);

class Conv2D : public Layer {
  friend std::optional<Tensor> fused_conv_relu_max_pool(Layer&, Layer&, const Tensor&);

 public:
  Conv2D(int64_t filters, Size2 kernel_size, Conv2DOptions options = {});
  std::string type_name() const override { return "Conv2D"; }
  NEUTRINO_LAYER_CLONE(Conv2D)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  // bf16 kernels cover the convolution and a relu (or no) activation.
  Bf16Use bf16_use() const override;
  const Conv2DOptions& options() const { return options_; }
  int64_t filters() const { return filters_; }
  Size2 kernel_size() const { return kernel_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  Conv2dParams params_for(int64_t height, int64_t width) const;
  int64_t filters_;
  Size2 kernel_;
  Conv2DOptions options_;
  Tensor weight_, bias_;
};

struct Pool2DOptions {
  Shape input_shape = {};
  std::string name = "";
  int64_t strides = 0;  // 0: the pool size, as in Keras
  std::string padding = "valid";
};
class MaxPooling2D : public Layer {
  friend std::optional<Tensor> fused_conv_relu_max_pool(Layer&, Layer&, const Tensor&);

 public:
  explicit MaxPooling2D(Size2 pool_size = 2, Pool2DOptions options = {});
  std::string type_name() const override { return "MaxPooling2D"; }
  NEUTRINO_LAYER_CLONE(MaxPooling2D)
  Shape output_shape(const Shape& input_shape) const override;
  Bf16Use bf16_use() const override { return Bf16Use::kPassesThrough; }
  Size2 pool_size() const { return pool_; }
  const Pool2DOptions& options() const { return options_; }

 protected:
  Tensor call(const Tensor& x) override;
  Pool2dParams params_for(int64_t height, int64_t width) const;

 private:
  Size2 pool_;
  Pool2DOptions options_;
};
class AveragePooling2D : public MaxPooling2D {
 public:
  explicit AveragePooling2D(Size2 pool_size = 2, Pool2DOptions options = {});
  std::string type_name() const override { return "AveragePooling2D"; }
  NEUTRINO_LAYER_CLONE(AveragePooling2D)
  Bf16Use bf16_use() const override { return Bf16Use::kNo; }

 protected:
  Tensor call(const Tensor& x) override;
};

struct BatchNormalizationOptions {
  Shape input_shape = {};
  std::string name = "";
  double momentum = 0.99;  // Keras's: moving = momentum * moving + (1 - momentum) * batch
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
};
// Normalizes over every dim but dim 1 (the channels or features). Parameters weight, bias;
// buffers running_mean, running_var (PyTorch's names).
class BatchNormalization : public Layer {
 public:
  explicit BatchNormalization(BatchNormalizationOptions options = {});
  std::string type_name() const override { return "BatchNormalization"; }
  NEUTRINO_LAYER_CLONE(BatchNormalization)
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  const BatchNormalizationOptions& options() const { return options_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  BatchNormalizationOptions options_;
  Tensor weight_, bias_, running_mean_, running_var_;
};

struct LayerNormalizationOptions {
  Shape input_shape = {};
  std::string name = "";
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
};
// Normalizes over the last axis. Parameters weight, bias.
class LayerNormalization : public Layer {
 public:
  explicit LayerNormalization(LayerNormalizationOptions options = {});
  std::string type_name() const override { return "LayerNormalization"; }
  NEUTRINO_LAYER_CLONE(LayerNormalization)
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  const LayerNormalizationOptions& options() const { return options_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  LayerNormalizationOptions options_;
  Tensor weight_, bias_;
};

struct EmbeddingOptions {
  Shape input_shape = {};
  std::string name = "";
  std::string embeddings_initializer = "uniform";  // Keras: uniform in [-0.05, 0.05]
  bool mask_zero = false;  // index 0 is padding: the output carries a mask, false there
};
// int64 indices (...) -> vectors (..., output_dim). Parameter: weight (input_dim, output_dim).
class Embedding : public Layer {
 public:
  Embedding(int64_t input_dim, int64_t output_dim, EmbeddingOptions options = {});
  std::string type_name() const override { return "Embedding"; }
  NEUTRINO_LAYER_CLONE(Embedding)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  int64_t input_dim() const { return input_dim_; }
  int64_t output_dim() const { return output_dim_; }
  const EmbeddingOptions& options() const { return options_; }
  // With mask_zero: indices != 0.
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  int64_t input_dim_, output_dim_;
  EmbeddingOptions options_;
  Tensor weight_;
};

struct ReLUOptions {
  Shape input_shape = {};
  std::string name = "";
  double max_value = 0;  // 0: no upper bound (Keras's None)
  double negative_slope = 0;
};
// Keras's ReLU layer: max(x, 0), or negative_slope * x below 0, capped at max_value when set.
class ReLU : public Layer {
 public:
  explicit ReLU(ReLUOptions options = {});
  std::string type_name() const override { return "ReLU"; }
  NEUTRINO_LAYER_CLONE(ReLU)
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  const ReLUOptions& options() const { return options_; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  ReLUOptions options_;
};

// (C, H, W) -> (C): the mean over each channel's pixels.
class GlobalAveragePooling2D : public Layer {
 public:
  explicit GlobalAveragePooling2D(LayerOptions options = {});
  std::string type_name() const override { return "GlobalAveragePooling2D"; }
  NEUTRINO_LAYER_CLONE(GlobalAveragePooling2D)
  Shape output_shape(const Shape& input_shape) const override;

 protected:
  Tensor call(const Tensor& x) override;
};

// (C, H, W) -> (C): the largest of each channel's pixels.
class GlobalMaxPooling2D : public GlobalAveragePooling2D {
 public:
  explicit GlobalMaxPooling2D(LayerOptions options = {});
  std::string type_name() const override { return "GlobalMaxPooling2D"; }
  NEUTRINO_LAYER_CLONE(GlobalMaxPooling2D)

 protected:
  Tensor call(const Tensor& x) override;
};

struct ZeroPadding2DOptions {
  Shape input_shape = {};
  std::string name = "";
};
// Pads (C, H, W) with zero rows and columns: padding (top, bottom) rows and (left, right)
// columns; Size2 forms as in Keras (one number: all four sides; two: rows, columns).
class ZeroPadding2D : public Layer {
 public:
  explicit ZeroPadding2D(Size2 padding = 1, ZeroPadding2DOptions options = {});
  ZeroPadding2D(Size2 rows, Size2 columns, ZeroPadding2DOptions options = {});
  std::string type_name() const override { return "ZeroPadding2D"; }
  NEUTRINO_LAYER_CLONE(ZeroPadding2D)
  Shape output_shape(const Shape& input_shape) const override;
  // (top, bottom), (left, right).
  Size2 rows() const { return rows_; }
  Size2 columns() const { return columns_; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  Size2 rows_, columns_;
};

}  // namespace neutrino::nn
