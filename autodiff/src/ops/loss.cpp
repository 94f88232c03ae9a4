// Fused losses: each is one record with its own backward rule (written in DSL ops, so the
// losses are twice differentiable), and a forward kernel that stays finite and accurate
// for extreme inputs (max-shifted softmax, softplus without overflow).
#include "hyperad/autodiff/ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/record.hpp"
#include "deferred.hpp"
#include "ops/loss_common.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/exp.hpp"
#include "kernels/logistic.hpp"
#include "kernels/reduce.hpp"

namespace hyperad {

namespace {
OpAttrs axis_attr(int axis) {
  OpAttrs a;
  a.integer[0] = axis;
  return a;
}

// The lanes of x along `axis`, with what softmax, log_softmax and cross_entropy are formed
// from: per lane its max m and log s, s = Σ exp(v − m), and the shifted exponentials
// e = exp(v − m) in one vectorized pass over x. Results are formed from v − m, e and log s,
// never from v − logsumexp: at |v| ~ 1000 the logsumexp itself is rounded to the (coarse)
// spacing of its magnitude, while v − m is exact. A lane whose max is ±Inf or NaN is not
// shifted (the plain formula then gives the IEEE answer).
template <class T>
struct Lanes {
  kernels::AxisSplit a;
  std::vector<T> m;  // per lane: lane (o, i) at o·inner + i; its element k at o·n·inner + k·inner + i
  Tensor e, s;       // x's shape; [lanes]
  /// f(first, lane, stride) for every lane: its elements are at first + k·stride, k < n. The
  /// stride of contiguous lanes (a softmax over the last axis) is a compile-time 1, so
  /// their loops over k are tight: the generic nest would run a one-trip loop per element.
  template <class F>
  void each_lane(F&& f) const {
    if (a.inner == 1) {
      for (std::int64_t o = 0; o < a.outer; ++o) f(o * a.n, o, std::integral_constant<std::int64_t, 1>{});
      return;
    }
    for (std::int64_t o = 0; o < a.outer; ++o)
      for (std::int64_t i = 0; i < a.inner; ++i) f(o * a.n * a.inner + i, o * a.inner + i, a.inner);
  }
  /// f(at, lane) for every element, lane by lane.
  template <class F>
  void each(F&& f) const {
    each_lane([&](std::int64_t first, std::int64_t lane, auto stride) {
      for (std::int64_t k = 0; k < a.n; ++k) f(first + k * stride, lane);
    });
  }
  Tensor log_s() const { return kernels::map_unary(s, kernels::simd<4>([](auto v) { using std::log; return log(v); }), "log"); }
  /// The softmax e / s, lane by lane, in e's storage (e is left undefined).
  Tensor probabilities() {
    Tensor y = std::move(e);
    T* yp = y.mutable_data<T>();
    const T* sp = s.template data<T>();
    each_lane([&](std::int64_t first, std::int64_t lane, auto stride) {
      const T inv = T(1) / sp[lane];
      for (std::int64_t k = 0; k < a.n; ++k) yp[first + k * stride] *= inv;
    });
    return y;
  }
};

template <class T>
Lanes<T> lanes_of(const Tensor& x, int axis) {
  Lanes<T> L{kernels::split_at(x.shape(), axis), {}, {}, {}};
  const std::int64_t n = L.a.n;
  L.s = Tensor(Shape{L.a.outer * L.a.inner}, x.dtype());
  L.m.resize(static_cast<std::size_t>(L.a.outer * L.a.inner));
  const T* xp = x.data<T>();
  Tensor shifted(x.shape(), x.dtype());
  T* d = shifted.mutable_data<T>();
  L.each_lane([&](std::int64_t first, std::int64_t lane, auto stride) {
    const T* v = xp + first;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t k = 0; k < n; ++k) m = std::max(m, v[k * stride]);
    if (!std::isfinite(m)) m = T(0);
    L.m[static_cast<std::size_t>(lane)] = m;
    for (std::int64_t k = 0; k < n; ++k) d[first + k * stride] = v[k * stride] - m;
  });
  L.e = kernels::map_unary(shifted, kernels::simd<4>([](auto v) { return kernels::vexp(v); }), "softmax");
  const T* e = L.e.template data<T>();
  T* sp = L.s.template mutable_data<T>();
  L.each_lane([&](std::int64_t first, std::int64_t lane, auto stride) {
    T sum = 0;
    for (std::int64_t k = 0; k < n; ++k) sum += e[first + k * stride];
    sp[lane] = sum;
  });
  return L;
}

}  // namespace

