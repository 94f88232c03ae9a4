// Elementwise DSL ops: each forward next to its backward rule, the rule written in DSL
// ops so that it is recorded (and differentiable again) under create_graph.
#include "hyperad/autodiff/ops/elementwise.hpp"

#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/record.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/exp.hpp"
#include "kernels/logistic.hpp"

namespace hyperad {

using kernels::map_binary;
using kernels::map_unary;

namespace {
OpAttrs real_attr(double s) {
  OpAttrs a;
  a.real[0] = s;
  return a;
}
}  // namespace

// ---- arithmetic -----------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  static const OpDef def{"add", [](Backward& bw) {
                           bw.accumulate(0, bw.grad_out());
                           bw.accumulate(1, bw.grad_out());
                         }};
  return record(def, map_binary(a, b, kernels::simd([](auto x, auto y) { return x + y; }), "add"), {&a, &b});
}

Tensor sub(const Tensor& a, const Tensor& b) {
  static const OpDef def{"sub", [](Backward& bw) {
                           bw.accumulate(0, bw.grad_out());
                           if (bw.needs(1)) bw.accumulate(1, neg(bw.grad_out()));
                         }};
  return record(def, map_binary(a, b, kernels::simd([](auto x, auto y) { return x - y; }), "sub"), {&a, &b});
}

Tensor mul(const Tensor& a, const Tensor& b) {
  static const OpDef def{"mul", [](Backward& bw) {
                           if (bw.needs(0)) bw.accumulate(0, mul(bw.grad_out(), bw.saved(1)));
                           if (bw.needs(1)) bw.accumulate(1, mul(bw.grad_out(), bw.saved(0)));
                         }};
  return record(def, map_binary(a, b, kernels::simd([](auto x, auto y) { return x * y; }), "mul"), {&a, &b},
                {saved_for(a, b), saved_for(b, a)});
}

Tensor div(const Tensor& a, const Tensor& b) {
  // d(a/b) = g/b da - g a/b² db
  static const OpDef def{"div", [](Backward& bw) {
                           const Tensor& b = bw.saved(1);
                           if (bw.needs(0)) bw.accumulate(0, div(bw.grad_out(), b));
                           if (bw.needs(1)) bw.accumulate(1, neg(div(mul(bw.grad_out(), bw.saved(0)), square(b))));
                         }};
  return record(def, map_binary(a, b, kernels::simd([](auto x, auto y) { return x / y; }), "div"), {&a, &b},
                {saved_for(a, b), &b});
}

Tensor neg(const Tensor& x) {
  static const OpDef def{"neg", [](Backward& bw) { bw.accumulate(0, neg(bw.grad_out())); }};
  return record(def, map_unary(x, kernels::simd([](auto v) { return -v; }), "neg"), {&x});
}

Tensor add_scalar(const Tensor& x, double s) {
  static const OpDef def{"add_scalar", [](Backward& bw) { bw.accumulate(0, bw.grad_out()); }};
  return record(def, dispatch(x.defined() ? x.dtype() : Dtype::f64, [&]<class T>() {
                  const T c = static_cast<T>(s);
                  return map_unary(x, kernels::simd([c](auto v) { return v + c; }), "add_scalar");
                }),
                {&x});
}

Tensor mul_scalar(const Tensor& x, double s) {
  static const OpDef def{"mul_scalar", [](Backward& bw) { bw.accumulate(0, mul_scalar(bw.grad_out(), bw.real(0))); }};
  return record(def, dispatch(x.defined() ? x.dtype() : Dtype::f64, [&]<class T>() {
                  const T c = static_cast<T>(s);
                  return map_unary(x, kernels::simd([c](auto v) { return v * c; }), "mul_scalar");
                }),
                {&x}, {}, real_attr(s));
}

Tensor rsub_scalar(double s, const Tensor& x) {
  static const OpDef def{"rsub_scalar", [](Backward& bw) { bw.accumulate(0, neg(bw.grad_out())); }};
  return record(def, dispatch(x.defined() ? x.dtype() : Dtype::f64, [&]<class T>() {
                  const T c = static_cast<T>(s);
                  return map_unary(x, kernels::simd([c](auto v) { return c - v; }), "rsub_scalar");
                }),
                {&x});
}

Tensor rdiv_scalar(double s, const Tensor& x) {
  // y = s/x, dy/dx = -y/x
  static const OpDef def{"rdiv_scalar", [](Backward& bw) {
                           bw.accumulate(0, neg(div(mul(bw.grad_out(), bw.saved(1)), bw.saved(0))));
                         }};
  Tensor y = dispatch(x.defined() ? x.dtype() : Dtype::f64, [&]<class T>() {
    const T c = static_cast<T>(s);
    return map_unary(x, kernels::simd([c](auto v) { return c / v; }), "rdiv_scalar");
  });
  return record(def, std::move(y), {&x}, {&x, kSaveOutput});
}

