// rnn: one recurrent layer and direction over time (SimpleRNN, LSTM, GRU; the cells' math is in
// backend/rnn_cell.h). The input projection of all steps is one GEMM (kernels::linear), the scan
// is kernels::rnn_forward (a GEMM and one fused gate pass per step), and the backward is
// kernels::rnn_backward, which walks back through time over the gates the forward saved, followed
// by one GEMM each for dx, dW_ih and dW_hh.
#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {
const char* cell_name(RnnCell cell) {
  switch (cell) {
    case RnnCell::kTanh: return "rnn_tanh";
    case RnnCell::kRelu: return "rnn_relu";
    case RnnCell::kLstm: return "lstm";
    case RnnCell::kGru: return "gru";
  }
  return "rnn";
}

void check_rnn_args(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& w_ih,
                    const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, const Tensor& mask) {
  const char* op = cell_name(cell);
  check_float(x, op);
  NEUTRINO_CHECK_SHAPE(x.dim() == 3, "{}: expected x of (batch, steps, features), got {}", op,
                       x.shape_string());
  NEUTRINO_CHECK_SHAPE(w_hh.dim() == 2 && w_hh.size(1) > 0 &&
                           w_hh.size(0) == rnn_gates(cell) * w_hh.size(1),
                       "{}: weight_hh must be ({} * hidden, hidden), got {}", op, rnn_gates(cell),
                       w_hh.shape_string());
  const int64_t gh = w_hh.size(0), hidden = w_hh.size(1);
  NEUTRINO_CHECK_SHAPE(w_ih.dim() == 2 && w_ih.size(0) == gh && w_ih.size(1) == x.size(2),
                       "{}: weight_ih must be ({}, {}) for x {}, got {}", op, gh, x.size(2),
                       x.shape_string(), w_ih.shape_string());
  for (const Tensor* t : {&w_ih, &w_hh, &b_ih, &b_hh, &h0}) {
    if (t->defined()) check_same_float(x, *t, op);
  }
  for (const Tensor* b : {&b_ih, &b_hh}) {
    NEUTRINO_CHECK_SHAPE(!b->defined() || b->shape() == Shape{gh}, "{}: biases must be ({}), got {}",
                         op, gh, b->shape_string());
  }
  const Shape state{x.size(0), rnn_state_width(cell) * hidden};
  NEUTRINO_CHECK_SHAPE(!h0.defined() || h0.shape() == state, "{}: initial state must be {}, got {}",
                       op, shape_str(state), h0.shape_string());
  if (mask.defined()) {
    NEUTRINO_CHECK_VALUE(mask.dtype() == DType::kBool, "{}: the mask must be bool, got {}", op,
                         dtype_name(mask.dtype()));
    NEUTRINO_CHECK_SHAPE(mask.shape() == Shape({x.size(0), x.size(1)}),
                         "{}: the mask must be (batch, steps) = ({}, {}), got {}", op, x.size(0),
                         x.size(1), mask.shape_string());
  }
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
}  // namespace

// x (N, T, I) -> (N, T, S*H), the state after each step (h, then an LSTM's c).
// xw = x W_ih^T + b_ih (one GEMM over N*T rows); the scan adds W_hh h + b_hh per step.
// Backward: rnn_backward gives dxw and dhw (N, T, G*H), hprev (N, T, H) and dh0; then
// dx = dxw W_ih, dW_ih = dxw^T x, db_ih = sum dxw, dW_hh = dhw^T hprev, db_hh = sum dhw.
// The backward is a kernel, not a graph: no double backward (as cuDNN's RNNs).
Tensor rnn(RnnCell cell, const Tensor& x_in, const Tensor& h0_in, const Tensor& w_ih_in,
           const Tensor& w_hh_in, const Tensor& b_ih_in, const Tensor& b_hh_in,
           const Tensor& mask_in, bool reverse) {
  check_rnn_args(cell, x_in, h0_in, w_ih_in, w_hh_in, b_ih_in, b_hh_in, mask_in);
  const auto dense = [](const Tensor& t) { return t.defined() ? materialize(t) : Tensor(); };
  const Tensor x = materialize(x_in), w_ih = materialize(w_ih_in), w_hh = materialize(w_hh_in);
  const Tensor h0 = dense(h0_in), b_ih = dense(b_ih_in), b_hh = dense(b_hh_in);
  const Tensor mask = dense(mask_in);
  const RnnScan scan{cell, x.size(0), x.size(1), w_hh.size(1), reverse};
  const int64_t G = rnn_gates(cell), H = scan.hidden, S = rnn_state_width(cell);
  const int64_t rows = scan.batch * scan.steps, features = x.size(2);
  const bool grad = any_requires_grad({&x_in, &h0_in, &w_ih_in, &w_hh_in, &b_ih_in, &b_hh_in});
  Tensor out = Tensor::empty({scan.batch, scan.steps, S * H}, x.dtype());
  Tensor saved = grad ? Tensor::empty({scan.steps, scan.batch, rnn_saved_width(cell) * H}, x.dtype())
                      : Tensor();
  dispatch_float(x.dtype(), cell_name(cell), [&]<class T>() {
    Tensor xw = Tensor::empty({scan.batch, scan.steps, G * H}, x.dtype());
    kernels::linear(rows, G * H, features, x.data<T>(), w_ih.data<T>(), data_or_null<T>(b_ih),
                    xw.data<T>(), false);
    kernels::rnn_forward(scan, xw.data<T>(), w_hh.data<T>(), data_or_null<T>(b_hh),
                         data_or_null<T>(h0), data_or_null<bool>(mask), out.data<T>(),
                         saved.defined() ? saved.data<T>() : nullptr);
  });
  if (!grad) return out;
  const Tensor y = out.detach();
  record(out, cell_name(cell), {x_in, h0_in, w_ih_in, w_hh_in, b_ih_in, b_hh_in},
         [=](const Tensor& g_in) {
           const Tensor g = materialize(g_in);
           Tensor dxw = Tensor::empty({rows, G * H}, x.dtype());
           Tensor dhw = cell == RnnCell::kGru ? Tensor::empty({rows, G * H}, x.dtype()) : dxw;
           Tensor hprev = Tensor::empty({rows, H}, x.dtype());
           Tensor dh0 = Tensor::empty({scan.batch, S * H}, x.dtype());
           dispatch_float(x.dtype(), cell_name(cell), [&]<class T>() {
             kernels::rnn_backward(scan, g.data<T>(), y.data<T>(), saved.data<T>(), w_hh.data<T>(),
                                   data_or_null<T>(h0), data_or_null<bool>(mask), dxw.data<T>(),
                                   cell == RnnCell::kGru ? dhw.data<T>() : nullptr,
                                   hprev.data<T>(), dh0.data<T>());
           });
           const Tensor x2 = reshape(x, {rows, features});
           return std::vector<Tensor>{
               needs_grad(x_in) ? reshape(matmul(dxw, w_ih), x.shape()) : Tensor(),
               needs_grad(h0_in) ? dh0 : Tensor(),
               needs_grad(w_ih_in) ? matmul(transpose(dxw, 0, 1), x2) : Tensor(),
               needs_grad(w_hh_in) ? matmul(transpose(dhw, 0, 1), hprev) : Tensor(),
               needs_grad(b_ih_in) ? sum(dxw, {0}) : Tensor(),
               needs_grad(b_hh_in) ? sum(dhw, {0}) : Tensor()};
         });
  return out;
}

}  // namespace neutrino