namespace detail {

// The factor each per-example cotangent is scaled by: 1/count for mean, else 1. Throws
// for a mean over nothing (it has no value) and for a Reduction outside the enum.
double reduction_scale(Reduction r, std::int64_t count, const char* op) {
  if (r != Reduction::mean && r != Reduction::sum && r != Reduction::none)
    throw ValueError(fmt::format("{}: unknown reduction {}", op, static_cast<int>(r)));
  if (r != Reduction::mean) return 1.0;
  if (count == 0) throw ValueError(fmt::format("{}: reduction mean over zero examples", op));
  return 1.0 / static_cast<double>(count);
}

double gradient_scale(Reduction r, std::int64_t count, const char* op) {
  if (r == Reduction::none)
    throw ValueError(fmt::format("{}: reduction none has no single gradient (one per example); use mean or sum", op));
  return reduction_scale(r, count, op);
}

// Reduces per-example losses (accumulated in double, so a float32 mean over many
// examples is not degraded by float32 rounding of the running sum) to a scalar, or keeps them.
Tensor reduce_losses(Tensor per, Reduction r, double scale) {
  if (r == Reduction::none) return per;
  Tensor out({}, per.dtype());
  dispatch(per.dtype(), [&]<class T>() {
    const T* p = per.data<T>();
    double s = 0.0;
    for (std::int64_t i = 0, n = per.numel(); i < n; ++i) s += static_cast<double>(p[i]);
    out.mutable_data<T>()[0] = static_cast<T>(s * scale);
  });
  return out;
}

OpAttrs reduction_attr(Reduction r, double scale) {
  OpAttrs a;
  a.integer[0] = static_cast<std::int64_t>(r);
  a.real[0] = scale;
  return a;
}

// Two operands of one loss must agree in shape and dtype.
void require_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* ra, const char* rb) {
  kernels::require_defined(a, op, ra);
  kernels::require_defined(b, op, rb);
  if (a.shape() != b.shape())
    throw ShapeError(fmt::format("{}: shapes differ: {} {} vs {} {}", op, ra, a.shape().str(), rb, b.shape().str()));
  if (a.dtype() != b.dtype())
    throw DtypeError(fmt::format("{}: dtypes differ: {} {} vs {} {}", op, ra, dtype_name(a.dtype()), rb,
                                 dtype_name(b.dtype())));
}
}  // namespace detail

using namespace detail;

Tensor softmax(const Tensor& x, int axis) {
  // dx = y ⊙ (g − Σ_axis g⊙y)
  static const OpDef def{"softmax", [](Backward& b) {
                           const Tensor& y = b.saved(0);
                           const int a = static_cast<int>(b.integer(0));
                           const Tensor& g = b.grad_out();
                           b.accumulate(0, mul(y, sub(g, sum(mul(g, y), {a}, true))));
                         }};
  kernels::require_defined(x, "softmax", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "softmax");
  Tensor y;
  dispatch(x.dtype(), [&]<class T>() { y = lanes_of<T>(x, a).probabilities(); });
  return record(def, std::move(y), {&x}, {kSaveOutput}, axis_attr(a));
}

