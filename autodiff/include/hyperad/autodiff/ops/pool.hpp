#pragma once
/// \file ops/pool.hpp
/// Pooling over the spatial axes of [N, C, H, W] tensors. Each is a composite of DSL ops,
/// so it differentiates to any order: max pooling selects the window maxima with
/// index_select (its backward routes the cotangent to them, index_add), average pooling is
/// a depthwise conv2d with constant weights, global average pooling a mean.
#include <array>
#include <cstdint>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Windows of a pooling op, per spatial axis (height, width).
struct PoolOptions {
  /// Step between windows; {0, 0} (the default) means the kernel size.
  std::array<std::int64_t, 2> stride{0, 0};
  /// Implicit padding on both sides, at most half the kernel (as in PyTorch); max pooling
  /// never selects it, average pooling counts it as zeros.
  std::array<std::int64_t, 2> padding{0, 0};
};

/// y[n, c, i, j] = the largest x[n, c, ·, ·] in window (i, j) of size kernel, output size as
/// conv2d's. The first of equal maxima is selected (a NaN wins), and the cotangent flows to
/// it alone. ShapeError for non-4-D input or a kernel larger than the padded input,
/// ValueError for sizes out of range (each naming the op and the shapes).
Tensor max_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel, const PoolOptions& options = {});

/// y[n, c, i, j] = the mean of window (i, j) of x[n, c], padding counted as zeros (PyTorch's
/// count_include_pad); the same errors as max_pool2d.
Tensor avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel, const PoolOptions& options = {});

/// [N, C, H, W] → [N, C]: the mean over each channel's H × W positions.
Tensor global_avg_pool2d(const Tensor& input);

}  // namespace hyperad
