// The recurrent cells and the sizes of one scan over time, shared by ops/recurrent.cpp and the
// kernels (backend/rnn_kernels.cpp), as conv_geometry.h is for convolutions.
//
// The cells, with PyTorch's gate order and its two biases (x_t (I), h (H), W_ih (G*H, I),
// W_hh (G*H, H), "a = W_ih x_t + b_ih + W_hh h + b_hh" split into G pieces of H):
//   kTanh, kRelu (G = 1): h' = act(a)
//   kLstm (G = 4, gates i, f, g, o): c' = sigmoid(f) * c + sigmoid(i) * tanh(g),
//                                    h' = sigmoid(o) * tanh(c')
//   kGru  (G = 3, gates r, z, n; the hidden part of n stays apart, as PyTorch and Keras's
//          reset_after): r = sigmoid(a_r), z = sigmoid(a_z),
//          n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
#pragma once

#include <cstdint>

namespace neutrino {

enum class RnnCell { kTanh, kRelu, kLstm, kGru };

// G: the gate blocks of H rows in W_ih and W_hh.
inline int64_t rnn_gates(RnnCell cell) {
  return cell == RnnCell::kLstm ? 4 : cell == RnnCell::kGru ? 3 : 1;
}
// S: state values per hidden unit (an LSTM carries h and c).
inline int64_t rnn_state_width(RnnCell cell) { return cell == RnnCell::kLstm ? 2 : 1; }
// Values per hidden unit that a forward saves for its backward at each step: an LSTM's four
// activated gates and tanh(c'); a GRU's r, z, n and W_hn h + b_hn; nothing for the plain cells
// (their output is h' itself).
inline int64_t rnn_saved_width(RnnCell cell) {
  return cell == RnnCell::kLstm ? 5 : cell == RnnCell::kGru ? 4 : 0;
}

// One layer and direction over a batch: `reverse` runs t from steps - 1 down to 0 (Keras's
// go_backwards, PyTorch's reverse direction), keeping outputs at their own time index.
struct RnnScan {
  RnnCell cell = RnnCell::kLstm;
  int64_t batch = 0, steps = 0, hidden = 0;
  bool reverse = false;
};

}  // namespace neutrino
