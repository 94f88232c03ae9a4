#pragma once
// Matrix products: C[M,N] (+)= op(A) op(B), op = identity or transpose, row-major.
#include <cstdint>

namespace hyperad::kernels {

/// A is [M,K] (or [K,M] when trans_a), B is [K,N] (or [N,K] when trans_b), C is [M,N].
/// C is overwritten (beta = 0).
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, const T* B,
          T* C);

extern template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*,
                                 const float*, float*);
extern template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*,
                                  const double*, double*);

}  // namespace hyperad::kernels
