#pragma once
// Reduction kernels, vectorized, with OpenMP above a size threshold. Sums use a fixed
// chunking (partial sums of fixed-size blocks, combined in order), so results do not
// depend on the thread count.
#include <cstdint>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::kernels {

/// Sum of x down to `target`, which must broadcast to x's shape (ShapeError naming `op`).
Tensor sum_to(const Tensor& x, const Shape& target, const char* op);

/// out[k] = Σ_r w[r] x[r, k] for a row-major x [R, K] (w = nullptr: plain column sums),
/// the transposed matrix-vector product; threads above a size threshold, the same values
/// for every thread count.
template <class T>
void weighted_column_sums(const T* x, const T* w, std::int64_t R, std::int64_t K, T* out);

/// The per-row step of fused_row_pass: called with rows [r0, r0 + m) (m ≤ 16), their dot
/// products d0[i] = x_{r0+i}·v0 and (when v1 is given, else nullptr) d1[i] = x_{r0+i}·v1;
/// writes the rows' weights c[0..m). Called concurrently for disjoint rows.
template <class T>
struct RowWeights {
  void (*fn)(const void* ctx, std::int64_t r0, std::int64_t m, const T* d0, const T* d1, T* c);
  const void* ctx;

  /// Wraps a callable f(r0, m, d0, d1, c), which must outlive the pass.
  template <class F>
  static RowWeights of(const F& f) {
    return {[](const void* p, std::int64_t r0, std::int64_t m, const T* d0, const T* d1, T* c) {
              (*static_cast<const F*>(p))(r0, m, d0, d1, c);
            },
            &f};
  }
};

/// out[k] = Σ_r c_r x[r, k] with c_r a function of x_r·v0 (and x_r·v1): a matrix-vector
/// product, a per-row function and the transposed product fused into one pass, each small
/// group of rows read from memory once and reused from cache (unfused, X is read two or
/// three times). out = nullptr: only the weights' side effects are wanted (no sum). Fixed
/// blocks of rows, so the same values for every thread count.
template <class T>
void fused_row_pass(const T* x, std::int64_t R, std::int64_t K, const T* v0, const T* v1, RowWeights<T> weights,
                    T* out);

/// x viewed as [outer, n, inner] around `axis`.
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit split_at(const Shape& s, int axis);

/// Shape of s with `axis` removed (keepdim false) or set to 1 (keepdim true).
Shape reduced_shape(const Shape& s, int axis, bool keepdim);

/// Max (want_max) or min along axis; also the index of the first extremum per lane.
/// A NaN in a lane wins (its first occurrence).
Tensor extremum(const Tensor& x, int axis, bool want_max, std::vector<std::int64_t>* argidx);

/// log Σ exp along axis (keepdim shape), max-shifted.
Tensor logsumexp(const Tensor& x, int axis);

}  // namespace hyperad::kernels
