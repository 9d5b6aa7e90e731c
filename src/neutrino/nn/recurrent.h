// Recurrent layers with Keras's names and defaults and PyTorch's weights (names, layouts and gate
// order, so state dicts exchange with nn.RNN / nn.LSTM / nn.GRU): weight_ih_l0 (G*units, features),
// weight_hh_l0 (G*units, units), bias_ih_l0 and bias_hh_l0 (G*units); Bidirectional adds the
// reverse direction's under the same names with "_reverse", as PyTorch's bidirectional=True.
// Inputs are (steps, features) per sample (batch first, as Keras). A mask from Embedding(mask_zero)
// makes padded steps keep the state (so the final state is that of the last real step).
#pragma once

#include <memory>

#include "neutrino/nn/layers.h"

namespace neutrino::nn {

struct RecurrentOptions {
  Shape input_shape = {};  // (steps, features)
  std::string name = "";
  std::string activation = "tanh";  // SimpleRNN only: tanh or relu
  bool use_bias = true;
  bool return_sequences = false;  // every step's h (steps, units), else the last (units)
  bool go_backwards = false;      // read the sequence from the end (returned reversed, as Keras)
  bool unit_forget_bias = true;   // LSTM: the forget gate's input bias starts at 1
  std::string kernel_initializer = "glorot_uniform";
  std::string recurrent_initializer = "orthogonal";
  std::string bias_initializer = "zeros";
};

// What Recurrent::run returns: the layer's output (as calling it gives) and its final state.
struct RecurrentOutput {
  Tensor output;
  std::vector<Tensor> states;  // h, then an LSTM's c; each (N, units)
};

// SimpleRNN, LSTM and GRU: one cell each (backend/rnn_cell.h), one op (ops.h rnn).
class Recurrent : public Layer {
 public:
  std::string type_name() const override;
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  const RecurrentOptions& options() const { return options_; }
  int64_t units() const { return units_; }
  RnnCell cell() const { return cell_; }
  // The layer's weights run over x (N, T, features) in one direction from `initial_state`
  // (N, S*units: h, then an LSTM's c; undefined for zeros): (N, T, S*units), the state after each
  // step at its own time index (ops.h rnn).
  Tensor scan(const Tensor& x, const Tensor& mask, bool reverse,
              const Tensor& initial_state = Tensor()) const;
  // Keras's return_state and initial_state (PyTorch's (h0, c0) in and (h_n, c_n) out), for
  // models written as modules: runs the layer on x (N, T, features) from `initial_state` ({h} or,
  // for an LSTM, {h, c}, each (N, units); empty: zeros) under an optional mask. Everything is
  // differentiable, the initial state included. (Graphs and configs pass one tensor per edge, so
  // they take neither.)
  RecurrentOutput run(const Tensor& x, const std::vector<Tensor>& initial_state = {},
                      const Tensor& mask = Tensor());

 protected:
  Recurrent(RnnCell cell, int64_t units, RecurrentOptions options);
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override { return call_masked(x, Tensor()); }
  Tensor call_masked(const Tensor& x, const Tensor& mask) override;

 private:
  RnnCell cell_;
  int64_t units_;
  RecurrentOptions options_;
  Tensor weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

// h' = activation(W_ih x + b_ih + W_hh h + b_hh), activation tanh or relu (nn.RNN).
class SimpleRNN : public Recurrent {
 public:
  explicit SimpleRNN(int64_t units, RecurrentOptions options = {});
  NEUTRINO_LAYER_CLONE(SimpleRNN)
};
// Gates i, f, g, o (nn.LSTM).
class LSTM : public Recurrent {
 public:
  explicit LSTM(int64_t units, RecurrentOptions options = {});
  NEUTRINO_LAYER_CLONE(LSTM)
};
// Gates r, z, n with the reset gate applied after W_hn h (nn.GRU; Keras's reset_after=True).
class GRU : public Recurrent {
 public:
  explicit GRU(int64_t units, RecurrentOptions options = {});
  NEUTRINO_LAYER_CLONE(GRU)
};

struct BidirectionalOptions {
  Shape input_shape = {};
  std::string name = "";
  std::string merge_mode = "concat";  // concat, sum, mul or ave
};
// A recurrent layer run forwards and, with weights of its own, backwards; the two outputs merged.
// With return_sequences, the backward direction's outputs are at their own time index and masked
// steps are zero in both (Keras).
class Bidirectional : public Layer {
 public:
  explicit Bidirectional(AnyLayer layer, BidirectionalOptions options = {});
  std::string type_name() const override { return "Bidirectional"; }
  NEUTRINO_LAYER_CLONE(Bidirectional)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  const BidirectionalOptions& options() const { return options_; }
  const Recurrent& layer() const { return *forward_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override { return call_masked(x, Tensor()); }
  Tensor call_masked(const Tensor& x, const Tensor& mask) override;

 private:
  BidirectionalOptions options_;
  std::shared_ptr<Recurrent> forward_, backward_;
};

}  // namespace neutrino::nn
