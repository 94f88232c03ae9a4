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

/// Σ a_i b_i over all elements of two equally shaped tensors, as a rank-0 tensor (one
/// pass, no temporary).
Tensor dot(const Tensor& a, const Tensor& b);

/// Σ x_i², as a rank-0 tensor.
Tensor squared_norm(const Tensor& x);

/// softmax (log_softmax when `log`) along axis: exp(x - logsumexp(x)), max-shifted.
Tensor softmax(const Tensor& x, int axis, bool log);

}  // namespace hyperad::kernels
