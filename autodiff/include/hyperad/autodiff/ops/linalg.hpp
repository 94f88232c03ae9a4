#pragma once
/// \file ops/linalg.hpp
/// Linear algebra ops.
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Matrix product with numpy-like ranks: [m,k]@[k,n] → [m,n]; [m,k]@[k] → [m];
/// [k]@[k,n] → [n]; [k]@[k] → []; batched [B,m,k]@[B,k,n] → [B,m,n] and
/// [B,m,k]@[k,n] → [B,m,n]. Throws ShapeError naming both shapes on a mismatch.
Tensor matmul(const Tensor& a, const Tensor& b);
/// op(a) @ op(b) for 2-D (or batched 3-D) a and b, op = transpose of the last two axes
/// when the flag is set; never materializes the transpose. Backward passes use it.
Tensor matmul_t(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);
/// Transpose of a 2-D tensor; for rank > 2, swaps the last two axes.
Tensor transpose(const Tensor& x);
/// Axes reordered: result axis i is input axis perm[i].
Tensor permute(const Tensor& x, const std::vector<int>& perm);
/// a ⊗ b of two vectors: [m] × [n] → [m, n].
Tensor outer(const Tensor& a, const Tensor& b);

}  // namespace hyperad
