// Sparse (CSR) times dense, row by row: each output row is a weighted sum of rows of B
// (n > 1) or a sparse dot product (n = 1).
#include "kernels/sparse.hpp"

#include <algorithm>
#include <vector>

#include "kernels/parallel.hpp"

namespace hyperad::kernels {

namespace {

// Rows per thread below which a pass over CSR rows stays on one thread: threads when the
// multiply-adds (non-zeros × n) exceed a map's threshold per thread.
std::int64_t row_threshold(std::int64_t rows, const std::int64_t* indptr, std::int64_t n) {
  const std::int64_t per_row = std::max<std::int64_t>(1, (indptr[rows] / rows) * n);
  return std::max<std::int64_t>(1, parallel_elementwise() / per_row);
}

}  // namespace

template <class T>
void csr_times_dense(std::int64_t rows, const std::int64_t* indptr, const std::int64_t* indices, const T* values,
                     const T* B, std::int64_t n, T* out) {
  if (rows == 0) return;
  parallel_for(
      rows, row_threshold(rows, indptr, n),
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

template <class T>
void sampled_dot(std::int64_t rows, const std::int64_t* indptr, const std::int64_t* indices, const T* L, const T* R,
                 std::int64_t n, T* out) {
  if (rows == 0) return;
  parallel_for(
      rows, row_threshold(rows, indptr, n),
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t r = lo; r < hi; ++r) {
          const T* l = L + r * n;
          for (std::int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
            const T* b = R + indices[k] * n;
            T s = 0;
#pragma omp simd reduction(+ : s)
            for (std::int64_t j = 0; j < n; ++j) s += l[j] * b[j];
            out[k] = s;
          }
        }
      },
      1);
}

template <class T>
void csr_row_pass(CsrView<T> x, CsrView<T> xt, const T* v0, const T* v1, RowWeights<T> weights, T* out) {
  const auto rows = static_cast<std::size_t>(x.rows);
  std::vector<T> d0(rows), d1(v1 ? rows : 0), c(rows);
  csr_times_dense<T>(x.rows, x.indptr, x.indices, x.values, v0, 1, d0.data());
  if (v1) csr_times_dense<T>(x.rows, x.indptr, x.indices, x.values, v1, 1, d1.data());
  constexpr std::int64_t kGroup = 16;
  for (std::int64_t r0 = 0; r0 < x.rows; r0 += kGroup) {
    const std::int64_t m = std::min(kGroup, x.rows - r0);
    weights.fn(weights.ctx, r0, m, d0.data() + r0, v1 ? d1.data() + r0 : nullptr, c.data() + r0);
  }
  if (out) csr_times_dense<T>(xt.rows, xt.indptr, xt.indices, xt.values, c.data(), 1, out);
}

template void csr_row_pass<float>(CsrView<float>, CsrView<float>, const float*, const float*, RowWeights<float>,
                                  float*);
template void csr_row_pass<double>(CsrView<double>, CsrView<double>, const double*, const double*, RowWeights<double>,
                                   double*);
template void sampled_dot<float>(std::int64_t, const std::int64_t*, const std::int64_t*, const float*, const float*,
                                 std::int64_t, float*);
template void sampled_dot<double>(std::int64_t, const std::int64_t*, const std::int64_t*, const double*,
                                  const double*, std::int64_t, double*);
template void csr_times_dense<float>(std::int64_t, const std::int64_t*, const std::int64_t*, const float*, const float*,
                                     std::int64_t, float*);
template void csr_times_dense<double>(std::int64_t, const std::int64_t*, const std::int64_t*, const double*,
                                      const double*, std::int64_t, double*);

}  // namespace hyperad::kernels
