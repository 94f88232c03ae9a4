// Pooling (ops/pool.hpp): composites of index_select, conv2d and mean, so their derivatives
// are those ops' (to any order). Only max pooling's selection of the maxima is a kernel of
// its own, and it produces indices, not values.
#include "hyperad/autodiff/ops/pool.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "hyperad/autodiff/ops/conv.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "kernels/elementwise.hpp"

namespace hyperad {

namespace {

struct Windows {
  std::int64_t N, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo;
};

Windows windows(const char* op, const Tensor& x, std::array<std::int64_t, 2> k, const PoolOptions& o) {
  kernels::require_defined(x, op, "input");
  const std::string what = fmt::format("input {}, kernel {}×{}, stride ({}, {}), padding ({}, {})", x.shape().str(),
                                       k[0], k[1], o.stride[0], o.stride[1], o.padding[0], o.padding[1]);
  if (x.rank() != 4) throw ShapeError(fmt::format("{}: input must be 4-D [N, C, H, W] ({})", op, what));
  Windows w{x.size(0), x.size(1), x.size(2), x.size(3), k[0], k[1], o.stride[0], o.stride[1], o.padding[0],
            o.padding[1], 0, 0};
  if (w.sh == 0 && w.sw == 0) w.sh = k[0], w.sw = k[1];
  if (k[0] < 1 || k[1] < 1 || w.sh < 1 || w.sw < 1 || w.ph < 0 || w.pw < 0)
    throw ValueError(fmt::format("{}: kernel and strides must be >= 1 and paddings >= 0 ({})", op, what));
  if (2 * w.ph > k[0] || 2 * w.pw > k[1])
    throw ValueError(fmt::format("{}: padding must be at most half the kernel ({})", op, what));
  w.Ho = conv_output_size(w.H, k[0], w.sh, w.ph, 1);
  w.Wo = conv_output_size(w.W, k[1], w.sw, w.pw, 1);
  if (w.Ho < 1 || w.Wo < 1)
    throw ShapeError(fmt::format("{}: kernel {}×{} is larger than the padded input {}×{} ({})", op, k[0], k[1],
                                 w.H + 2 * w.ph, w.W + 2 * w.pw, what));
  return w;
}

// The flat index in x of each window's first maximum (a NaN is a maximum, and the first
// NaN stays), window by window.
template <class T>
std::vector<std::int64_t> argmax_windows(const Windows& w, const T* x) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(w.N * w.C * w.Ho * w.Wo));
  std::int64_t* out = idx.data();
  for (std::int64_t p = 0; p < w.N * w.C; ++p) {
    const std::int64_t base = p * w.H * w.W;
    for (std::int64_t i = 0; i < w.Ho; ++i) {
      const std::int64_t h0 = std::max<std::int64_t>(0, i * w.sh - w.ph), h1 = std::min(w.H, i * w.sh - w.ph + w.kh);
      for (std::int64_t j = 0; j < w.Wo; ++j) {
        const std::int64_t c0 = std::max<std::int64_t>(0, j * w.sw - w.pw), c1 = std::min(w.W, j * w.sw - w.pw + w.kw);
        std::int64_t best = base + h0 * w.W + c0;
        T m = x[best];
        for (std::int64_t h = h0; h < h1; ++h) {
          const std::int64_t row = base + h * w.W;
          for (std::int64_t c = c0; c < c1; ++c) {
            // Larger, or a NaN while no NaN is held: branch-free (random data mispredicts
            // half of these comparisons).
            const T v = x[row + c];
            const bool take = !(v <= m) & (m == m);
            best = take ? row + c : best;
            m = take ? v : m;
          }
        }
        *out++ = best;
      }
    }
  }
  return idx;
}

}  // namespace

Tensor max_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel, const PoolOptions& options) {
  const Windows w = windows("max_pool2d", input, kernel, options);
  std::vector<std::int64_t> idx;
  dispatch(input.dtype(), [&]<class T>() { idx = argmax_windows<T>(w, input.data<T>()); });
  return reshape(index_select(flatten(input), 0, idx), {w.N, w.C, w.Ho, w.Wo});
}

Tensor avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel, const PoolOptions& options) {
  const Windows w = windows("avg_pool2d", input, kernel, options);
  const Tensor mean_weights = full({w.C, 1, w.kh, w.kw}, 1.0 / double(w.kh * w.kw), input.dtype());
  return conv2d(input, mean_weights, {},
                {.stride = {w.sh, w.sw}, .padding = {w.ph, w.pw}, .dilation = {1, 1}, .groups = w.C});
}

Tensor global_avg_pool2d(const Tensor& input) {
  kernels::require_defined(input, "global_avg_pool2d", "input");
  if (input.rank() != 4)
    throw ShapeError(fmt::format("global_avg_pool2d: input must be 4-D [N, C, H, W], got {}", input.shape().str()));
  return mean(input, {2, 3});
}

}  // namespace hyperad