Tensor log_softmax(const Tensor& x, int axis) {
  // dx = g − exp(y) Σ_axis g   (exp(y) is the softmax)
  static const OpDef def{"log_softmax", [](Backward& b) {
                           const int a = static_cast<int>(b.integer(0));
                           const Tensor& g = b.grad_out();
                           b.accumulate(0, sub(g, mul(exp(b.saved(0)), sum(g, {a}, true))));
                         }};
  kernels::require_defined(x, "log_softmax", "input");
  const int a = Shape::normalize_axis(axis, x.rank(), "log_softmax");
  Tensor y(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const Lanes<T> L = lanes_of<T>(x, a);
    const Tensor ls = L.log_s();
    const T* xp = x.data<T>();
    const T* log_s = ls.template data<T>();
    T* yp = y.mutable_data<T>();
    L.each([&](std::int64_t at, std::int64_t lane) {
      yp[at] = (xp[at] - L.m[static_cast<std::size_t>(lane)]) - log_s[lane];
    });
  });
  return record(def, std::move(y), {&x}, {kSaveOutput}, axis_attr(a));
}

Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& labels, Reduction reduction) {
  // d logits = (softmax(x) − onehot) ⊙ g · scale, with g per example ([n] → [n, 1]) for
  // `none` and a scalar otherwise. A sweep that records itself recomputes softmax(x) from
  // the saved logits with the DSL op, so the rule is differentiable again; a first-order
  // sweep (every step of an inner solve) takes the probabilities the forward formed, the
  // same numbers (the softmax op's own kernel) without a second pass of exponentials. The
  // onehot is a constant.
  static const OpDef def{"cross_entropy", [](Backward& b) {
                           const Tensor& x = b.saved(0);
                           Tensor g = b.grad_out();
                           if (static_cast<Reduction>(b.integer(0)) == Reduction::none) g = reshape(g, {x.size(0), 1});
                           Tensor d = sub(b.create_graph() ? softmax(x, 1) : b.saved(2), b.saved(1));
                           b.accumulate(0, mul_scalar(mul(d, g), b.real(0)));
                         }};
  const char* op = "cross_entropy";
  kernels::require_defined(logits, op, "logits");
  if (logits.rank() != 2)
    throw ShapeError(fmt::format("cross_entropy: logits must be 2-D [n, C], got logits {}", logits.shape().str()));
  const std::int64_t n = logits.size(0), C = logits.size(1);
  if (static_cast<std::int64_t>(labels.size()) != n)
    throw ShapeError(fmt::format("cross_entropy: {} labels (labels [{}]) for logits {}: need one label per row ({})",
                                 labels.size(), labels.size(), logits.shape().str(), n));
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= C)
      throw ValueError(fmt::format("cross_entropy: label {} at position {} is out of range [0, {}) for C = {} "
                                   "classes (logits {})",
                                   labels[i], i, C, C, logits.shape().str()));
  const double scale = reduction_scale(reduction, n, op);

  // Per example: logsumexp(x_i) − x_i[label_i] = (m_i − x_i[label_i]) + log Σ exp(x_i − m_i).
  Tensor per({n}, logits.dtype());
  const bool recorded = any_requires_grad({&logits});
  Tensor probabilities;  // for a first-order backward
  dispatch(logits.dtype(), [&]<class T>() {
    const T* x = logits.data<T>();
    T* p = per.mutable_data<T>();
    Lanes<T> L = lanes_of<T>(logits, 1);
    const Tensor ls = L.log_s();
    const T* log_s = ls.template data<T>();
    for (std::int64_t i = 0; i < n; ++i)
      p[i] = (L.m[static_cast<std::size_t>(i)] - x[i * C + labels[static_cast<std::size_t>(i)]]) + log_s[i];
    if (recorded) probabilities = L.probabilities();
  });
  Tensor out = reduce_losses(std::move(per), reduction, scale);
  if (!recorded) return out;

  Tensor onehot = zeros(logits.shape(), logits.dtype());
  dispatch(logits.dtype(), [&]<class T>() {
    T* h = onehot.mutable_data<T>();
    for (std::int64_t i = 0; i < n; ++i) h[i * C + labels[static_cast<std::size_t>(i)]] = T(1);
  });
  return record(def, std::move(out), {&logits}, {&logits, &onehot, &probabilities}, reduction_attr(reduction, scale));
}

