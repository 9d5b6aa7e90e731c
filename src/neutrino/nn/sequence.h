// Layers over sequences of feature vectors, (steps, channels) per sample as Keras lays them out
// (Embedding's output): Conv1D with PyTorch's Conv1d weight (filters, channels, kernel_size),
// MaxPooling1D, and the global poolings over time, which skip the steps a mask marks as padding.
#pragma once

#include "neutrino/nn/layers.h"

namespace neutrino::nn {

struct Conv1DOptions {
  Shape input_shape = {};  // (steps, channels)
  std::string name = "";
  int64_t strides = 1;
  std::string padding = "valid";  // "same" (the extra step goes at the end) or "causal" (all in front)
  int64_t dilation_rate = 1;
  std::string activation = "";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};
// Parameters weight (filters, channels, kernel_size), bias (filters). Runs as a conv2d of height 1.
class Conv1D : public Layer {
 public:
  Conv1D(int64_t filters, int64_t kernel_size, Conv1DOptions options = {});
  std::string type_name() const override { return "Conv1D"; }
  NEUTRINO_LAYER_CLONE(Conv1D)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  const Conv1DOptions& options() const { return options_; }
  int64_t filters() const { return filters_; }
  int64_t kernel_size() const { return kernel_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  Conv2dParams params_for(int64_t steps) const;
  int64_t filters_, kernel_;
  Conv1DOptions options_;
  Tensor weight_, bias_;
};

struct Pool1DOptions {
  Shape input_shape = {};
  std::string name = "";
  int64_t strides = 0;  // 0: the pool size, as in Keras
  std::string padding = "valid";  // or "same"
};
class MaxPooling1D : public Layer {
 public:
  explicit MaxPooling1D(int64_t pool_size = 2, Pool1DOptions options = {});
  std::string type_name() const override { return "MaxPooling1D"; }
  NEUTRINO_LAYER_CLONE(MaxPooling1D)
  Shape output_shape(const Shape& input_shape) const override;
  int64_t pool_size() const { return pool_; }
  const Pool1DOptions& options() const { return options_; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  Pool2dParams params_for(int64_t steps) const;
  int64_t pool_;
  Pool1DOptions options_;
};

// (steps, channels) -> (channels): the mean over the steps (the unmasked ones, with a mask).
class GlobalAveragePooling1D : public Layer {
 public:
  explicit GlobalAveragePooling1D(LayerOptions options = {});
  std::string type_name() const override { return "GlobalAveragePooling1D"; }
  NEUTRINO_LAYER_CLONE(GlobalAveragePooling1D)
  Shape output_shape(const Shape& input_shape) const override;

 protected:
  Tensor call(const Tensor& x) override;
  Tensor call_masked(const Tensor& x, const Tensor& mask) override;
};

// (steps, channels) -> (channels): the largest value over the (unmasked) steps; a sample with
// every step masked gives zeros.
class GlobalMaxPooling1D : public GlobalAveragePooling1D {
 public:
  explicit GlobalMaxPooling1D(LayerOptions options = {});
  std::string type_name() const override { return "GlobalMaxPooling1D"; }
  NEUTRINO_LAYER_CLONE(GlobalMaxPooling1D)

 protected:
  Tensor call(const Tensor& x) override;
  Tensor call_masked(const Tensor& x, const Tensor& mask) override;
};

}  // namespace neutrino::nn
