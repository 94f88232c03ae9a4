#pragma once
/// \file ops/shape_ops.hpp
/// Ops that move or select elements without arithmetic.
#include <cstdint>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Same data, another shape of equal numel (one extent may be -1: inferred). No copy.
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
Tensor reshape(const Tensor& x, const Shape& shape);
/// Rank-1 view of all elements.
Tensor flatten(const Tensor& x);
/// Inserts / removes an extent-1 axis.
Tensor unsqueeze(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x, int axis);
/// Elements [start, start + length) along `axis` (a copy).
Tensor narrow(const Tensor& x, int axis, std::int64_t start, std::int64_t length);
/// Elements [start, stop) with step along `axis` (negative start/stop count from the end).
Tensor slice(const Tensor& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1);
/// Zero padding: `before` zeros and `after` zeros along `axis` (narrow's adjoint).
Tensor pad(const Tensor& x, int axis, std::int64_t before, std::int64_t after);
/// The slices x[..., idx[j], ...] along `axis`, in order (indices may repeat): minibatches.
Tensor index_select(const Tensor& x, int axis, const std::vector<std::int64_t>& idx);
/// Adds the slices of `src` into a zero tensor of `shape` at positions idx along `axis`
/// (index_select's adjoint; repeated indices accumulate).
Tensor index_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src);
/// One element per lane along `axis`: out[..i..] = x[..i.., idx[i], ...] where the result
/// has x's shape without `axis` and idx holds one index per result element (row-major).
/// E.g. x [n, C], axis 1, idx [n] labels → the n chosen entries.
Tensor gather(const Tensor& x, int axis, const std::vector<std::int64_t>& idx);
/// gather's adjoint: a zero tensor of `shape` with src's elements added at the gathered
/// positions.
Tensor scatter_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src);
/// Joins tensors along an existing axis (shapes must agree elsewhere).
Tensor concat(const std::vector<Tensor>& xs, int axis);
/// Joins tensors of one shape along a new axis.
Tensor stack(const std::vector<Tensor>& xs, int axis);
/// Broadcasts x to `shape` (numpy rules); the gradient is summed back by the engine.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

}  // namespace hyperad
