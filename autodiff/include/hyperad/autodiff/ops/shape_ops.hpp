#pragma once
/// \file ops/shape_ops.hpp
/// Ops that move or select elements without arithmetic.
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Same data, another shape of equal numel (one extent may be -1: inferred). No copy.
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
Tensor reshape(const Tensor& x, std::initializer_list<std::int64_t> shape);
Tensor reshape(const Tensor& x, const Shape& shape);
/// Rank-1 view of all elements.
Tensor flatten(const Tensor& x);
/// Inserts / removes an extent-1 axis.
Tensor unsqueeze(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x, int axis);
/// Elements [start, start + length) along `axis` (a copy). Requires 0 ≤ start,
/// 0 ≤ length and start + length ≤ the axis extent (ValueError otherwise).
/// Backward: pad (its adjoint).
Tensor narrow(const Tensor& x, int axis, std::int64_t start, std::int64_t length);
/// Elements start, start + step, ... strictly below stop along `axis` (a copy).
/// Negative start/stop count from the end (-1 is the last position); after that both must
/// lie in [0, extent] with start ≤ stop, and step must be ≥ 1 (ValueError otherwise).
/// Backward: unslice (step > 1) or pad (step 1, where slice is narrow).
Tensor slice(const Tensor& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1);
/// slice's adjoint: a zero tensor of `shape` whose positions start, start + step, ...
/// along `axis` hold src's slices in order. src has `shape` except along `axis`, where its
/// n slices must fit: start ≥ 0, step ≥ 1, start + (n - 1)·step < extent.
Tensor unslice(const Tensor& src, const Shape& shape, int axis, std::int64_t start, std::int64_t step);
/// Zero padding: `before` zeros and `after` zeros along `axis` (both ≥ 0; narrow's adjoint).
Tensor pad(const Tensor& x, int axis, std::int64_t before, std::int64_t after);
/// The slices x[..., idx[j], ...] along `axis`, in order (indices may repeat, each must lie
/// in [0, extent)): minibatches. The result has idx.size() positions along `axis`.
/// Backward: index_add.
Tensor index_select(const Tensor& x, int axis, const std::vector<std::int64_t>& idx);
/// Adds the slices of `src` into a zero tensor of `shape` at positions idx along `axis`
/// (index_select's adjoint; repeated indices accumulate). src must have `shape` with
/// idx.size() positions along `axis`.
Tensor index_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src);
/// One element per lane along `axis`: out[..i..] = x[..i.., idx[i], ...] where the result
/// has x's shape without `axis` and idx holds one index per result element (row-major).
/// E.g. x [n, C], axis 1, idx [n] labels → the n chosen entries. Backward: scatter_add.
Tensor gather(const Tensor& x, int axis, const std::vector<std::int64_t>& idx);
/// gather's adjoint: a zero tensor of `shape` with src's elements added at the gathered
/// positions (src has `shape` without `axis`; repeated positions accumulate).
Tensor scatter_add(const Shape& shape, int axis, const std::vector<std::int64_t>& idx, const Tensor& src);
/// Joins tensors along an existing axis (a copy; ranks, dtypes and the extents off `axis`
/// must agree; the list must not be empty). Backward: narrow of the cotangent per input.
Tensor concat(const TensorList& xs, int axis);
/// Joins tensors of one shape and dtype along a new axis (`axis` in [-(rank+1), rank]):
/// concat of the inputs unsqueezed at `axis`.
Tensor stack(const TensorList& xs, int axis);
/// Broadcasts x to `shape` (numpy rules); the gradient is summed back by the engine.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

}  // namespace hyperad