// ---- unary maps -------------------------------------------------------------------------

Tensor exp(const Tensor& x) {
  static const OpDef def{"exp", [](Backward& bw) { bw.accumulate(0, mul(bw.grad_out(), bw.saved(0))); }};
  Tensor y = map_unary(x, kernels::simd<4>([](auto v) { return kernels::vexp(v); }), "exp");
  return record(def, std::move(y), {&x}, {kSaveOutput});
}

Tensor log(const Tensor& x) {
  static const OpDef def{"log", [](Backward& bw) { bw.accumulate(0, div(bw.grad_out(), bw.saved(0))); }};
  return record(def, map_unary(x, kernels::simd<4>([](auto v) { using std::log; return log(v); }), "log"), {&x}, {&x});
}

Tensor log1p(const Tensor& x) {
  static const OpDef def{"log1p", [](Backward& bw) {
                           bw.accumulate(0, div(bw.grad_out(), add_scalar(bw.saved(0), 1.0)));
                         }};
  return record(def, map_unary(x, kernels::simd<4>([](auto v) { using std::log1p; return log1p(v); }), "log1p"), {&x}, {&x});
}

Tensor expm1(const Tensor& x) {
  static const OpDef def{"expm1", [](Backward& bw) {
                           bw.accumulate(0, mul(bw.grad_out(), add_scalar(bw.saved(0), 1.0)));
                         }};
  Tensor y = map_unary(x, kernels::simd<4>([](auto v) { using std::expm1; return expm1(v); }), "expm1");
  return record(def, std::move(y), {&x}, {kSaveOutput});
}

Tensor sqrt(const Tensor& x) {
  static const OpDef def{"sqrt", [](Backward& bw) {
                           bw.accumulate(0, mul_scalar(div(bw.grad_out(), bw.saved(0)), 0.5));
                         }};
  Tensor y = map_unary(x, kernels::simd([](auto v) { using std::sqrt; return sqrt(v); }), "sqrt");
  return record(def, std::move(y), {&x}, {kSaveOutput});
}

Tensor square(const Tensor& x) {
  static const OpDef def{"square", [](Backward& bw) {
                           bw.accumulate(0, mul(bw.grad_out(), mul_scalar(bw.saved(0), 2.0)));
                         }};
  return record(def, map_unary(x, kernels::simd([](auto v) { return v * v; }), "square"), {&x}, {&x});
}

Tensor pow(const Tensor& x, double p) {
  static const OpDef def{"pow", [](Backward& bw) {
                           const double p = bw.real(0);
                           bw.accumulate(0, mul(bw.grad_out(), mul_scalar(pow(bw.saved(0), p - 1.0), p)));
                         }};
  Tensor y = dispatch(x.defined() ? x.dtype() : Dtype::f64, [&]<class T>() {
    const T e = static_cast<T>(p);
    return map_unary(x, kernels::simd<4>([e](auto v) { using std::pow; return pow(v, decltype(v)(e)); }), "pow");
  });
  if (p == 0.0) return y;  // constant 1: no dependence on x
  return record(def, std::move(y), {&x}, {&x}, real_attr(p));
}

Tensor abs(const Tensor& x) {
  static const OpDef def{"abs", [](Backward& bw) { bw.accumulate(0, mul(bw.grad_out(), sign(bw.saved(0)))); }};
  return record(def, map_unary(x, kernels::simd([](auto v) { using std::abs; return abs(v); }), "abs"), {&x}, {&x});
}

Tensor tanh(const Tensor& x) {
  // dy = g (1 - y²)
  static const OpDef def{"tanh", [](Backward& bw) {
                           bw.accumulate(0, mul(bw.grad_out(), rsub_scalar(1.0, square(bw.saved(0)))));
                         }};
  Tensor y = map_unary(x, kernels::simd<4>([](auto v) { using std::tanh; return tanh(v); }), "tanh");
  return record(def, std::move(y), {&x}, {kSaveOutput});
}

Tensor sigmoid(const Tensor& x) {
  // dy = g y (1 - y)
  static const OpDef def{"sigmoid", [](Backward& bw) {
                           const Tensor& y = bw.saved(0);
                           bw.accumulate(0, mul(bw.grad_out(), mul(y, rsub_scalar(1.0, y))));
                         }};
  Tensor y = map_unary(
      x,
      kernels::simd<4>([](auto v) { return kernels::sigmoid_from(v, kernels::exp_neg_abs(v)); }),
      "sigmoid");
  return record(def, std::move(y), {&x}, {kSaveOutput});
}

