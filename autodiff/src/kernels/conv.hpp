#pragma once
// Convolution kernels (ops/conv.cpp): im2col feeding the GEMM. For one sample and group,
// im2col lays the input windows out as a [Cg·kh·kw, Ho·Wo] matrix, so that the
// convolution is the product weight_g [Og, Cg·kh·kw] · col; its adjoint is the transposed
// product followed by col2im, which adds each column entry back to its input pixel; the
// weight gradient is dy_g · colᵀ summed over the batch. A 1×1 kernel with stride 1 and no
// padding needs no im2col: the input is its own column matrix.
//
// Samples run on OpenMP threads above the GEMM's threshold of work; each output element
// is computed by one thread in a fixed order (the weight gradient sums fixed chunks of the
// batch, then the chunks in order), so results do not depend on the thread count.
#include <cstdint>

namespace hyperad::kernels {

/// The geometry of one conv2d: input [N, C, H, W], weight [O, C/groups, kh, kw],
/// output [N, O, Ho, Wo].
struct ConvGeometry {
  std::int64_t N, C, H, W, O, kh, kw, Ho, Wo, groups;
  std::int64_t stride[2], pad[2], dil[2];
  std::int64_t Cg() const { return C / groups; }
  std::int64_t Og() const { return O / groups; }
  /// Rows of the column matrix: Cg·kh·kw.
  std::int64_t rows() const { return Cg() * kh * kw; }
  std::int64_t out_pixels() const { return Ho * Wo; }
  std::int64_t in_pixels() const { return H * W; }
  /// True when the input is its own column matrix (1×1 kernel, stride 1, no padding).
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride[0] == 1 && stride[1] == 1 && pad[0] == 0 && pad[1] == 0;
  }
};

/// y = conv2d(x, w) (no bias).
template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* y);
/// dx = conv_transpose2d(dy, w): the adjoint of conv2d_forward in x (dx is overwritten).
template <class T>
void conv2d_input_grad(const ConvGeometry& g, const T* dy, const T* w, T* dx);
/// dw = Σ_n dy_n · col(x_n)ᵀ: the adjoint of conv2d_forward in w (dw is overwritten).
template <class T>
void conv2d_weight_grad(const ConvGeometry& g, const T* x, const T* dy, T* dw);

}  // namespace hyperad::kernels
