#pragma once
/// \file ops/sparse.hpp
/// Products of a sparse matrix (csr.hpp) with dense tensors, differentiable in the dense
/// operand to any order: the product is linear in it, and the backward of A·B is Aᵀ·G (and
/// of Aᵀ·B, A·G), the same op again. The sparse matrix is a constant.
#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// A·B, or Aᵀ·B when `transpose_a`, for B a vector [k] or a matrix [k, n] with k = A's
/// columns (its rows when transposed); the result is [m] or [m, n]. ShapeError names the
/// shapes when k differs, ValueError a dtype mismatch. Rows of the result on OpenMP
/// threads, the same values on any thread count.
Tensor sparse_matmul(const CsrMatrix& a, const Tensor& b, bool transpose_a = false);

}  // namespace hyperad
