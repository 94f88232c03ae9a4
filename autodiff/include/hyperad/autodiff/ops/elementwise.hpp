#pragma once
/// \file ops/elementwise.hpp
/// Elementwise DSL ops. Binary ops broadcast like numpy; scalars are converted to the
/// tensor's dtype. Operands must share a dtype (DtypeError otherwise). Each op's backward
/// rule is written with these same ops, so every op is twice differentiable (and more).
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad {

// ---- arithmetic -----------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
/// x + s, x * s, s - x, s / x for a scalar s.
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor rsub_scalar(double s, const Tensor& x);
Tensor rdiv_scalar(double s, const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add_scalar(x, s); }
inline Tensor operator+(double s, const Tensor& x) { return add_scalar(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add_scalar(x, -s); }
inline Tensor operator-(double s, const Tensor& x) { return rsub_scalar(s, x); }
inline Tensor operator*(const Tensor& x, double s) { return mul_scalar(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul_scalar(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul_scalar(x, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& x) { return rdiv_scalar(s, x); }

// ---- unary maps -------------------------------------------------------------------------
Tensor exp(const Tensor& x);
/// Natural log; log of a negative value is NaN and of zero -Inf, as in IEEE arithmetic
/// (use FiniteCheckGuard to catch them).
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
/// x^p for a scalar exponent p.
Tensor pow(const Tensor& x, double p);
/// |x|; its derivative at 0 is taken as 0.
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
/// 1 / (1 + e^-x), computed without overflow.
Tensor sigmoid(const Tensor& x);
/// max(x, 0); derivative 0 at 0.
Tensor relu(const Tensor& x);
/// log(1 + e^x), computed without overflow.
Tensor softplus(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);

// ---- piecewise -----------------------------------------------------------------------
/// Elementwise max / min (broadcasting). At ties the gradient goes to `a`.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
/// min(max(x, lo), hi); the gradient is 1 where lo <= x <= hi, else 0. Requires lo <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);
/// Elementwise `mask != 0 ? a : b`, broadcasting all three; `mask` is not differentiated.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);

// ---- comparisons (results are 0/1 tensors of the operands' dtype, not differentiable) ----
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);
/// -1, 0 or 1 (not differentiated: its derivative is 0 almost everywhere).
Tensor sign(const Tensor& x);

}  // namespace hyperad
