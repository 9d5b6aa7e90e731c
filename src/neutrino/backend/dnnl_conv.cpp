// Convolution on oneDNN's primitives. The caller's activations are NCHW or NHWC, float32 or
// bfloat16; weights are OIHW float32. Each primitive picks its own weight layout (format "any") and
// plain NCHW activations let it pick theirs too, which costs a reorder pass but lets oneDNN run its
// direct JIT convolutions instead of im2col + GEMM. Under bf16 precision with float32 activations
// the reorders also round the inputs to bfloat16; bfloat16 activations go in and come out as they
// are, so a bf16 network moves half the bytes. Weight gradients are always float32.
#include <fmt/format.h>
#include <omp.h>

#include <exception>

#include "neutrino/backend/dnnl_conv.h"
#include "neutrino/backend/dnnl_util.h"
#include "neutrino/backend/parallel.h"
#include "neutrino/backend/thread_budget.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/core/precision.h"

namespace neutrino::kernels {

namespace {
using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using namespace dnnl_util;

struct Dims {
  memory::dims src, weights, dst, bias, strides, dilates, pad_l, pad_r;
};

Dims dims_of(const ConvGeometry& p) {
  Dims d;
  d.src = {p.batch, p.channels, p.height, p.width};
  d.dst = {p.batch, p.out_channels, p.out_h, p.out_w};
  d.weights = p.groups == 1 ? memory::dims{p.out_channels, p.channels, p.kernel_h, p.kernel_w}
                            : memory::dims{p.groups, p.group_out_channels(), p.group_channels(),
                                           p.kernel_h, p.kernel_w};
  d.bias = {p.out_channels};
  d.strides = {p.stride_h, p.stride_w};
  d.dilates = {p.dilation_h - 1, p.dilation_w - 1};  // oneDNN counts the gaps
  d.pad_l = {p.pad_top, p.pad_left};
  d.pad_r = {p.pad_bottom, p.pad_right};
  return d;
}

// The caller's layouts.
dt x_type(const ConvLayout& p) { return p.x_dtype == DType::kBFloat16 ? dt::bf16 : dt::f32; }
dt y_type(const ConvLayout& p) { return p.y_dtype == DType::kBFloat16 ? dt::bf16 : dt::f32; }
memory::desc plain_src(const Dims& d, const ConvLayout& p) {
  return {d.src, x_type(p), p.x_nhwc ? tag::nhwc : tag::nchw};
}
memory::desc plain_dst(const Dims& d, const ConvLayout& p) {
  return {d.dst, y_type(p), p.y_nhwc ? tag::nhwc : tag::nchw};
}
// The primitive's own layouts: channels-last buffers stay channels-last (oneDNN has direct
// kernels for it, and a reorder would cost a pass over the data); plain NCHW ones let oneDNN pick.
tag x_tag(const ConvLayout& p) { return p.x_nhwc ? tag::nhwc : tag::any; }
tag y_tag(const ConvLayout& p) { return p.y_nhwc ? tag::nhwc : tag::any; }

memory::desc plain_weights(const Dims& d) {
  return {d.weights, dt::f32, d.weights.size() == 4 ? tag::oihw : tag::goihw};
}
memory::desc plain_bias(const Dims& d) { return {d.bias, dt::f32, tag::x}; }

// The cache key: the kind of primitive and every field of the problem, as raw bytes (formatting
// them as text cost about a microsecond per call).
std::string key_of(const char* kind, const ConvGeometry& p, const ConvLayout& l, dt compute,
                   bool a, bool b) {
  const int64_t fields[] = {omp_get_max_threads(), p.batch, p.channels, p.height, p.width,
                            p.out_channels, p.kernel_h, p.kernel_w, p.out_h, p.out_w, p.stride_h,
                            p.stride_w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right,
                            p.dilation_h, p.dilation_w, p.groups, static_cast<int64_t>(compute), a,
                            b, l.x_nhwc, l.y_nhwc, l.x_dtype == DType::kBFloat16,
                            l.y_dtype == DType::kBFloat16};
  std::string key = fmt::format("conv.{}:", kind);
  key.append(reinterpret_cast<const char*>(fields), sizeof(fields));
  return key;
}

dt compute_type(const ConvLayout& p) {
  return p.x_dtype == DType::kBFloat16 || p.y_dtype == DType::kBFloat16 || compute_precision() == Precision::kBFloat16 ? dt::bf16 : dt::f32;
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, const ConvLayout& p,
                                                     dt compute, bool bias, bool relu,
                                                     bool training, bool any_layout = false) {
  const Dims d = dims_of(g);
  const dnnl::convolution_forward::desc desc(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
      dnnl::algorithm::convolution_direct,
      memory::desc(d.src, compute, any_layout ? tag::any : x_tag(p)),
      memory::desc(d.weights, compute, tag::any), bias ? plain_bias(d) : memory::desc(),
      memory::desc(d.dst, y_type(p), any_layout ? tag::any : y_tag(p)), d.strides, d.dilates,
      d.pad_l, d.pad_r);
  dnnl::primitive_attr attr = user_scratchpad_attr();
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return {desc, attr, engine()};
}

bool is_reference(const dnnl::convolution_forward::primitive_desc& pd) {
  return std::string_view(pd.impl_info_str()).starts_with("ref");
}

// The forward primitive, avoiding oneDNN's reference kernel (100x slower) where a JIT one exists
// for the same arithmetic: it picks the reference for some channels-last problems (a Conv1D's
// (N, C, 1, T) view of (N, T, C)), and then the JIT kernel on its own blocked layout, with
// reorders in and out, is far faster.
dnnl::convolution_forward::primitive_desc fastest_forward_pd(const ConvGeometry& g,
                                                             const ConvLayout& p, dt compute,
                                                             bool bias, bool relu, bool training) {
  auto pd = forward_pd(g, p, compute, bias, relu, training);
  if (!is_reference(pd)) return pd;
  auto blocked = forward_pd(g, p, compute, bias, relu, training, true);
  return is_reference(blocked) ? pd : blocked;
}

struct Forward {
  dnnl::convolution_forward prim;
  Convert src, weights, dst;
  memory::desc scratchpad;
};

struct BackwardData {
  dnnl::convolution_backward_data prim;
  Convert diff_dst, weights, diff_src;
  memory::desc scratchpad;
};

struct BackwardWeights {
  dnnl::convolution_backward_weights prim;
  Convert src, diff_dst, diff_weights;
  memory::desc scratchpad;
};

void* mut(const void* p) { return const_cast<void*>(p); }

// Below about a million multiply-adds (a batch-1 first layer) waking the second core costs more
// than it saves: such calls run on the calling thread alone. Above it both cores pay: the
// benchmark CNN's second conv at batch 1 (3.6M) takes 26 us on two against 35 on one (the
// whole model 50 against 62-74 us). A small call runs inside a one-thread OpenMP region whose
// own thread count is set to 1: oneDNN plans and runs its work for the count it reads there,
// and OpenMP keeps that count per region, so no caller ever sees it changed (no count is flipped
// and restored around the call). The thread count is part of the cache key, since oneDNN plans
// its work split when a primitive is created.
template <class Body>
void run_sized(const ConvGeometry& g, Body&& body) {
  follow_load();
  if (g.macs() >= kGrainConvMacs) {
    body();
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(1)
  {
    omp_set_num_threads(1);
    try {
      body();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void forward_here(const ConvGeometry& g, const ConvLayout& p, const void* x, const float* w,
                  const float* bias, void* y, bool relu, bool training) {
  const dt compute = compute_type(p);
  const bool has_bias = bias != nullptr;
  // A convolution computes the same in either propagation kind, but this oneDNN picks its
  // reference kernel (about 100x slower) for forward_training without a bias, so that case runs
  // as forward_inference (a ResNet's Conv2D(use_bias=false) before BatchNormalization).
  // (The weights still change from call to call in training: their reorder is not kept.)
  const bool training_kind = training && has_bias;
  const auto fwd = cached<Forward>(
      key_of(training_kind ? "fwd_train" : "fwd_infer", g, p, compute, has_bias, relu), [&] {
        const Dims d = dims_of(g);
        const auto pd = fastest_forward_pd(g, p, compute, has_bias, relu, training_kind);
        return std::make_shared<Forward>(Forward{dnnl::convolution_forward(pd),
                                                 Convert(plain_src(d, p), pd.src_desc()),
                                                 Convert(plain_weights(d), pd.weights_desc()),
                                                 Convert(pd.dst_desc(), plain_dst(d, p)),
                                                 pd.scratchpad_desc()});
      });
  const Dims d = dims_of(g);
  Tensor keep_src, keep_weights, keep_dst;
  const memory user_y = bound(fwd.get(), 0, plain_dst(d, p), y);
  const memory src = fwd->src(bound(fwd.get(), 1, plain_src(d, p), x), keep_src);
  // Inference weights are constant from call to call: their reorder is kept.
  const memory user_w = bound(fwd.get(), 2, plain_weights(d), w);
  const memory weights = training ? fwd->weights(user_w, keep_weights)
                                  : fwd->weights.constant(user_w, keep_weights);
  const memory dst = fwd->dst.output_for(user_y, keep_dst);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (has_bias) args.emplace(DNNL_ARG_BIAS, bound(fwd.get(), 3, plain_bias(d), bias));
  Tensor keep_scratch;
  args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_for(fwd->scratchpad, keep_scratch));
  fwd->prim.execute(stream(), args);
  fwd->dst.finish(dst, user_y);
  stream().wait();
}

void backward_data_here(const ConvGeometry& g, const ConvLayout& p, const void* gy, const float* w,
                        void* gx) {
  const dt compute = compute_type(p);
  const auto bwd = cached<BackwardData>(key_of("bwd_data", g, p, compute, false, false), [&] {
    const Dims d = dims_of(g);
    const dnnl::convolution_backward_data::desc desc(
        dnnl::algorithm::convolution_direct, memory::desc(d.src, x_type(p), x_tag(p)),
        memory::desc(d.weights, compute, tag::any), memory::desc(d.dst, compute, y_tag(p)),
        d.strides, d.dilates, d.pad_l, d.pad_r);
    const dnnl::convolution_backward_data::primitive_desc pd(
        desc, user_scratchpad_attr(), engine(), forward_pd(g, p, compute, false, false, true));
    return std::make_shared<BackwardData>(BackwardData{
        dnnl::convolution_backward_data(pd),
        Convert(plain_dst(d, p), pd.diff_dst_desc()), Convert(plain_weights(d), pd.weights_desc()),
        Convert(pd.diff_src_desc(), plain_src(d, p)), pd.scratchpad_desc()});
  });
  const Dims d = dims_of(g);
  Tensor keep_gy, keep_weights, keep_gx;
  const memory user_gx(plain_src(d, p), engine(), gx);
  const memory diff_dst = bwd->diff_dst(memory(plain_dst(d, p), engine(), mut(gy)), keep_gy);
  const memory weights = bwd->weights(memory(plain_weights(d), engine(), mut(w)), keep_weights);
  const memory diff_src = bwd->diff_src.output_for(user_gx, keep_gx);
  Tensor keep_scratch;
  bwd->prim.execute(stream(), {{DNNL_ARG_DIFF_DST, diff_dst},
                               {DNNL_ARG_WEIGHTS, weights},
                               {DNNL_ARG_DIFF_SRC, diff_src},
                               {DNNL_ARG_SCRATCHPAD, scratchpad_for(bwd->scratchpad, keep_scratch)}});
  bwd->diff_src.finish(diff_src, user_gx);
  stream().wait();
}

void backward_weights_here(const ConvGeometry& g, const ConvLayout& p, const void* x,
                           const void* gy, float* gw, float* gb) {
  const dt compute = compute_type(p);
  const bool has_bias = gb != nullptr;
  const auto bwd = cached<BackwardWeights>(key_of("bwd_weights", g, p, compute, has_bias, false), [&] {
    const Dims d = dims_of(g);
    const dnnl::convolution_backward_weights::desc desc(
        dnnl::algorithm::convolution_direct, memory::desc(d.src, compute, x_tag(p)),
        memory::desc(d.weights, dt::f32, tag::any), has_bias ? plain_bias(d) : memory::desc(),
        memory::desc(d.dst, compute, y_tag(p)), d.strides, d.dilates, d.pad_l, d.pad_r);
    const dnnl::convolution_backward_weights::primitive_desc pd(
        desc, user_scratchpad_attr(), engine(), forward_pd(g, p, compute, false, false, true));
    return std::make_shared<BackwardWeights>(BackwardWeights{
        dnnl::convolution_backward_weights(pd),
        Convert(plain_src(d, p), pd.src_desc()), Convert(plain_dst(d, p), pd.diff_dst_desc()),
        Convert(pd.diff_weights_desc(), plain_weights(d)), pd.scratchpad_desc()});
  });
  const Dims d = dims_of(g);
  Tensor keep_src, keep_gy, keep_gw;
  const memory user_gw(plain_weights(d), engine(), gw);
  const memory src = bwd->src(memory(plain_src(d, p), engine(), mut(x)), keep_src);
  const memory diff_dst = bwd->diff_dst(memory(plain_dst(d, p), engine(), mut(gy)), keep_gy);
  const memory diff_weights = bwd->diff_weights.output_for(user_gw, keep_gw);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
  if (has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, memory(plain_bias(d), engine(), gb));
  Tensor keep_scratch;
  args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_for(bwd->scratchpad, keep_scratch));
  bwd->prim.execute(stream(), args);
  bwd->diff_weights.finish(diff_weights, user_gw);
  stream().wait();
}
}  // namespace

void dnnl_conv2d_forward(const ConvGeometry& g, const ConvLayout& p, const void* x, const float* w,
                         const float* bias, void* y, bool relu, bool training) {
  run_sized(g, [&] { forward_here(g, p, x, w, bias, y, relu, training); });
}

void dnnl_conv2d_backward_data(const ConvGeometry& g, const ConvLayout& p, const void* gy,
                               const float* w, void* gx) {
  run_sized(g, [&] { backward_data_here(g, p, gy, w, gx); });
}

void dnnl_conv2d_backward_weights(const ConvGeometry& g, const ConvLayout& p, const void* x,
                                  const void* gy, float* gw, float* gb) {
  run_sized(g, [&] { backward_weights_here(g, p, x, gy, gw, gb); });
}

}  // namespace neutrino::kernels
