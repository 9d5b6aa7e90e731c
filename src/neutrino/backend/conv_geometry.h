// The window arithmetic of convolution and pooling, in one place: the ops' parameters, the one
// output-size rule, Keras's 'same' padding, and the one geometry struct that the ops build and
// every convolution and pooling kernel reads. nn/layers.cpp uses the same functions for its
// output shapes, so a layer and its op can never disagree.
#pragma once

#include <cstdint>
#include <utility>

#include "neutrino/tensor/tensor.h"

namespace neutrino {

// conv2d's arguments, as PyTorch's (padding given per side).
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// max_pool2d's and avg_pool2d's arguments.
struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = true;  // avg pooling only
};

// Outputs of a window of `kernel` taps `dilation` apart, moved by `stride` over `in` values
// padded by pad_before and pad_after: (in + pads - dilation * (kernel - 1) - 1) / stride + 1, or
// 0 when the window does not fit even once.
int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                           int64_t pad_before, int64_t pad_after);

// Keras's (and TensorFlow's) "same" padding: total = max((ceil(in / s) - 1) * s + (k - 1) * d + 1
// - in, 0), the smaller half before; the output then has ceil(in / s) values.
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride,
                                         int64_t dilation = 1);

// A convolution or pooling problem, whole: input (batch, channels, height, width), a window
// (kernel, stride, dilation, padding per side) and the output (batch, out_channels, out_h,
// out_w). Convolutions split the channels into `groups`; pooling runs over batch * channels
// independent planes (out_channels == channels, groups 1).
struct ConvGeometry {
  int64_t batch = 1, channels = 1, height = 1, width = 1;
  int64_t out_channels = 1, groups = 1;
  int64_t kernel_h = 1, kernel_w = 1, out_h = 1, out_w = 1;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;

  int64_t group_channels() const { return channels / groups; }          // C / groups
  int64_t group_out_channels() const { return out_channels / groups; }  // O / groups
  int64_t planes() const { return batch * channels; }                   // pooling's planes
  int64_t in_plane() const { return height * width; }
  int64_t out_plane() const { return out_h * out_w; }
  // Rows of a group's im2col matrix: C/groups * KH * KW.
  int64_t kdim() const { return group_channels() * kernel_h * kernel_w; }
  // Multiply-adds of the convolution.
  int64_t macs() const { return batch * out_channels * out_plane() * kdim(); }
};

// x (N, C, H, W) by weight (O, C/groups, KH, KW); out_h / out_w are 0 where the window does
// not fit (the op's checks say so). Shapes are trusted to be 4-D.
ConvGeometry conv_geometry(const Shape& x, const Shape& weight, const Conv2dParams& p);
// x (N, C, H, W) pooled by p.
ConvGeometry pool_geometry(const Shape& x, const Pool2dParams& p);

}  // namespace neutrino
