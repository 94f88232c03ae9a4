#pragma once
/// \file ops/conv.hpp
/// Two-dimensional convolution over [N, C, H, W] tensors (batch, channels, height, width),
/// as cross-correlation (the kernel is not flipped), with stride, zero padding, dilation
/// and groups. Three bilinear ops close under differentiation, so every backward is
/// written with them and a CNN is differentiable to any order:
///   y = conv2d(x, w)               dx = conv_transpose2d(dy, w)   dw = conv2d_weight(x, dy)
///   x = conv_transpose2d(u, w)     du = conv2d(dx, w)             dw = conv2d_weight(dx, u)
///   w = conv2d_weight(x, u)        dx = conv_transpose2d(u, dw)   du = conv2d(x, dw)
/// Operands must share a dtype (DtypeError). Shape errors are ShapeErrors naming the op and
/// the offending shapes; options out of range are ValueErrors.
#include <array>
#include <cstdint>

#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

/// Geometry of a convolution, per spatial axis (height, width).
struct ConvOptions {
  std::array<std::int64_t, 2> stride{1, 1};    ///< ≥ 1
  std::array<std::int64_t, 2> padding{0, 0};   ///< zeros added on both sides, ≥ 0
  std::array<std::int64_t, 2> dilation{1, 1};  ///< spacing of the kernel's taps, ≥ 1
  std::int64_t groups = 1;  ///< channels split into this many independent groups
  /// conv_transpose2d only: extra rows/columns at the bottom/right of the output, choosing
  /// among the input sizes a strided conv2d maps to the same output size (< stride or
  /// < dilation, as in PyTorch).
  std::array<std::int64_t, 2> output_padding{0, 0};
};

/// Output size of conv2d along one axis: ⌊(in + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1.
std::int64_t conv_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t padding,
                              std::int64_t dilation);

/// Output size of conv_transpose2d along one axis: (in − 1)·stride − 2·padding +
/// dilation·(k − 1) + 1 + output_padding (the input sizes of conv2d that give `in` are this
/// with output_padding from 0 to stride − 1).
std::int64_t conv_transpose_output_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t padding,
                                        std::int64_t dilation, std::int64_t output_padding = 0);

/// y[n, o, i, j] = bias[o] + Σ_{c, a, b} w[o, c, a, b] · x[n, g·C/G + c, i·s − p + a·d, j·s − p + b·d]
/// for input [N, C, H, W], weight [O, C/groups, kh, kw] and bias [O] (or an undefined
/// tensor: none); output [N, O, Ho, Wo] by conv_output_size. C and O must be divisible by
/// groups; a kernel larger than the padded input (Ho or Wo < 1) is a ShapeError.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, const ConvOptions& options = {});

/// The adjoint of conv2d in its input: input [N, O, Ho, Wo] and conv2d's weight
/// [O, C/groups, kh, kw] give [N, C, H, W] with H = (Ho − 1)·s − 2p + d·(kh − 1) + 1 +
/// output_padding (PyTorch's conv_transpose2d), plus bias [C] if given.
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        const ConvOptions& options = {});

/// The gradient of conv2d in its weight: for input [N, C, H, W] and a cotangent [N, O, Ho,
/// Wo] of conv2d's output, the [O, C/groups, kh, kw] tensor w[o, c, a, b] = Σ_n Σ_{i,j}
/// dy[n,o,i,j] · x[n, g·C/G + c, i·s − p + a·d, j·s − p + b·d] (g = o's group). `kernel` is
/// (kh, kw), each ≥ 1 (ValueError); Ho, Wo must be conv2d's (ShapeError).
Tensor conv2d_weight(const Tensor& input, const Tensor& grad_output, std::array<std::int64_t, 2> kernel,
                     const ConvOptions& options = {});

}  // namespace hyperad
