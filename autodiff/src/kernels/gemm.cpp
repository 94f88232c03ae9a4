#include "kernels/gemm.hpp"

#include <algorithm>

namespace hyperad::kernels {

// Reference implementation with a cache-friendly loop order for each transpose case;
// the blocked, packed SIMD GEMM replaces it behind the same signature.
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, const T* B, T* C) {
  std::fill(C, C + M * N, T(0));
  auto a = [&](std::int64_t i, std::int64_t k) { return ta ? A[k * M + i] : A[i * K + k]; };
  if (!tb) {
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t k = 0; k < K; ++k) {
        const T aik = a(i, k);
        const T* brow = B + k * N;
        T* crow = C + i * N;
        for (std::int64_t j = 0; j < N; ++j) crow[j] += aik * brow[j];
      }
  } else {
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        const T* brow = B + j * K;
        T acc = 0;
        for (std::int64_t k = 0; k < K; ++k) acc += a(i, k) * brow[k];
        C[i * N + j] = acc;
      }
  }
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                          float*);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*, const double*,
                           double*);

}  // namespace hyperad::kernels
