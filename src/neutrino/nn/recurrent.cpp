#include "neutrino/nn/recurrent.h"

#include "neutrino/autograd/autograd.h"
#include "neutrino/nn/init.h"

namespace neutrino::nn {

namespace {
const char* type_of(RnnCell cell) {
  switch (cell) {
    case RnnCell::kLstm: return "LSTM";
    case RnnCell::kGru: return "GRU";
    default: return "SimpleRNN";
  }
}

RnnCell simple_cell(const RecurrentOptions& o) {
  NEUTRINO_CHECK_VALUE(o.activation == "tanh" || o.activation == "relu",
                       "SimpleRNN: activation must be 'tanh' or 'relu', got '{}'", o.activation);
  return o.activation == "relu" ? RnnCell::kRelu : RnnCell::kTanh;
}

// (N, T, C) -> the same with the time axis reversed.
Tensor reverse_time(const Tensor& x) {
  const int64_t steps = x.size(1);
  return index_select(x, 1, arange(static_cast<double>(steps - 1), -1, -1, DType::kInt64));
}

// x * mask over (N, T, C), so masked steps read zero.
Tensor zero_masked(const Tensor& x, const Tensor& mask) {
  if (!mask.defined()) return x;
  return mul(x, reshape(cast(mask, x.dtype()), {mask.size(0), mask.size(1), 1}));
}

// x must be (N, T, features) for the layer's built features per step; the error names the layer
// (the op's own would name only the cell).
void check_input(const Layer& layer, const Tensor& x) {
  const int64_t features = layer.built_input_shape().back();
  NEUTRINO_CHECK_SHAPE(x.dim() == 3 && x.size(2) == features,
                       "{} '{}': expected inputs of (batch, steps, {} features), got input shape {}",
                       layer.type_name(), layer.name(), features, x.shape_string());
}

// The state at time index t of a scan's (N, T, S*H) output: (N, width) from column `offset`.
Tensor state_at(const Tensor& states, int64_t t, int64_t offset, int64_t width) {
  const Tensor step = reshape(slice(states, 1, t, t + 1), {states.size(0), states.size(2)});
  return slice(step, 1, offset, offset + width);
}
}  // namespace

// ---- Recurrent -------------------------------------------------------------------------------

Recurrent::Recurrent(RnnCell cell, int64_t units, RecurrentOptions options)
    : Layer(options.input_shape, options.name),
      cell_(cell),
      units_(units),
      options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(units > 0 && units <= kMaxLayerElements / 4,
                       "{}: units must be in [1, {}], got {}", type_of(cell), kMaxLayerElements / 4,
                       units);
  NEUTRINO_CHECK_VALUE(cell == RnnCell::kTanh || cell == RnnCell::kRelu || options_.activation == "tanh",
                       "{}: activation must be 'tanh' (its gates are fixed), got '{}'", type_of(cell),
                       options_.activation);
  for (const std::string* init : {&options_.kernel_initializer, &options_.recurrent_initializer,
                                  &options_.bias_initializer}) {
    NEUTRINO_CHECK_VALUE(is_initializer(*init), "{}: unknown initializer '{}'", type_of(cell), *init);
  }
}

std::string Recurrent::type_name() const { return type_of(cell_); }

Shape Recurrent::output_shape(const Shape& in) const {
  NEUTRINO_CHECK_SHAPE(in.size() == 2, "{} '{}': expected (steps, features) inputs, got {}",
                       type_name(), name(), shape_str(in));
  if (built()) {
    NEUTRINO_CHECK_SHAPE(in[1] == weight_ih_.size(1),
                         "{} '{}': expected {} features per step, got input shape {}", type_name(),
                         name(), weight_ih_.size(1), shape_str(in));
  }
  if (options_.return_sequences) return {in[0], units_};
  return {units_};
}

WeightShapes Recurrent::weight_shapes(const Shape& in) const {
  const int64_t gh = rnn_gates(cell_) * units_;
  WeightShapes out{{"weight_ih_l0", {gh, in.back()}}, {"weight_hh_l0", {gh, units_}}};
  if (options_.use_bias) {
    out.emplace_back("bias_ih_l0", Shape{gh});
    out.emplace_back("bias_hh_l0", Shape{gh});
  }
  return out;
}

void Recurrent::build_weights(const Shape& in) {
  const int64_t gh = rnn_gates(cell_) * units_;
  weight_ih_ = register_parameter("weight_ih_l0", Tensor::zeros({gh, in.back()}));
  initialize(weight_ih_, options_.kernel_initializer);
  weight_hh_ = register_parameter("weight_hh_l0", Tensor::zeros({gh, units_}));
  initialize(weight_hh_, options_.recurrent_initializer);
  if (!options_.use_bias) return;
  bias_ih_ = register_parameter("bias_ih_l0", Tensor::zeros({gh}));
  initialize(bias_ih_, options_.bias_initializer);
  bias_hh_ = register_parameter("bias_hh_l0", Tensor::zeros({gh}));
  initialize(bias_hh_, options_.bias_initializer);
  if (cell_ == RnnCell::kLstm && options_.unit_forget_bias) {
    // Keras's single bias of 1 on the forget gate; PyTorch's two biases add, so it goes on one.
    NoGradGuard no_grad;
    slice(bias_ih_, 0, units_, 2 * units_).fill_(1);
  }
}

Tensor Recurrent::compute_mask(const Tensor& /*x*/, const Tensor& mask) const {
  return options_.return_sequences ? mask : Tensor();
}

