#pragma once
// Sparse (CSR) times dense: the kernel of ops/sparse.cpp.
#include <cstdint>

#include "kernels/reduce.hpp"

namespace hyperad::kernels {

/// The arrays of a CSR matrix (see CsrMatrix).
template <class T>
struct CsrView {
  std::int64_t rows;
  const std::int64_t* indptr;
  const std::int64_t* indices;
  const T* values;
};

/// fused_row_pass for a CSR matrix x, given also its transpose xt: d0 = x·v0 (and d1 =
/// x·v1), the weights c row group by row group, then out = xᵀ·c by xt's rows (out =
/// nullptr: no sum). The non-zeros are read twice (once per orientation), which is what a
/// CSR matrix allows without scattering; every value is summed by one thread in a fixed
/// order, so the result does not depend on the thread count.
template <class T>
void csr_row_pass(CsrView<T> x, CsrView<T> xt, const T* v0, const T* v1, RowWeights<T> weights, T* out);

extern template void csr_row_pass<float>(CsrView<float>, CsrView<float>, const float*, const float*,
                                         RowWeights<float>, float*);
extern template void csr_row_pass<double>(CsrView<double>, CsrView<double>, const double*, const double*,
                                          RowWeights<double>, double*);

/// out[r, :] = Σ_k values[k] · B[indices[k], :] over the entries k of row r, for B
/// [·, n] and out [rows, n] row-major. Rows go to threads above a size threshold; each row
/// is summed in entry order by one thread, so the values do not depend on the thread count.
template <class T>
void csr_times_dense(std::int64_t rows, const std::int64_t* indptr, const std::int64_t* indices, const T* values,
                     const T* B, std::int64_t n, T* out);

/// out[k] = Σ_j L[r, j] · R[indices[k], j] for each entry k of row r: the product L·Rᵀ
/// sampled at the pattern's non-zeros, for L [rows, n] and R [·, n] row-major. Rows go to
/// threads as in csr_times_dense; each value is one thread's sum, vectorized in an order
/// fixed at compile time, so the same on any thread count.
template <class T>
void sampled_dot(std::int64_t rows, const std::int64_t* indptr, const std::int64_t* indices, const T* L, const T* R,
                 std::int64_t n, T* out);

extern template void sampled_dot<float>(std::int64_t, const std::int64_t*, const std::int64_t*, const float*,
                                        const float*, std::int64_t, float*);
extern template void sampled_dot<double>(std::int64_t, const std::int64_t*, const std::int64_t*, const double*,
                                         const double*, std::int64_t, double*);
extern template void csr_times_dense<float>(std::int64_t, const std::int64_t*, const std::int64_t*, const float*,
                                            const float*, std::int64_t, float*);
extern template void csr_times_dense<double>(std::int64_t, const std::int64_t*, const std::int64_t*, const double*,
                                             const double*, std::int64_t, double*);

}  // namespace hyperad::kernels
