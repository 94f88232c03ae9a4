// Reductions, each forward next to its backward rule (written in DSL ops).
#include "hyperad/autodiff/ops/reduce.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/reduce.hpp"

namespace hyperad {

namespace {
// The shapes of a reduction over `axes` (empty: all): `keep` has the reduced axes set to
// 1, `out` drops them (or equals `keep` with keepdim).
struct Reduced {
  Shape keep, out;
};
Reduced reduced_shapes(const Shape& s, const std::vector<int>& axes, bool keepdim, const char* op) {
  std::vector<bool> red(static_cast<std::size_t>(s.rank()), axes.empty());
  for (int a : axes) {
    int n = Shape::normalize_axis(a, s.rank(), op);
    if (red[n]) throw ValueError(fmt::format("{}: axis {} listed twice for shape {}", op, a, s.str()));
    red[n] = true;
  }
  std::vector<std::int64_t> keep, out;
  for (int i = 0; i < s.rank(); ++i) {
    keep.push_back(red[i] ? 1 : s.begin()[i]);
    if (!red[i] || keepdim) out.push_back(keep.back());
  }
  return {Shape(keep), Shape(out)};
}

OpAttrs shape_attr(const Shape& s) {
  OpAttrs a;
  a.ints = s.vec();
  return a;
}
}  // namespace

Tensor sum_to(const Tensor& x, const Shape& shape) {
  static const OpDef def{"sum_to", [](Backward& b) {
                           b.accumulate(0, broadcast_to(b.grad_out(), b.input_shape(0)));
                         }};
  kernels::require_defined(x, "sum_to", "input");
  if (x.shape() == shape) return x;
  return record(def, kernels::sum_to(x, shape, "sum_to"), {&x});
}

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  // Backward: the cotangent, given back its reduced axes, broadcast over them.
  static const OpDef def{"sum", [](Backward& b) {
                           Tensor g = reshape(b.grad_out(), Shape(b.ints()));
                           b.accumulate(0, broadcast_to(g, b.input_shape(0)));
                         }};
  kernels::require_defined(x, "sum", "input");
  Reduced r = reduced_shapes(x.shape(), axes, keepdim, "sum");
  Tensor y = kernels::sum_to(x, r.keep, "sum").alias_with_shape(r.out);
  return record(def, std::move(y), {&x}, {}, shape_attr(r.keep));
}

Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  kernels::require_defined(x, "mean", "input");
  Shape keep = reduced_shapes(x.shape(), axes, keepdim, "mean").keep;
  std::int64_t count = keep.numel() == 0 ? 0 : x.numel() / keep.numel();
  if (count == 0) throw ValueError(fmt::format("mean: no elements to average in shape {}", x.shape().str()));
  return mul_scalar(sum(x, axes, keepdim), 1.0 / static_cast<double>(count));
}

namespace {
Tensor extremum_op(const Tensor& x, int axis, bool keepdim, bool want_max) {
  // Backward: the cotangent goes to the first extremal element of each lane (a 0/1 mask
  // saved at forward time), so the rule is a product with a constant.
  static const OpDef def_max{"max", [](Backward& b) {
                               b.accumulate(0, mul(reshape(b.grad_out(), Shape(b.ints())), b.saved(0)));
                             }};
  static const OpDef def_min{"min", [](Backward& b) {
                               b.accumulate(0, mul(reshape(b.grad_out(), Shape(b.ints())), b.saved(0)));
                             }};
  const char* name = want_max ? "max" : "min";
  kernels::require_defined(x, name, "input");
  int a = Shape::normalize_axis(axis, x.rank(), name);
  if (x.shape()[a] == 0) throw ValueError(fmt::format("{}: empty axis {} of shape {}", name, axis, x.shape().str()));
  std::vector<std::int64_t> idx;
  const bool need_mask = any_requires_grad({&x});
  Tensor y = kernels::extremum(x, a, want_max, need_mask ? &idx : nullptr);
  Shape keep = y.shape();
  if (!keepdim) y = y.alias_with_shape(kernels::reduced_shape(x.shape(), a, false));
  if (!need_mask) return y;
  Tensor mask = zeros(x.shape(), x.dtype());
  auto sp = kernels::split_at(x.shape(), a);
  dispatch(x.dtype(), [&]<class T>() {
    T* m = mask.mutable_data<T>();
    for (std::int64_t o = 0; o < sp.outer; ++o)
      for (std::int64_t i = 0; i < sp.inner; ++i)
        m[(o * sp.n + idx[static_cast<std::size_t>(o * sp.inner + i)]) * sp.inner + i] = T(1);
  });
  return record(want_max ? def_max : def_min, std::move(y), {&x}, {&mask}, shape_attr(keep));
}
}  // namespace

Tensor max(const Tensor& x, int axis, bool keepdim) { return extremum_op(x, axis, keepdim, true); }
Tensor min(const Tensor& x, int axis, bool keepdim) { return extremum_op(x, axis, keepdim, false); }

std::vector<std::int64_t> argmax(const Tensor& x, int axis) {
  kernels::require_defined(x, "argmax", "input");
  int a = Shape::normalize_axis(axis, x.rank(), "argmax");
  if (x.shape()[a] == 0) throw ValueError(fmt::format("argmax: empty axis {} of shape {}", axis, x.shape().str()));
  std::vector<std::int64_t> idx;
  kernels::extremum(x, a, true, &idx);
  return idx;
}

Tensor logsumexp(const Tensor& x, int axis, bool keepdim) {
  // d/dx logsumexp = softmax = exp(x - y)
  static const OpDef def{"logsumexp", [](Backward& b) {
                           Shape keep(b.ints());
                           Tensor y = reshape(b.saved(1), keep);
                           b.accumulate(0, mul(reshape(b.grad_out(), keep), exp(sub(b.saved(0), y))));
                         }};
  kernels::require_defined(x, "logsumexp", "input");
  int a = Shape::normalize_axis(axis, x.rank(), "logsumexp");
  Tensor y = kernels::logsumexp(x, a);
  Shape keep = y.shape();
  if (!keepdim) y = y.alias_with_shape(kernels::reduced_shape(x.shape(), a, false));
  return record(def, std::move(y), {&x}, {&x, kSaveOutput}, shape_attr(keep));
}

Tensor squared_norm(const Tensor& x) { return sum(square(x)); }

Tensor norm(const Tensor& x) {
  // d‖x‖ = g x / ‖x‖, taken as 0 at x = 0 (the denominator is made 1 there, x is 0).
  static const OpDef def{"norm", [](Backward& b) {
                           const Tensor& x = b.saved(0);
                           const Tensor& y = b.saved(1);
                           Tensor one = ones({}, y.dtype());
                           Tensor safe = where(greater(y, zeros({}, y.dtype())), y, one);
                           b.accumulate(0, mul(div(b.grad_out(), safe), x));
                         }};
  kernels::require_defined(x, "norm", "input");
  Tensor y;
  {
    NoGradGuard off;
    y = sqrt(sum(square(x)));
  }
  return record(def, std::move(y), {&x}, {&x, kSaveOutput});
}

Tensor dot(const Tensor& a, const Tensor& b) {
  kernels::require_defined(a, "dot", "first operand");
  kernels::require_defined(b, "dot", "second operand");
  if (a.shape() != b.shape())
    throw ShapeError(fmt::format("dot: operands must have equal shapes, got first {} and second {}",
                                 a.shape().str(), b.shape().str()));
  return sum(mul(a, b));
}

}  // namespace hyperad
