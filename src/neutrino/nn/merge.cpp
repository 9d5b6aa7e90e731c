#include "neutrino/nn/merge.h"

namespace neutrino::nn {

namespace {
// op(op(inputs[0], inputs[1]), inputs[2]) ...
Tensor fold(const std::vector<Tensor>& inputs, Tensor (*op)(const Tensor&, const Tensor&)) {
  Tensor out = inputs.front();
  for (size_t i = 1; i < inputs.size(); ++i) out = op(out, inputs[i]);
  return out;
}

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string out;
  for (const Shape& s : shapes) out += (out.empty() ? "" : ", ") + shape_str(s);
  return out;
}
}  // namespace

Shape MergeLayer::output_shape_for(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  for (const Shape& shape : input_shapes) {
    NEUTRINO_CHECK_SHAPE(shape == input_shapes.front(),
                         "{} '{}': every input must have the same shape, got {}", type_name(),
                         name(), shapes_str(input_shapes));
  }
  return input_shapes.front();
}

Shape MergeLayer::output_shape(const Shape& /*input_shape*/) const {
  throw ValueError(fmt::format("{} '{}' takes a list of inputs, not one", type_name(), name()));
}

Tensor MergeLayer::call(const Tensor& /*x*/) {
  throw ValueError(fmt::format("{} '{}' takes a list of inputs, not one", type_name(), name()));
}

Add::Add(LayerOptions options) : MergeLayer(options.input_shape, options.name) {}

Tensor Add::call_inputs(const std::vector<Tensor>& inputs) { return fold(inputs, add); }

Subtract::Subtract(LayerOptions options) : MergeLayer(options.input_shape, options.name) {}

Tensor Subtract::call_inputs(const std::vector<Tensor>& inputs) { return sub(inputs[0], inputs[1]); }

Multiply::Multiply(LayerOptions options) : MergeLayer(options.input_shape, options.name) {}

Tensor Multiply::call_inputs(const std::vector<Tensor>& inputs) { return fold(inputs, mul); }

Average::Average(LayerOptions options) : MergeLayer(options.input_shape, options.name) {}

Tensor Average::call_inputs(const std::vector<Tensor>& inputs) {
  return mul(fold(inputs, add), 1.0 / static_cast<double>(inputs.size()));
}

Concatenate::Concatenate(ConcatenateOptions options)
    : MergeLayer(options.input_shape, options.name), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(options_.axis != 0, "Concatenate: axis 0 is the batch axis and cannot be "
                       "joined");
}

int64_t Concatenate::sample_axis(size_t rank) const {
  const auto full = static_cast<int64_t>(rank) + 1;  // with the batch dim
  const int64_t axis = options_.axis < 0 ? options_.axis + full : options_.axis;
  NEUTRINO_CHECK_SHAPE(axis >= 1 && axis < full,
                       "Concatenate '{}': axis {} is out of range for inputs of {} dims (batch "
                       "included)", name(), options_.axis, full);
  return axis - 1;
}

Shape Concatenate::output_shape_for(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  const Shape& first = input_shapes.front();
  const int64_t axis = sample_axis(first.size());
  Shape out = first;
  out[axis] = 0;
  for (const Shape& shape : input_shapes) {
    bool fits = shape.size() == first.size();
    for (size_t d = 0; fits && d < shape.size(); ++d) {
      fits = static_cast<int64_t>(d) == axis || shape[d] == first[d];
    }
    NEUTRINO_CHECK_SHAPE(fits, "Concatenate '{}': inputs must have equal shapes except along axis "
                         "{}, got {}", name(), options_.axis, shapes_str(input_shapes));
    out[axis] += shape[axis];
  }
  return out;
}

Tensor Concatenate::call_inputs(const std::vector<Tensor>& inputs) {
  return concat(inputs, sample_axis(static_cast<size_t>(inputs.front().dim() - 1)) + 1);
}

}  // namespace neutrino::nn
