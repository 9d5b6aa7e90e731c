// bfloat16 kernels: conversion and relu (the channels-last pool is in pool_kernels.cpp). Plain
// loops over the bit patterns (a bf16 value is the top half of a float32): with -march=native
// they compile to AVX-512 widening loads, shifts and float compares, at memory speed.
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"
#include "neutrino/backend/relu.h"

namespace neutrino::kernels {


void convert(const float* from, bfloat16* to, int64_t n) {
  uint16_t* out = bf16_bits(to);
  parallel_for(n, n > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = float_to_bf16_bits(from[i]);
  });
}

void convert(const bfloat16* from, float* to, int64_t n) {
  const uint16_t* in = bf16_bits(from);
  parallel_for(n, n > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) to[i] = bf16_bits_to_float(in[i]);
  });
}

void relu(const bfloat16* x, bfloat16* y, int64_t n) {
  const uint16_t* xb = bf16_bits(x);
  uint16_t* yb = bf16_bits(y);
  parallel_for(n, n > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      yb[i] = relu_passes(bf16_bits_to_float(xb[i])) ? xb[i] : uint16_t{0};
  });
}

template <>
void relu_backward<bfloat16>(const bfloat16* grad_y, const bfloat16* y, bfloat16* grad_x, int64_t n) {
  const uint16_t* gb = bf16_bits(grad_y);
  const uint16_t* yb = bf16_bits(y);
  uint16_t* out = bf16_bits(grad_x);
  parallel_for(n, n > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = relu_grad(bf16_bits_to_float(yb[i]), gb[i]);
  });
}

}  // namespace neutrino::kernels

namespace neutrino::kernels {

template <class T>
void relu_backward(const T* grad_y, const T* y, T* grad_x, int64_t n) {
  parallel_for(n, n > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) grad_x[i] = relu_grad(y[i], grad_y[i]);
  });
}
template void relu_backward<float>(const float*, const float*, float*, int64_t);
template void relu_backward<double>(const double*, const double*, double*, int64_t);

}  // namespace neutrino::kernels
