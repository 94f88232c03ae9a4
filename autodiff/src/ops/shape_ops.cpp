// Reshaping and broadcasting: no arithmetic; the backward rules move the cotangent back.
#include <fmt/format.h>

#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"

namespace hyperad {

Tensor reshape(const Tensor& x, const Shape& shape) {
  static const OpDef def{"reshape", [](Backward& b) { b.accumulate(0, reshape(b.grad_out(), b.input_shape(0))); }};
  kernels::require_defined(x, "reshape", "input");
  if (shape.numel() != x.numel())
    throw ShapeError(fmt::format("reshape: cannot view a tensor of shape {} ({} elements) as shape {} ({} elements)",
                                 x.shape().str(), x.numel(), shape.str(), shape.numel()));
  if (shape == x.shape()) return x;
  return record(def, x.alias_with_shape(shape), {&x});
}

Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape) {
  kernels::require_defined(x, "reshape", "input");
  std::vector<std::int64_t> d = shape;
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d[i] == -1) {
      if (infer >= 0) throw ValueError("reshape: at most one extent may be -1");
      infer = static_cast<int>(i);
    } else if (d[i] < 0) {
      throw ValueError(fmt::format("reshape: negative extent {} in the requested shape", d[i]));
    } else {
      known *= d[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw ShapeError(fmt::format("reshape: cannot infer the -1 extent viewing shape {} ({} elements) with "
                                   "the other extents multiplying to {}",
                                   x.shape().str(), x.numel(), known));
    d[infer] = x.numel() / known;
  }
  return reshape(x, Shape(d));
}

Tensor reshape(const Tensor& x, std::initializer_list<std::int64_t> shape) {
  return reshape(x, std::vector<std::int64_t>(shape));
}

Tensor flatten(const Tensor& x) {
  kernels::require_defined(x, "flatten", "input");
  return reshape(x, Shape{x.numel()});
}

Tensor unsqueeze(const Tensor& x, int axis) {
  kernels::require_defined(x, "unsqueeze", "input");
  int a = Shape::normalize_axis(axis, x.rank() + 1, "unsqueeze");
  std::vector<std::int64_t> d = x.shape().vec();
  d.insert(d.begin() + a, 1);
  return reshape(x, Shape(d));
}

Tensor squeeze(const Tensor& x, int axis) {
  kernels::require_defined(x, "squeeze", "input");
  int a = Shape::normalize_axis(axis, x.rank(), "squeeze");
  if (x.shape()[a] != 1)
    throw ShapeError(fmt::format("squeeze: axis {} of shape {} has extent {}, not 1", axis, x.shape().str(),
                                 x.shape()[a]));
  std::vector<std::int64_t> d = x.shape().vec();
  d.erase(d.begin() + a);
  return reshape(x, Shape(d));
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  // The engine sums the cotangent back to x's shape.
  static const OpDef def{"broadcast_to", [](Backward& b) { b.accumulate(0, b.grad_out()); }};
  kernels::require_defined(x, "broadcast_to", "input");
  if (x.shape() == shape) return x;
  if (x.rank() > shape.rank() || broadcast_shapes(x.shape(), shape, "broadcast_to") != shape)
    throw ShapeError(fmt::format("broadcast_to: cannot broadcast shape {} to shape {}", x.shape().str(),
                                 shape.str()));
  auto p = kernels::plan_broadcast<2>({&shape, &x.shape()}, "broadcast_to");
  Tensor y(shape, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* xp = x.data<T>();
    T* yp = y.mutable_data<T>();
    kernels::for_each_run<2>(p, [&](std::int64_t o, const auto& off, const auto& st, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) yp[o + i] = xp[off[1] + i * st[1]];
    });
  });
  return record(def, std::move(y), {&x});
}

}  // namespace hyperad
