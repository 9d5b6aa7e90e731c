// Matrix multiply: float on oneDNN's sgemm, which picks AVX2/AVX-512/AMX code for the CPU at run
// time (measured well above OpenBLAS 0.3.21 here, which does not recognise this CPU without
// OPENBLAS_CORETYPE); double and odd stride patterns on the reference loop.
#include <dnnl.h>
#include <fmt/format.h>

#include "neutrino/backend/dnnl_util.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/thread_budget.h"
#include "neutrino/core/precision.h"

namespace neutrino::kernels {

namespace {
// oneDNN reads a row-major operand of `rows` x `cols` either as stored ('N', leading dimension
// = row stride) or transposed ('T'). Returns false when the strides fit neither.
bool blas_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride, char& trans,
                 int64_t& ld) {
  if (col_stride == 1 && (rows == 1 || row_stride >= cols)) {
    trans = 'N';
    ld = rows == 1 ? std::max<int64_t>(cols, 1) : row_stride;
    return true;
  }
  if (row_stride == 1 && (cols == 1 || col_stride >= rows)) {
    trans = 'T';
    ld = cols == 1 ? std::max<int64_t>(rows, 1) : col_stride;
    return true;
  }
  return false;
}
// rows x cols of a strided float matrix -> contiguous row-major bfloat16. A transposed operand
// goes through a cached oneDNN reorder, which converts and transposes in blocks; element by
// element it cost more than the bf16 product saved.
void pack_bf16(const float* from, int64_t rows, int64_t cols, int64_t row_stride,
               int64_t col_stride, uint16_t* to) {
  if (col_stride == 1 && row_stride == cols) {
    convert(from, reinterpret_cast<bfloat16*>(to), rows * cols);
    return;
  }
  using dnnl::memory;
  const memory::desc from_md({rows, cols}, memory::data_type::f32, memory::dims{row_stride, col_stride});
  const memory::desc to_md({rows, cols}, memory::data_type::bf16, memory::format_tag::ab);
  const auto convert = dnnl_util::cached<dnnl_util::Convert>(
      fmt::format("pack.bf16.{}.{}.{}.{}", rows, cols, row_stride, col_stride),
      [&] { return std::make_shared<dnnl_util::Convert>(from_md, to_md); });
  auto& engine = dnnl_util::engine();
  convert->into(memory(from_md, engine, const_cast<float*>(from)), memory(to_md, engine, to));
}

struct Bf16Matmul {
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad;
};

// C = A @ B (+ C) with A and B rounded to bfloat16 and float32 accumulation, on oneDNN's matmul
// (AVX512-BF16 dot products or AMX tiles).
void gemm_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
               const float* b, int64_t b_row, int64_t b_col, float* c, bool accumulate) {
  using dnnl::memory;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  const memory::desc a_md({m, k}, dt::bf16, tag::ab), b_md({k, n}, dt::bf16, tag::ab);
  const memory::desc c_md({m, n}, dt::f32, tag::ab);
  const auto mm = dnnl_util::cached<Bf16Matmul>(fmt::format("matmul.bf16.{}.{}.{}.{}", m, n, k, accumulate), [&] {
    dnnl::primitive_attr attr = dnnl_util::user_scratchpad_attr();
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr,
                                          dnnl_util::engine());
    return std::make_shared<Bf16Matmul>(Bf16Matmul{dnnl::matmul(pd), pd.scratchpad_desc()});
  });
  const Tensor a16 = dnnl_util::scratch(static_cast<size_t>(m * k) * 2);
  const Tensor b16 = dnnl_util::scratch(static_cast<size_t>(k * n) * 2);
  auto* pa = reinterpret_cast<uint16_t*>(a16.data<float>());
  auto* pb = reinterpret_cast<uint16_t*>(b16.data<float>());
  pack_bf16(a, m, k, a_row, a_col, pa);
  pack_bf16(b, k, n, b_row, b_col, pb);
  auto& engine = dnnl_util::engine();
  Tensor keep_scratch;
  mm->prim.execute(dnnl_util::stream(),
                   {{DNNL_ARG_SRC, memory(a_md, engine, pa)},
                    {DNNL_ARG_WEIGHTS, memory(b_md, engine, pb)},
                    {DNNL_ARG_DST, memory(c_md, engine, c)},
                    {DNNL_ARG_SCRATCHPAD, dnnl_util::scratchpad_for(mm->scratchpad, keep_scratch)}});
  dnnl_util::stream().wait();
}
}  // namespace

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
                 const float* b, int64_t b_row, int64_t b_col, float* c, bool accumulate) {
  follow_load();
  char ta = 'N', tb = 'N';
  int64_t lda = 0, ldb = 0;
  // Tiny products cost more in oneDNN's dispatch than in the plain loop.
  const bool small = m * n * k < 4096;
  // bf16 pays only when the product is large against the operands it must round first: with
  // m*n*k / (m*k + k*n) multiply-adds per rounded element below about 200 (a Dense layer's
  // backward at batch 128: 85-193), float32 sgemm measured 1.1-1.4x faster here; from 205 up
  // (256 x 1024 x 1024) bf16 was 1.4-1.8x faster.
  auto bf16_pays = [&] {
    return static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) >=
           200.0 * static_cast<double>(m * k + k * n);
  };
  if (!small && k > 0 && compute_precision() == Precision::kBFloat16 && bf16_pays()) {
    gemm_bf16(m, n, k, a, a_row, a_col, b, b_row, b_col, c, accumulate);
    return;
  }
  if (small || k == 0 || !blas_layout(m, k, a_row, a_col, ta, lda) ||
      !blas_layout(k, n, b_row, b_col, tb, ldb)) {
    reference::gemm(m, n, k, a, a_row, a_col, b, b_row, b_col, c, accumulate);
    return;
  }
  const dnnl_status_t status = dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb,
                                          accumulate ? 1.0f : 0.0f, c, std::max<int64_t>(n, 1));
  NEUTRINO_ASSERT(status == dnnl_success);
}

void gemm(int64_t m, int64_t n, int64_t k, const double* a, int64_t a_row, int64_t a_col,
                  const double* b, int64_t b_row, int64_t b_col, double* c, bool accumulate) {
  reference::gemm(m, n, k, a, a_row, a_col, b, b_row, b_col, c, accumulate);
}

}  // namespace neutrino::kernels