Tensor relu(const Tensor& x) {
  static const OpDef def{"relu", [](Backward& bw) {
                           bw.accumulate(0, mul(bw.grad_out(), greater(bw.saved(0), zeros({}, bw.saved(0).dtype()))));
                         }};
  return record(def, map_unary(x, kernels::simd([](auto v) { return kernels::if_else(v > decltype(v)(0), v, decltype(v)(0)); }), "relu"), {&x},
                {&x});
}

Tensor softplus(const Tensor& x) {
  static const OpDef def{"softplus", [](Backward& bw) { bw.accumulate(0, mul(bw.grad_out(), sigmoid(bw.saved(0)))); }};
  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, full precision for x << 0.
  return record(def,
                map_unary(
                    x, kernels::simd<4>([](auto v) { return kernels::softplus_from(v, kernels::exp_neg_abs(v)); }),
                    "softplus"),
                {&x}, {&x});
}

Tensor sin(const Tensor& x) {
  static const OpDef def{"sin", [](Backward& bw) { bw.accumulate(0, mul(bw.grad_out(), cos(bw.saved(0)))); }};
  return record(def, map_unary(x, kernels::simd<4>([](auto v) { using std::sin; return sin(v); }), "sin"), {&x}, {&x});
}

Tensor cos(const Tensor& x) {
  static const OpDef def{"cos", [](Backward& bw) { bw.accumulate(0, neg(mul(bw.grad_out(), sin(bw.saved(0))))); }};
  return record(def, map_unary(x, kernels::simd<4>([](auto v) { using std::cos; return cos(v); }), "cos"), {&x}, {&x});
}

// ---- piecewise -----------------------------------------------------------------------

Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  static const OpDef def{"where", [](Backward& bw) {
                           const Tensor& m = bw.saved(0);
                           const Tensor z = zeros({}, bw.grad_out().dtype());
                           if (bw.needs(1)) bw.accumulate(1, where(m, bw.grad_out(), z));
                           if (bw.needs(2)) bw.accumulate(2, where(m, z, bw.grad_out()));
                         }};
  kernels::require_defined(mask, "where", "mask");
  kernels::require_defined(a, "where", "second operand");
  // The mask is a condition: any dtype will do; it is compared with 0 in a's dtype.
  Tensor m = mask.dtype() == a.dtype() ? mask.detach() : mask.detach().to(a.dtype());
  Tensor out = kernels::map_ternary(
      m, a, b, kernels::simd([](auto m, auto x, auto y) { return kernels::if_else(m == decltype(m)(0), y, x); }), "where");
  return record(def, std::move(out), {&m, &a, &b}, {&m});
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor m = greater_equal(a, b);
  return where(m, a, b);
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor m = less_equal(a, b);
  return where(m, a, b);
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  if (!(lo <= hi)) throw ValueError(fmt::format("clamp: needs lo <= hi, got lo = {} and hi = {}", lo, hi));
  static const OpDef def{"clamp", [](Backward& bw) {
                           const Tensor& x = bw.saved(0);
                           Tensor inside = mul(greater_equal(x, full({}, bw.real(0), x.dtype())),
                                               less_equal(x, full({}, bw.real(1), x.dtype())));
                           bw.accumulate(0, mul(bw.grad_out(), inside));
                         }};
  Tensor y = dispatch(x.defined() ? x.dtype() : Dtype::f64, [&]<class T>() {
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    return map_unary(
        x,
        kernels::simd([l, h](auto v) {
          using V = decltype(v);
          return kernels::if_else(v < V(l), V(l), kernels::if_else(v > V(h), V(h), v));
        }),
        "clamp");
  });
  OpAttrs at;
  at.real = {lo, hi};
  return record(def, std::move(y), {&x}, {&x}, std::move(at));
}

// ---- comparisons (constants: never recorded) ----------------------------------------------

#define HYPERAD_COMPARISON(name, expr)                                                        \
  Tensor name(const Tensor& a, const Tensor& b) {                                             \
    return map_binary(                                                                        \
        a, b, kernels::simd([](auto x, auto y) { return kernels::if_else(expr, decltype(x)(1), decltype(x)(0)); }), #name); \
  }
HYPERAD_COMPARISON(greater, x > y)
HYPERAD_COMPARISON(greater_equal, x >= y)
HYPERAD_COMPARISON(less, x < y)
HYPERAD_COMPARISON(less_equal, x <= y)
HYPERAD_COMPARISON(equal, x == y)
#undef HYPERAD_COMPARISON

Tensor sign(const Tensor& x) {
  return map_unary(
      x,
      kernels::simd([](auto v) {
        using T = decltype(v);
        return kernels::if_else(v > T(0), T(1), kernels::if_else(v < T(0), T(-1), T(0)));
      }),
      "sign");
}

}  // namespace hyperad
