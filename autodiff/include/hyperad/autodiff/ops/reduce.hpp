#pragma once
/// \file ops/reduce.hpp
/// Reductions. `axes` lists the axes to reduce (negative counts from the end; empty means
/// all axes); `keepdim` keeps them as extent-1 axes.
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

Tensor sum(const Tensor& x, const std::vector<int>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes = {}, bool keepdim = false);
/// Max / min along one axis. The gradient goes to the first maximal (minimal) element.
Tensor max(const Tensor& x, int axis, bool keepdim = false);
Tensor min(const Tensor& x, int axis, bool keepdim = false);
/// Index of the first max along `axis` (not differentiable), as a vector in row-major
/// order of the remaining axes.
std::vector<std::int64_t> argmax(const Tensor& x, int axis);
/// log Σ exp(x) along `axis`, computed stably (max-shifted).
Tensor logsumexp(const Tensor& x, int axis, bool keepdim = false);
/// Euclidean norm of all elements (its gradient at 0 is taken as 0).
Tensor norm(const Tensor& x);
/// Σ x², of all elements.
Tensor squared_norm(const Tensor& x);
/// Σ a·b of two tensors of equal shape (e.g. two vectors).
Tensor dot(const Tensor& a, const Tensor& b);
/// Sums `x` down to `shape` (the reverse of broadcasting x from `shape`); used by the
/// engine to reduce broadcast gradients. Throws ShapeError if `shape` does not
/// broadcast to x's shape.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace hyperad
