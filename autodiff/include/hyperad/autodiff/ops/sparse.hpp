#pragma once
/// \file ops/sparse.hpp
/// Products of a sparse matrix (csr.hpp) with dense tensors. Both ops are differentiable to
/// any order in their dense operands and, when the matrix's values require gradients, in
/// those values (the pattern is fixed): the backward of A·B is Aᵀ·G for B and G·Bᵀ sampled
/// at A's non-zeros for A's values — sampled_product — whose backward is sparse_matmul
/// again. Sparse inputs can so be poisoned, or their values learned.
#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// A·B, or Aᵀ·B when `transpose_a`, for B a vector [k] or a matrix [k, n] with k = A's
/// columns (its rows when transposed); the result is [m] or [m, n]. ShapeError names the
/// shapes when k differs, ValueError a dtype mismatch. Rows of the result on OpenMP
/// threads, the same values on any thread count.
Tensor sparse_matmul(const CsrMatrix& a, const Tensor& b, bool transpose_a = false);

/// (L·Rᵀ) at the non-zeros of `pattern`, in its entry order: a tensor [nnz] whose entry k,
/// at row r and column c, is Σ_j L[r, j]·R[c, j]; L [rows] and R [cols] (vectors: L[r]·R[c])
/// or L [rows, n] and R [cols, n]. The pattern's values are not read. This is the gradient
/// of ⟨A, L·Rᵀ⟩ in A's values (SDDMM). ShapeError names the shapes that do not fit.
Tensor sampled_product(const CsrMatrix& pattern, const Tensor& left, const Tensor& right);

}  // namespace hyperad
