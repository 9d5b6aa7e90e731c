// Dense layers on oneDNN's matmul primitive: y = act(x @ W^T + b) in one call, with the bias and
// the activation applied while the output tile is still in registers. The primitive is created
// once per shape and cached, which also saves the per-call setup that the sgemm entry point
// repeats every time.
#include <fmt/format.h>

#include "neutrino/backend/dnnl_util.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/thread_budget.h"
#include "neutrino/core/precision.h"

namespace neutrino::kernels {

namespace {
struct Matmul {
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad;
};

// x is float32, or bfloat16 when x_bf16 (which computes in bf16 whatever the precision).
void linear_impl(int64_t m, int64_t n, int64_t k, const void* x, bool x_bf16, const float* w,
                 const float* bias, float* y, bool relu) {
  using dnnl::memory;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  follow_load();
  const bool bf16 = x_bf16 || compute_precision() == Precision::kBFloat16;
  const dt compute = bf16 ? dt::bf16 : dt::f32;
  const memory::desc x_md({m, k}, compute, tag::ab);
  const memory::desc w_md({k, n}, compute, tag::ba);  // W is (n, k) row-major: W^T read as "ba"
  const memory::desc b_md({1, n}, dt::f32, tag::ab);
  const memory::desc y_md({m, n}, dt::f32, tag::ab);
  const bool has_bias = bias != nullptr;
  const auto mm = dnnl_util::cached<Matmul>(
      fmt::format("linear.{}.{}.{}.{}.{}.{}", m, n, k, has_bias, relu, bf16), [&] {
        dnnl::primitive_attr attr = dnnl_util::user_scratchpad_attr();
        if (relu) {
          dnnl::post_ops ops;
          ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
          attr.set_post_ops(ops);
        }
        const auto desc = has_bias ? dnnl::matmul::desc(x_md, w_md, b_md, y_md)
                                   : dnnl::matmul::desc(x_md, w_md, y_md);
        const dnnl::matmul::primitive_desc pd(desc, attr, dnnl_util::engine());
        return std::make_shared<Matmul>(Matmul{dnnl::matmul(pd), pd.scratchpad_desc()});
      });
  auto& engine = dnnl_util::engine();
  Tensor x16, w16;
  void* px = const_cast<void*>(x);
  void* pw = const_cast<float*>(w);
  if (bf16 && !x_bf16) {
    x16 = dnnl_util::scratch(static_cast<size_t>(m * k) * 2);
    convert(static_cast<const float*>(x), reinterpret_cast<bfloat16*>(x16.data<float>()), m * k);
    px = x16.data<float>();
  }
  if (bf16) {
    w16 = dnnl_util::scratch(static_cast<size_t>(n * k) * 2);
    convert(w, reinterpret_cast<bfloat16*>(w16.data<float>()), n * k);
    pw = w16.data<float>();
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(x_md, engine, px)},
                                       {DNNL_ARG_WEIGHTS, memory(w_md, engine, pw)},
                                       {DNNL_ARG_DST, memory(y_md, engine, y)}};
  if (has_bias) args.emplace(DNNL_ARG_BIAS, memory(b_md, engine, const_cast<float*>(bias)));
  Tensor keep_scratch;
  args.emplace(DNNL_ARG_SCRATCHPAD, dnnl_util::scratchpad_for(mm->scratchpad, keep_scratch));
  mm->prim.execute(dnnl_util::stream(), args);
  dnnl_util::stream().wait();
}
}  // namespace

void linear_forward(int64_t m, int64_t n, int64_t k, const float* x, const float* w,
                    const float* bias, float* y, bool relu) {
  linear_impl(m, n, k, x, false, w, bias, y, relu);
}

void linear_forward(int64_t m, int64_t n, int64_t k, const bfloat16* x, const float* w,
                    const float* bias, float* y, bool relu) {
  linear_impl(m, n, k, x, true, w, bias, y, relu);
}

}  // namespace neutrino::kernels
