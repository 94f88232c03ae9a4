#pragma once
// Batch-normalization kernels (ops/batch_norm.cpp). The input is viewed as [G, n, C, S]:
// G batch groups of n samples, C channels, S = H·W values per sample and channel (1 for
// [N, C] inputs). A unit is one (group, channel) pair; its statistics run over its n·S
// values, which lie in n contiguous slabs of S.
//
// Each unit's statistics and cotangent sums are computed by one thread in a fixed order
// (chunks of 512 values summed in T's vector lanes, the chunks' sums in double; two passes
// for the variance), so results do not depend on the thread count.
#include <cstdint>

namespace hyperad::kernels {

struct BatchNormGeometry {
  std::int64_t G, n, C, S;
  std::int64_t units() const { return G * C; }
  /// Values per unit: n·S.
  std::int64_t count() const { return n * S; }
};

/// Per unit u = g·C + c: mean[u], the biased variance var[u] and inv_std[u] = 1/√(var + eps).
/// The statistics stay in double: a float32 mean is off by up to half an ulp of its
/// magnitude, which would shift every normalized value by that over σ.
template <class T>
void batch_norm_stats(const BatchNormGeometry& g, const T* x, double eps, double* mean, double* var,
                      double* inv_std);

/// y = (x − mean)·inv_std·gamma + beta per unit; gamma, beta may be nullptr (1 and 0).
template <class T>
void batch_norm_forward(const BatchNormGeometry& g, const T* x, const double* mean, const double* inv_std,
                        const T* gamma,
                        const T* beta, T* y);

/// The first-order backward. Per unit: A = Σ dy, B = Σ dy·x̂ (x̂ = (x − mean)·inv_std);
/// dgamma[c] = Σ_g B, dbeta[c] = Σ_g A (in group order), and
/// dx = gamma·inv_std·(dy − A/m − x̂·B/m), m = n·S. Outputs may be nullptr (not wanted);
/// they are overwritten.
template <class T>
void batch_norm_backward(const BatchNormGeometry& g, const T* x, const T* dy, const double* mean, const double* inv_std,
                         const T* gamma, T* dx, T* dgamma, T* dbeta);

}  // namespace hyperad::kernels
