// Recurrent scans over time (SimpleRNN, LSTM, GRU): per step one GEMM for W_hh h and one pass over
// the gates of the whole batch that computes the new state and saves what the backward needs.
// The input projection W_ih x of every step is one GEMM before the scan (ops/recurrent.cpp).
#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>
#include <vector>

#include "neutrino/backend/fast_exp.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {

// The cells' nonlinearities: float through fast_exp, double through the standard library.
struct FloatMath {
  static float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
  // tanh(x) = 2 sigmoid(2x) - 1, with the sign taken out so that large |x| gives exactly +-1.
  static float tanh(float x) {
    const float e = fast_exp(-2.0f * std::abs(x));
    return std::copysign((1.0f - e) / (1.0f + e), x);
  }
};
struct DoubleMath {
  static double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
  static double tanh(double x) { return std::tanh(x); }
};
template <class T>
using MathOf = std::conditional_t<std::is_same_v<T, float>, FloatMath, DoubleMath>;

// Pointers of one step: the sample rows of xw, out and saved at time t, and of the previous
// state (the step before in scan order, or h0).
template <class T>
struct StepRows {
  const RnnScan& s;
  int64_t t, t_prev;  // t_prev < 0: the initial state
  const T* h0;
  int64_t G() const { return rnn_gates(s.cell); }
  int64_t S() const { return rnn_state_width(s.cell); }
  int64_t out_at(int64_t n, int64_t time) const { return (n * s.steps + time) * S() * s.hidden; }
  // h (offset 0) or c (offset H) before step t, or null for a zero initial state.
  const T* prev(const T* out, int64_t n, int64_t offset) const {
    if (t_prev >= 0) return out + out_at(n, t_prev) + offset;
    return h0 ? h0 + n * S() * s.hidden + offset : nullptr;
  }
};

template <class T>
inline T at_or_zero(const T* p, int64_t j) {
  return p ? p[j] : T(0);
}

// The gates of sample n at one step: a = xw + hw; writes the new state into out and what the
// backward reads into saved (see rnn_saved_width).
template <class T>
void cell_forward(const StepRows<T>& r, int64_t n, const T* xw, const T* hw, T* out, T* saved) {
  using M = MathOf<T>;
  const int64_t H = r.s.hidden;
  const T* x = xw + (n * r.s.steps + r.t) * r.G() * H;
  const T* h = hw + n * r.G() * H;
  T* o = out + r.out_at(n, r.t);
  const T* hp = r.prev(out, n, 0);
  switch (r.s.cell) {
    case RnnCell::kTanh:
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) o[j] = M::tanh(x[j] + h[j]);
      return;
    case RnnCell::kRelu:
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) o[j] = std::max(x[j] + h[j], T(0));
      return;
    case RnnCell::kLstm: {
      const T* cp = r.prev(out, n, H);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T i = M::sigmoid(x[j] + h[j]), f = M::sigmoid(x[H + j] + h[H + j]);
        const T g = M::tanh(x[2 * H + j] + h[2 * H + j]);
        const T og = M::sigmoid(x[3 * H + j] + h[3 * H + j]);
        const T c = f * at_or_zero(cp, j) + i * g;
        const T tc = M::tanh(c);
        o[j] = og * tc;
        o[H + j] = c;
        if (saved) {
          saved[j] = i, saved[H + j] = f, saved[2 * H + j] = g, saved[3 * H + j] = og;
          saved[4 * H + j] = tc;
        }
      }
      return;
    }
    case RnnCell::kGru:
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T rg = M::sigmoid(x[j] + h[j]), z = M::sigmoid(x[H + j] + h[H + j]);
        const T hn = h[2 * H + j];
        const T ng = M::tanh(x[2 * H + j] + rg * hn);
        o[j] = (T(1) - z) * ng + z * at_or_zero(hp, j);
        if (saved) saved[j] = rg, saved[H + j] = z, saved[2 * H + j] = ng, saved[3 * H + j] = hn;
      }
      return;
  }
}

