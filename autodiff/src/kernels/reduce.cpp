#include "kernels/reduce.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "kernels/elementwise.hpp"

namespace hyperad::kernels {

Tensor sum_to(const Tensor& x, const Shape& target, const char* op) {
  if (x.shape() == target) return x;
  if (target.rank() > x.rank() || broadcast_shapes(x.shape(), target, op) != x.shape())
    throw ShapeError(fmt::format("{}: cannot sum a tensor of shape {} down to shape {}", op, x.shape().str(),
                                 target.str()));
  Tensor out = zeros(target, x.dtype());
  auto p = plan_broadcast<2>({&x.shape(), &target}, op);
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* op_ = out.mutable_data<T>();
    for_each_run<2>(p, [&](std::int64_t, const auto& off, const auto& st, std::int64_t n) {
      const T* src = xp + off[0];
      T* dst = op_ + off[1];
      if (st[1] == 0) {
        T acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += src[i * st[0]];
        *dst += acc;
      } else {
        for (std::int64_t i = 0; i < n; ++i) dst[i * st[1]] += src[i * st[0]];
      }
    });
  });
  return out;
}

AxisSplit split_at(const Shape& s, int axis) {
  AxisSplit a;
  for (int d = 0; d < s.rank(); ++d) {
    if (d < axis) a.outer *= s.begin()[d];
    else if (d == axis) a.n = s.begin()[d];
    else a.inner *= s.begin()[d];
  }
  return a;
}

Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  std::vector<std::int64_t> d;
  for (int i = 0; i < s.rank(); ++i) {
    if (i != axis) d.push_back(s.begin()[i]);
    else if (keepdim) d.push_back(1);
  }
  return Shape(d);
}

Tensor extremum(const Tensor& x, int axis, bool want_max, std::vector<std::int64_t>* argidx) {
  AxisSplit a = split_at(x.shape(), axis);
  Tensor out(reduced_shape(x.shape(), axis, true), x.dtype());
  if (argidx) argidx->assign(static_cast<std::size_t>(a.outer * a.inner), 0);
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* op = out.mutable_data<T>();
    for (std::int64_t o = 0; o < a.outer; ++o)
      for (std::int64_t i = 0; i < a.inner; ++i) {
        const T* lane = xp + o * a.n * a.inner + i;
        std::int64_t best = 0;
        for (std::int64_t k = 1; k < a.n; ++k) {
          T v = lane[k * a.inner], b = lane[best * a.inner];
          if (want_max ? v > b : v < b) best = k;
          if (std::isnan(v) && !std::isnan(b)) best = k;  // NaN propagates
        }
        op[o * a.inner + i] = lane[best * a.inner];
        if (argidx) (*argidx)[static_cast<std::size_t>(o * a.inner + i)] = best;
      }
  });
  return out;
}

Tensor logsumexp(const Tensor& x, int axis) {
  AxisSplit a = split_at(x.shape(), axis);
  Tensor out(reduced_shape(x.shape(), axis, true), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* op = out.mutable_data<T>();
    for (std::int64_t o = 0; o < a.outer; ++o)
      for (std::int64_t i = 0; i < a.inner; ++i) {
        const T* lane = xp + o * a.n * a.inner + i;
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < a.n; ++k) m = std::max(m, lane[k * a.inner]);
        if (!std::isfinite(m)) {  // all -inf (or an inf / nan): the plain formula is right
          T s = 0;
          for (std::int64_t k = 0; k < a.n; ++k) s += std::exp(lane[k * a.inner]);
          op[o * a.inner + i] = std::log(s);
          continue;
        }
        T s = 0;
        for (std::int64_t k = 0; k < a.n; ++k) s += std::exp(lane[k * a.inner] - m);
        op[o * a.inner + i] = m + std::log(s);
      }
  });
  return out;
}

}  // namespace hyperad::kernels
