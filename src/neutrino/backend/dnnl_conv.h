// oneDNN's convolutions (dnnl_conv.cpp), private to backend/: the float32 and bfloat16 kernels
// behind kernels::conv2d_forward / conv2d_backward_data / conv2d_backward_weights (conv.cpp).
#pragma once

#include "neutrino/backend/kernels.h"

namespace neutrino::kernels {

void dnnl_conv2d_forward(const ConvGeometry& g, const ConvLayout& l, const void* x, const float* w,
                         const float* bias, void* y, bool relu, bool training);
void dnnl_conv2d_backward_data(const ConvGeometry& g, const ConvLayout& l, const void* gy,
                               const float* w, void* gx);
void dnnl_conv2d_backward_weights(const ConvGeometry& g, const ConvLayout& l, const void* x,
                                  const void* gy, float* gw, float* gb);

}  // namespace neutrino::kernels