// A masked step: the state carries over unchanged.
template <class T>
void carry_state(const StepRows<T>& r, int64_t n, T* out) {
  const int64_t width = r.S() * r.s.hidden;
  T* o = out + r.out_at(n, r.t);
  const T* hp = r.prev(out, n, 0);
  for (int64_t j = 0; j < width; ++j) o[j] = at_or_zero(hp, j);
}

int64_t time_at(const RnnScan& s, int64_t step) { return s.reverse ? s.steps - 1 - step : step; }

// hw (N, G*H) = h_prev @ w_hh^T + b_hh for the batch at one step; h_prev rows are `row` apart.
template <class T>
void hidden_projection(const RnnScan& s, const T* h_prev, int64_t row, const T* w_hh, const T* b_hh,
                       T* hw) {
  const int64_t GH = rnn_gates(s.cell) * s.hidden;
  for (int64_t n = 0; n < s.batch; ++n) {
    T* dst = hw + n * GH;
    if (b_hh) {
      std::copy(b_hh, b_hh + GH, dst);
    } else {
      std::fill(dst, dst + GH, T(0));
    }
  }
  if (h_prev) gemm(s.batch, GH, s.hidden, h_prev, row, 1, w_hh, 1, s.hidden, hw, true);
}

}  // namespace

template <class T>
void rnn_forward(const RnnScan& s, const T* xw, const T* w_hh, const T* b_hh, const T* h0,
                 const bool* mask, T* out, T* saved) {
  const int64_t G = rnn_gates(s.cell), S = rnn_state_width(s.cell), H = s.hidden;
  const int64_t W = rnn_saved_width(s.cell);
  std::vector<T> hw(static_cast<size_t>(s.batch * G * H));
  for (int64_t step = 0; step < s.steps; ++step) {
    const StepRows<T> r{s, time_at(s, step), step == 0 ? -1 : time_at(s, step - 1), h0};
    const T* h_prev = step == 0 ? h0 : out + r.t_prev * S * H;
    hidden_projection(s, h_prev, step == 0 ? S * H : s.steps * S * H, w_hh, b_hh, hw.data());
    T* saved_t = saved ? saved + r.t * s.batch * W * H : nullptr;
    parallel_for(s.batch, s.batch * G * H >= kGrainElements, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        if (mask && !mask[n * s.steps + r.t]) {
          carry_state(r, n, out);
        } else {
          cell_forward(r, n, xw, hw.data(), out, saved_t ? saved_t + n * W * H : nullptr);
        }
      }
    });
  }
}

namespace {

// The backward of one sample at one step. dh (H) and, for an LSTM, dc (H) hold the gradient
// reaching the step's state from later steps on entry; on exit dh holds the part of the
// previous state's gradient that skips W_hh (a GRU's z * dh, or all of it on a masked step) and
// dc the previous cell's gradient. Writes the step's rows of dxw, dhw (GRU) and hprev.
template <class T>
void cell_backward(const StepRows<T>& r, int64_t n, bool masked, const T* grad_out, const T* out,
                   const T* saved, T* dh, T* dc, T* dxw, T* dhw, T* hprev) {
  const int64_t H = r.s.hidden, G = r.G();
  const int64_t row = (n * r.s.steps + r.t);
  const T* g = grad_out + r.out_at(n, r.t);
  const T* o = out + r.out_at(n, r.t);
  const T* hp = r.prev(out, n, 0);
  T* dx = dxw + row * G * H;
  T* dhh = dhw ? dhw + row * G * H : nullptr;
  T* hprev_row = hprev + row * H;
  for (int64_t j = 0; j < H; ++j) hprev_row[j] = at_or_zero(hp, j);
  for (int64_t j = 0; j < H; ++j) dh[j] += g[j];
  if (r.s.cell == RnnCell::kLstm) {
    for (int64_t j = 0; j < H; ++j) dc[j] += g[H + j];
  }
  if (masked) {
    std::fill(dx, dx + G * H, T(0));
    if (dhh) std::fill(dhh, dhh + G * H, T(0));
    return;  // dh and dc pass through unchanged
  }
  switch (r.s.cell) {
    case RnnCell::kTanh:
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dx[j] = dh[j] * (T(1) - o[j] * o[j]), dh[j] = 0;
      return;
    case RnnCell::kRelu:
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dx[j] = o[j] > 0 ? dh[j] : T(0), dh[j] = 0;
      return;
    case RnnCell::kLstm: {
      const T* cp = r.prev(out, n, H);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T i = saved[j], f = saved[H + j], gg = saved[2 * H + j], og = saved[3 * H + j];
        const T tc = saved[4 * H + j];
        const T c_grad = dc[j] + dh[j] * og * (T(1) - tc * tc);
        dx[j] = c_grad * gg * i * (T(1) - i);
        dx[H + j] = c_grad * at_or_zero(cp, j) * f * (T(1) - f);
        dx[2 * H + j] = c_grad * i * (T(1) - gg * gg);
        dx[3 * H + j] = dh[j] * tc * og * (T(1) - og);
        dc[j] = c_grad * f;
        dh[j] = 0;
      }
      return;
    }
    case RnnCell::kGru:
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T rg = saved[j], z = saved[H + j], ng = saved[2 * H + j], hn = saved[3 * H + j];
        const T dn = dh[j] * (T(1) - z) * (T(1) - ng * ng);
        const T dz = dh[j] * (at_or_zero(hp, j) - ng) * z * (T(1) - z);
        const T dr = dn * hn * rg * (T(1) - rg);
        dx[j] = dr, dx[H + j] = dz, dx[2 * H + j] = dn;
        dhh[j] = dr, dhh[H + j] = dz, dhh[2 * H + j] = dn * rg;
        dh[j] *= z;
      }
      return;
  }
}

}  // namespace

