// Sparse (CSR) times dense, row by row: each output row is a weighted sum of rows of B
// (n > 1) or a sparse dot product (n = 1).
#include "kernels/sparse.hpp"

#include <algorithm>

#include "kernels/parallel.hpp"

namespace hyperad::kernels {

template <class T>
void csr_times_dense(std::int64_t rows, const std::int64_t* indptr, const std::int64_t* indices, const T* values,
                     const T* B, std::int64_t n, T* out) {
  if (rows == 0) return;
  // Threads when the multiply-adds (non-zeros × n) exceed a map's threshold per thread.
  const std::int64_t per_row = std::max<std::int64_t>(1, (indptr[rows] / rows) * n);
  const std::int64_t threshold = std::max<std::int64_t>(1, parallel_elementwise() / per_row);
  parallel_for(
      rows, threshold,
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t r = lo; r < hi; ++r) {
          T* o = out + r * n;
          if (n == 1) {
            T s = 0;
            for (std::int64_t k = indptr[r]; k < indptr[r + 1]; ++k) s += values[k] * B[indices[k]];
            *o = s;
            continue;
          }
          std::fill(o, o + n, T(0));
          for (std::int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
            const T a = values[k];
            const T* b = B + indices[k] * n;
#pragma omp simd
            for (std::int64_t j = 0; j < n; ++j) o[j] += a * b[j];
          }
        }
      },
      1);
}

template void csr_times_dense<float>(std::int64_t, const std::int64_t*, const std::int64_t*, const float*, const float*,
                                     std::int64_t, float*);
template void csr_times_dense<double>(std::int64_t, const std::int64_t*, const std::int64_t*, const double*,
                                      const double*, std::int64_t, double*);

}  // namespace hyperad::kernels
