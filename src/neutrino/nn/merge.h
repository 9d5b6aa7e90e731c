// Keras's merge layers, which take a list of inputs: Add, Subtract, Multiply, Average (inputs of
// one shape) and Concatenate (shapes equal but along `axis`). They hold no weights.
//
//   auto in = Input({16, 28, 28});
//   auto h = Conv2D(16, 3, {.padding = "same"})(in);
//   auto y = Add()({h, in});
#pragma once

#include "neutrino/nn/layers.h"

namespace neutrino::nn {

class MergeLayer : public Layer {
 public:
  int num_inputs() const override { return -1; }
  // Every input must have the first one's shape; the error names each shape.
  Shape output_shape_for(const std::vector<Shape>& input_shapes) const override;
  // A merge layer has no single-input form.
  Shape output_shape(const Shape& input_shape) const override;

 protected:
  using Layer::Layer;
  Tensor call(const Tensor& x) override;
};

// Sum of the inputs.
class Add : public MergeLayer {
 public:
  explicit Add(LayerOptions options = {});
  std::string type_name() const override { return "Add"; }
  NEUTRINO_LAYER_CLONE(Add)

 protected:
  Tensor call_inputs(const std::vector<Tensor>& inputs) override;
};

// inputs[0] - inputs[1]: exactly two inputs.
class Subtract : public MergeLayer {
 public:
  explicit Subtract(LayerOptions options = {});
  std::string type_name() const override { return "Subtract"; }
  NEUTRINO_LAYER_CLONE(Subtract)
  int num_inputs() const override { return 2; }

 protected:
  Tensor call_inputs(const std::vector<Tensor>& inputs) override;
};

// Elementwise product of the inputs.
class Multiply : public MergeLayer {
 public:
  explicit Multiply(LayerOptions options = {});
  std::string type_name() const override { return "Multiply"; }
  NEUTRINO_LAYER_CLONE(Multiply)

 protected:
  Tensor call_inputs(const std::vector<Tensor>& inputs) override;
};

// Elementwise mean of the inputs.
class Average : public MergeLayer {
 public:
  explicit Average(LayerOptions options = {});
  std::string type_name() const override { return "Average"; }
  NEUTRINO_LAYER_CLONE(Average)

 protected:
  Tensor call_inputs(const std::vector<Tensor>& inputs) override;
};

struct ConcatenateOptions {
  Shape input_shape = {};
  std::string name = "";
  // Keras's: an axis of the whole tensor, batch dim included (-1: the last; 1: the channels of a
  // channels-first image). The batch axis (0) cannot be joined.
  int64_t axis = -1;
};
class Concatenate : public MergeLayer {
 public:
  explicit Concatenate(ConcatenateOptions options = {});
  std::string type_name() const override { return "Concatenate"; }
  NEUTRINO_LAYER_CLONE(Concatenate)
  Shape output_shape_for(const std::vector<Shape>& input_shapes) const override;
  int64_t axis() const { return options_.axis; }
  const ConcatenateOptions& options() const { return options_; }

 protected:
  Tensor call_inputs(const std::vector<Tensor>& inputs) override;

 private:
  // The per-sample axis (no batch dim) for inputs of `rank` dims per sample.
  int64_t sample_axis(size_t rank) const;
  ConcatenateOptions options_;
};

}  // namespace neutrino::nn