template <class T>
void rnn_backward(const RnnScan& s, const T* grad_out, const T* out, const T* saved, const T* w_hh,
                  const T* h0, const bool* mask, T* dxw, T* dhw, T* hprev, T* dh0) {
  const int64_t G = rnn_gates(s.cell), H = s.hidden, W = rnn_saved_width(s.cell);
  const bool lstm = s.cell == RnnCell::kLstm;
  // The running gradients of h and c, (N, H) each.
  std::vector<T> dh(static_cast<size_t>(s.batch * H), T(0)), dc(lstm ? dh.size() : 0, T(0));
  const T* dhw_rows = dhw ? dhw : dxw;
  for (int64_t step = s.steps - 1; step >= 0; --step) {
    const StepRows<T> r{s, time_at(s, step), step == 0 ? -1 : time_at(s, step - 1), h0};
    const T* saved_t = saved ? saved + r.t * s.batch * W * H : nullptr;
    parallel_for(s.batch, s.batch * G * H >= kGrainElements, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const bool masked = mask && !mask[n * s.steps + r.t];
        cell_backward(r, n, masked, grad_out, out, saved_t ? saved_t + n * W * H : nullptr,
                      dh.data() + n * H, lstm ? dc.data() + n * H : nullptr, dxw, dhw, hprev);
      }
    });
    // dh_prev += dhw_t @ W_hh: (N, G*H) rows T*G*H apart times (G*H, H).
    gemm(s.batch, H, G * H, dhw_rows + r.t * G * H, s.steps * G * H, 1, w_hh, H, 1, dh.data(),
         true);
  }
  for (int64_t n = 0; n < s.batch; ++n) {
    T* d = dh0 + n * rnn_state_width(s.cell) * H;
    std::copy(dh.begin() + n * H, dh.begin() + (n + 1) * H, d);
    if (lstm) std::copy(dc.begin() + n * H, dc.begin() + (n + 1) * H, d + H);
  }
}

template void rnn_forward<float>(const RnnScan&, const float*, const float*, const float*,
                                 const float*, const bool*, float*, float*);
template void rnn_forward<double>(const RnnScan&, const double*, const double*, const double*,
                                  const double*, const bool*, double*, double*);
template void rnn_backward<float>(const RnnScan&, const float*, const float*, const float*,
                                  const float*, const float*, const bool*, float*, float*, float*,
                                  float*);
template void rnn_backward<double>(const RnnScan&, const double*, const double*, const double*,
                                   const double*, const double*, const bool*, double*, double*,
                                   double*, double*);

}  // namespace neutrino::kernels