Tensor logistic_loss(const Tensor& z, const Tensor& y, Reduction reduction) {
  // ℓ = softplus(−y z); with s = σ(−y z): dz = −y s g · scale, dy = −z s g · scale.
  static const OpDef def{"logistic_loss", [](Backward& b) {
                           const Tensor &z = b.saved(0), &y = b.saved(1);
                           Tensor sg = mul_scalar(mul(sigmoid(neg(mul(y, z))), b.grad_out()), -b.real(0));
                           if (b.needs(0)) b.accumulate(0, mul(y, sg));
                           if (b.needs(1)) b.accumulate(1, mul(z, sg));
                         }};
  const char* op = "logistic_loss";
  require_same_shape(z, y, op, "scores z", "labels y");
  const double scale = reduction_scale(reduction, z.numel(), op);
  // softplus(m) = max(m, 0) + log1p(e^−|m|): no overflow for |m| ~ 1000, and exact
  // (not 1 + tiny rounded to 1) when m << 0.
  Tensor per = kernels::map_binary(
      z, y,
      kernels::simd<8>([](auto zv, auto yv) {
        const auto m = -yv * zv;
        return kernels::softplus_from(m, kernels::exp_neg_abs(m));
      }),
      op);
  return record(def, reduce_losses(std::move(per), reduction, scale), {&z, &y}, {&z, &y},
                reduction_attr(reduction, scale));
}

namespace {
// A loss of a temporary z: the fused linear-model loss when z is a deferred X·w, else
// plain(z, y). It takes the handle: a moved-from argument is left undefined (a fused loss
// does not depend on its variable, which is rewound).
Tensor loss_of_temporary(Tensor&& z, const Tensor& y, Reduction reduction, LinearLoss loss, const char* op,
                         Tensor (*plain)(const Tensor&, const Tensor&, Reduction)) {
  if (&z == &y) return plain(z, y, reduction);
  const Tensor scores = std::exchange(z, Tensor());
  Tensor fused = detail::loss_of_deferred_product(scores, y, loss, reduction, op);
  return fused.defined() ? fused : plain(scores, y, reduction);
}
}  // namespace

Tensor logistic_loss(Tensor&& z, const Tensor& y, Reduction reduction) {
  return loss_of_temporary(std::move(z), y, reduction, LinearLoss::logistic, "logistic_loss", logistic_loss);
}

Tensor mse_loss(Tensor&& pred, const Tensor& target, Reduction reduction) {
  return loss_of_temporary(std::move(pred), target, reduction, LinearLoss::squared, "mse_loss", mse_loss);
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  // ℓ = (p − t)²; dp = 2 (p − t) g · scale = −dt.
  static const OpDef def{"mse_loss", [](Backward& b) {
                           Tensor d = mul_scalar(mul(sub(b.saved(0), b.saved(1)), b.grad_out()), 2.0 * b.real(0));
                           if (b.needs(1)) b.accumulate(1, neg(d));
                           if (b.needs(0)) b.accumulate(0, std::move(d));
                         }};
  const char* op = "mse_loss";
  require_same_shape(pred, target, op, "prediction", "target");
  const double scale = reduction_scale(reduction, pred.numel(), op);
  Tensor per = kernels::map_binary(pred, target, kernels::simd([](auto p, auto t) { return (p - t) * (p - t); }), op);
  return record(def, reduce_losses(std::move(per), reduction, scale), {&pred, &target}, {&pred, &target},
                reduction_attr(reduction, scale));
}

}  // namespace hyperad