Tensor Recurrent::scan(const Tensor& x, const Tensor& mask, bool reverse,
                       const Tensor& initial_state) const {
  return rnn(cell_, x, initial_state, weight_ih_, weight_hh_, bias_ih_, bias_hh_, mask, reverse);
}

Tensor Recurrent::call_masked(const Tensor& x, const Tensor& mask) { return run(x, {}, mask).output; }

RecurrentOutput Recurrent::run(const Tensor& x, const std::vector<Tensor>& initial_state,
                               const Tensor& mask) {
  NEUTRINO_CHECK_SHAPE(x.dim() == 3, "{} '{}': expected inputs of (batch, steps, features), got {}",
                       type_name(), name(), x.shape_string());
  build(Shape(x.shape().begin() + 1, x.shape().end()));
  check_input(*this, x);
  const int64_t width = rnn_state_width(cell_);
  Tensor h0;
  if (!initial_state.empty()) {
    NEUTRINO_CHECK_VALUE(static_cast<int64_t>(initial_state.size()) == width,
                         "{} '{}': the initial state is {} tensor(s) (h{}), got {}", type_name(),
                         name(), width, width == 2 ? ", c" : "", initial_state.size());
    for (const Tensor& s : initial_state) {
      NEUTRINO_CHECK_SHAPE(s.shape() == Shape({x.size(0), units_}),
                           "{} '{}': an initial state must be (batch, units) = ({}, {}), got {}",
                           type_name(), name(), x.size(0), units_, s.shape_string());
    }
    h0 = width == 1 ? initial_state.front() : concat(initial_state, 1);
  }
  const bool backwards = options_.go_backwards;
  const Tensor states = scan(x, mask, backwards, h0);
  const int64_t last = backwards ? 0 : x.size(1) - 1;
  RecurrentOutput out;
  for (int64_t k = 0; k < width; ++k) out.states.push_back(state_at(states, last, k * units_, units_));
  if (!options_.return_sequences) {
    out.output = out.states.front();
  } else {
    const Tensor h = slice(states, 2, 0, units_);
    out.output = backwards ? reverse_time(h) : h;
  }
  return out;
}

SimpleRNN::SimpleRNN(int64_t units, RecurrentOptions options)
    : Recurrent(simple_cell(options), units, options) {}
LSTM::LSTM(int64_t units, RecurrentOptions options)
    : Recurrent(RnnCell::kLstm, units, std::move(options)) {}
GRU::GRU(int64_t units, RecurrentOptions options)
    : Recurrent(RnnCell::kGru, units, std::move(options)) {}

// ---- Bidirectional ---------------------------------------------------------------------------

Bidirectional::Bidirectional(AnyLayer layer, BidirectionalOptions options)
    : Layer(options.input_shape, options.name), options_(std::move(options)) {
  const auto* recurrent = dynamic_cast<const Recurrent*>(layer.get().get());
  NEUTRINO_CHECK_VALUE(recurrent != nullptr, "Bidirectional: wraps SimpleRNN, LSTM or GRU, got {}",
                       layer.get()->type_name());
  NEUTRINO_CHECK_VALUE(!recurrent->built(), "Bidirectional: the wrapped {} must not be built yet",
                       recurrent->type_name());
  // Both directions are Bidirectional's own; a go_backwards inside would be silently dropped.
  NEUTRINO_CHECK_VALUE(!recurrent->options().go_backwards,
                       "Bidirectional: the wrapped {} must not set go_backwards (the wrapper runs "
                       "both directions)", recurrent->type_name());
  const std::string& m = options_.merge_mode;
  NEUTRINO_CHECK_VALUE(m == "concat" || m == "sum" || m == "mul" || m == "ave",
                       "Bidirectional: merge_mode must be concat, sum, mul or ave, got '{}'", m);
  forward_ = std::dynamic_pointer_cast<Recurrent>(recurrent->clone());
  backward_ = std::dynamic_pointer_cast<Recurrent>(recurrent->clone());
}

Shape Bidirectional::output_shape(const Shape& in) const {
  Shape out = forward_->output_shape(in);
  if (options_.merge_mode == "concat") out.back() *= 2;
  return out;
}

WeightShapes Bidirectional::weight_shapes(const Shape& in) const {
  WeightShapes out = forward_->weight_shapes(in);
  for (const auto& [name, shape] : forward_->weight_shapes(in)) out.emplace_back(name + "_reverse", shape);
  return out;
}

void Bidirectional::build_weights(const Shape& in) {
  forward_->build(in);
  backward_->build(in);
  for (const auto& [name, t] : forward_->named_parameters()) register_parameter(name, t);
  for (const auto& [name, t] : backward_->named_parameters()) register_parameter(name + "_reverse", t);
}

Tensor Bidirectional::compute_mask(const Tensor& x, const Tensor& mask) const {
  return forward_->compute_mask(x, mask);
}

Tensor Bidirectional::call_masked(const Tensor& x, const Tensor& mask) {
  check_input(*this, x);
  const int64_t units = forward_->units();
  const Tensor fwd = forward_->scan(x, mask, false), bwd = backward_->scan(x, mask, true);
  Tensor a, b;
  if (forward_->options().return_sequences) {
    a = zero_masked(slice(fwd, 2, 0, units), mask);
    b = zero_masked(slice(bwd, 2, 0, units), mask);
  } else {
    a = state_at(fwd, x.size(1) - 1, 0, units);
    b = state_at(bwd, 0, 0, units);
  }
  const std::string& m = options_.merge_mode;
  if (m == "concat") return concat({a, b}, -1);
  if (m == "sum") return add(a, b);
  if (m == "mul") return mul(a, b);
  return mul(add(a, b), 0.5);
}

}  // namespace neutrino::nn
