// Matrix multiply: float on oneDNN's sgemm, which picks AVX2/AVX-512/AMX code for the CPU at run
// time (measured well above OpenBLAS 0.3.21 here, which does not recognise this CPU without
// OPENBLAS_CORETYPE); double and odd stride patterns on the reference loop.
#include <dnnl.h>

#include "neutrino/backend/kernels.h"

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
}  // namespace

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
                 const float* b, int64_t b_row, int64_t b_col, float* c, bool accumulate) {
  char ta = 'N', tb = 'N';
  int64_t lda = 0, ldb = 0;
  // Tiny products cost more in oneDNN's dispatch than in the plain loop.
  const bool small = m * n * k < 4096;
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
