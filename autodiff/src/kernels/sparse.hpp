#pragma once
// Sparse (CSR) times dense: the kernel of ops/sparse.cpp.
#include <cstdint>

namespace hyperad::kernels {

/// out[r, :] = Σ_k values[k] · B[indices[k], :] over the entries k of row r, for B
/// [·, n] and out [rows, n] row-major. Rows go to threads above a size threshold; each row
/// is summed in entry order by one thread, so the values do not depend on the thread count.
template <class T>
void csr_times_dense(std::int64_t rows, const std::int64_t* indptr, const std::int64_t* indices, const T* values,
                     const T* B, std::int64_t n, T* out);

extern template void csr_times_dense<float>(std::int64_t, const std::int64_t*, const std::int64_t*, const float*,
                                            const float*, std::int64_t, float*);
extern template void csr_times_dense<double>(std::int64_t, const std::int64_t*, const std::int64_t*, const double*,
                                             const double*, std::int64_t, double*);

}  // namespace hyperad::kernels
