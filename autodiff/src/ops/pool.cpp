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
#include "kernels/parallel.hpp"

namespace hyperad {

namespace {

struct Windows {
  std::int64_t N, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo;
};

Windows windows(const char* op, const Tensor& x, std::array<std::int64_t, 2> k, const PoolOptions& o) {
  kernels::require_defined(x, op, "input");
  const auto what = [&] {  // for the messages, formatted only when one is thrown
    return fmt::format("input {}, kernel {}×{}, stride ({}, {}), padding ({}, {})", x.shape().str(), k[0], k[1],
                       o.stride[0], o.stride[1], o.padding[0], o.padding[1]);
  };
  if (x.rank() != 4) throw ShapeError(fmt::format("{}: input must be 4-D [N, C, H, W] ({})", op, what()));
  Windows w{x.size(0), x.size(1), x.size(2), x.size(3), k[0], k[1], o.stride[0], o.stride[1], o.padding[0],
            o.padding[1], 0, 0};
  if (w.sh == 0 && w.sw == 0) w.sh = k[0], w.sw = k[1];
  if (k[0] < 1 || k[1] < 1 || w.sh < 1 || w.sw < 1 || w.ph < 0 || w.pw < 0)
    throw ValueError(fmt::format("{}: kernel and strides must be >= 1 and paddings >= 0 ({})", op, what()));
  if (2 * w.ph > k[0] || 2 * w.pw > k[1])
    throw ValueError(fmt::format("{}: padding must be at most half the kernel ({})", op, what()));
  w.Ho = conv_output_size(w.H, k[0], w.sh, w.ph, 1);
  w.Wo = conv_output_size(w.W, k[1], w.sw, w.pw, 1);
  if (w.Ho < 1 || w.Wo < 1)
    throw ShapeError(fmt::format("{}: kernel {}×{} is larger than the padded input {}×{} ({})", op, k[0], k[1],
                                 w.H + 2 * w.ph, w.W + 2 * w.pw, what()));
  return w;
}

// The flat index in x of each window's first maximum (a NaN is a maximum, and the first
// NaN stays), window by window.
template <class T>
std::vector<std::int64_t> argmax_windows(const Windows& w, const T* x) {
  const std::int64_t per_plane = w.Ho * w.Wo;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(w.N * w.C * per_plane));
  // Larger, or a NaN while no NaN is held (the first maximum stays).
  const auto consider = [x](std::int64_t at, std::int64_t& best, T& m) {
    const T v = x[at];
    const int take = (int(v > m) | int(v != v)) & int(m == m);
    best += (at - best) * take;
    m = take ? v : m;
  };
  std::vector<std::int64_t> taps;  // offsets of a window's elements from its corner
  for (std::int64_t a = 0; a < w.kh; ++a)
    for (std::int64_t b = 0; b < w.kw; ++b) taps.push_back(a * w.W + b);
  const bool inside = w.ph == 0 && w.pw == 0, two_by_two = w.kh == 2 && w.kw == 2;
  // Planes on threads (each window's index is found by one thread: the same on any count).
  kernels::parallel_for(
      w.N * w.C, std::max<std::int64_t>(1, kernels::parallel_elementwise() / std::max<std::int64_t>(1, per_plane * w.kh * w.kw)),
      [&](std::int64_t p0, std::int64_t p1) {
        std::int64_t* out = idx.data() + p0 * per_plane;
        for (std::int64_t p = p0; p < p1; ++p) {
          const std::int64_t base = p * w.H * w.W;
          for (std::int64_t i = 0; i < w.Ho; ++i) {
            if (inside) {  // every window inside the image: fixed tap offsets
              const std::int64_t row = base + i * w.sh * w.W;
              for (std::int64_t j = 0; j < w.Wo; ++j) {
                const std::int64_t start = row + j * w.sw;
                std::int64_t best = start;
                T m = x[start];
                if (two_by_two) {
                  consider(start + 1, best, m);
                  consider(start + w.W, best, m);
                  consider(start + w.W + 1, best, m);
                } else {
                  for (std::size_t t = 1; t < taps.size(); ++t) consider(start + taps[t], best, m);
                }
                *out++ = best;
              }
              continue;
            }
            const std::int64_t h0 = std::max<std::int64_t>(0, i * w.sh - w.ph),
                               h1 = std::min(w.H, i * w.sh - w.ph + w.kh);
            for (std::int64_t j = 0; j < w.Wo; ++j) {
              const std::int64_t c0 = std::max<std::int64_t>(0, j * w.sw - w.pw),
                                 c1 = std::min(w.W, j * w.sw - w.pw + w.kw);
              std::int64_t best = base + h0 * w.W + c0;
              T m = x[best];
              for (std::int64_t h = h0; h < h1; ++h)
                for (std::int64_t c = c0; c < c1; ++c) consider(base + h * w.W + c, best, m);
              *out++ = best;
            }
          }
        }
      },
      1);
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
