#pragma once
/// \file ops/linalg.hpp
/// Linear algebra ops. Operands must share a dtype (DtypeError otherwise); shape errors
/// are ShapeErrors naming both operands' full shapes.
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Matrix product with numpy-like ranks: [m,k]@[k,n] → [m,n]; [m,k]@[k] → [m];
/// [k]@[k,n] → [n]; [k]@[k] → []; batched [B,m,k]@[B,k,n] → [B,m,n], and with a 2-D
/// operand shared across the batch [B,m,k]@[k,n] → [B,m,n], [m,k]@[B,k,n] → [B,m,n]
/// (a 1-D operand next to a 3-D one is a row/column vector likewise: [B,m,k]@[k] → [B,m]).
/// Rank 0 or rank > 3 operands, unequal batches or inner dimensions throw ShapeError
/// naming both shapes.
Tensor matmul(const Tensor& a, const Tensor& b);
/// op(a) @ op(b), op = transpose of the last two axes when the flag is set, for 2-D
/// operands, batched 3-D ones of one batch size, or a 3-D and a 2-D operand (the 2-D one
/// shared across the batch; its gradient sums over the batch). Never materializes the
/// transpose; backward passes are written with it.
Tensor matmul_t(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);
/// Transpose of a 2-D tensor; for rank > 2, swaps the last two axes (a copy). Rank < 2
/// throws ShapeError.
Tensor transpose(const Tensor& x);
/// Axes reordered (a copy): result axis i is input axis perm[i]. `perm` must list each of
/// 0 .. rank-1 exactly once (ValueError naming perm and the shape otherwise).
Tensor permute(const Tensor& x, const std::vector<int>& perm);
/// a ⊗ b of two vectors: [m] × [n] → [m, n]; other ranks throw ShapeError.
Tensor outer(const Tensor& a, const Tensor& b);

}  // namespace hyperad
