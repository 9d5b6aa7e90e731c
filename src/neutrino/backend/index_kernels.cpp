// Indexing kernels: the bounds scan of index tensors, gathers (index_select, embedding) and their
// adjoint, the scatter-add.
#include <algorithm>
#include <cstring>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

int64_t find_out_of_range(const int64_t* values, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; ++i) {
    if (values[i] < 0 || values[i] >= limit) return i;
  }
  return n;
}

void index_select(const void* x, int64_t outer, int64_t n, int64_t inner, size_t element_size,
                  const int64_t* index, int64_t count, void* out) {
  const size_t row_bytes = static_cast<size_t>(inner) * element_size;
  const char* src = static_cast<const char*>(x);
  char* dst = static_cast<char*>(out);
  const int64_t rows = outer * count;
  parallel_for(rows, rows * inner > kGrainCopy, [=](int64_t begin, int64_t end) {
    if (begin == end) return;
    // Output row r is row index[r % count] of outer block r / count; the pair steps along
    // instead of dividing per row, since rows may be a single element.
    int64_t o = begin / count, i = begin % count;
    for (int64_t r = begin; r < end; ++r) {
      std::memcpy(dst + r * row_bytes, src + (o * n + index[i]) * row_bytes, row_bytes);
      if (++i == count) {
        i = 0;
        ++o;
      }
    }
  });
}

template <class T>
void index_add(const T* source, int64_t outer, int64_t count, const int64_t* index, int64_t n,
               int64_t inner, T* out) {
  const int64_t lanes = outer * inner;
  if (lanes == 0 || count == 0) return;
  // A range of the flattened (outer, inner) positions per thread: an embedding's gradient has a
  // single outer block, so the split has to reach into the inner dim to use the cores.
  parallel_for(lanes, lanes * count > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t a = begin / inner; a * inner < end; ++a) {
      const int64_t k0 = std::max<int64_t>(begin - a * inner, 0);
      const int64_t k1 = std::min<int64_t>(end - a * inner, inner);
      for (int64_t i = 0; i < count; ++i) {
        const T* from = source + (a * count + i) * inner;
        T* to = out + (a * n + index[i]) * inner;
        for (int64_t k = k0; k < k1; ++k) to[k] += from[k];
      }
    }
  });
}

template void index_add<float>(const float*, int64_t, int64_t, const int64_t*, int64_t, int64_t,
                               float*);
template void index_add<double>(const double*, int64_t, int64_t, const int64_t*, int64_t,
                                int64_t, double*);

}  // namespace neutrino::kernels
