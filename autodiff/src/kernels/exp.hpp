#pragma once
// exp for the kernels: vexp(v) takes scalars and batches alike. For batches it is xsimd's
// exp where that is right, and our own near the ends of the range, where xsimd 8.1's is
// not: it flushes every subnormal result to zero (exp(-720) = 0, not 1.7e-313) and
// overflows to +Inf half a unit of k early (exp(709.5) = +Inf, not 1.35e308; in float
// the same below -87.3 and above 88.4). A lane outside xsimd's good range takes
// detail::exp_edge, which a vector reaches only when one of its lanes is there, so the
// common case costs two compares.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/simd.hpp"

namespace hyperad::kernels {

namespace detail {

// Constants of exp_edge per element type.
template <class T>
struct ExpConstants;
template <>
struct ExpConstants<double> {
  using Int = std::int64_t;
  static constexpr int mantissa = 52, bias = 1023, terms = 14;  // degree 13: r^14/14! < 5e-18
  static constexpr double lo = -746.0, hi = 710.0;              // beyond: 0 and +Inf
  static constexpr double fast_lo = -708.0, fast_hi = 709.0;    // xsimd's exp is right inside
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
};
template <>
struct ExpConstants<float> {
  using Int = std::int32_t;
  static constexpr int mantissa = 23, bias = 127, terms = 9;  // degree 8: r^9/9! < 2e-10
  static constexpr float lo = -105.0f, hi = 89.0f;
  static constexpr float fast_lo = -87.0f, fast_hi = 88.0f;
  static constexpr float ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187045e-06f;
};

// e^x = 2^k · e^r with k = round(x / ln 2) and r = x − k ln 2 (|r| ≤ ln 2 / 2, in two parts:
// ln 2's high part has trailing zero bits, so k · high is exact), e^r by its Taylor series
// (Horner), and 2^k applied as 2^k1 · 2^k2 (k1 = round(k/2)): each factor is a normal number
// for every k of the clamped range, so overflow gives +Inf and the subnormal range is
// reached by the last multiplication's rounding. k stays a float; adding 1.5·2^mantissa
// puts round(v) in the low mantissa bits, which become an exponent field by integer ops.
// Within 1 ulp of std::exp in double (test_kernels checks ≤ 2 ulp over the whole range).
template <class V>
V exp_edge(const V& x) {
  using T = typename V::value_type;
  using C = ExpConstants<T>;
  using I = xsimd::batch<typename C::Int, typename V::arch_type>;
  const V shifter(T(1.5) * T(std::int64_t{1} << C::mantissa));
  const V xc = xsimd::min(xsimd::max(x, V(C::lo)), V(C::hi));
  const V k = (xc * V(T(1.4426950408889634074)) + shifter) - shifter;
  V r = xsimd::fnma(k, V(C::ln2_hi), xc);
  r = xsimd::fnma(k, V(C::ln2_lo), r);
  T inv_fact[C::terms];  // 1/i!, highest first
  for (int i = 0; i < C::terms; ++i) {
    T f = 1;
    for (int j = 2; j <= C::terms - 1 - i; ++j) f *= T(j);
    inv_fact[i] = T(1) / f;
  }
  V p(inv_fact[0]);
  for (int i = 1; i < C::terms; ++i) p = xsimd::fma(p, r, V(inv_fact[i]));
  const V k1 = (k * V(T(0.5)) + shifter) - shifter, k2 = k - k1;
  const auto pow2 = [&](const V& e) {  // 2^e for an integer e of the normal exponents
    const I n = xsimd::bitwise_cast<I>(e + shifter) - xsimd::bitwise_cast<I>(shifter);
    return xsimd::bitwise_cast<V>((n + I(typename C::Int(C::bias))) << C::mantissa);
  };
  const V y = p * pow2(k1) * pow2(k2);
  return xsimd::select(xsimd::isnan(x), x, y);
}

}  // namespace detail

/// e^v for a float or double scalar (std::exp) or batch (see the file comment).
template <class V>
V vexp(const V& v) {
  if constexpr (std::is_floating_point_v<V>) {
    return std::exp(v);
  } else {
    using C = detail::ExpConstants<typename V::value_type>;
    const auto fast = v >= V(C::fast_lo) && v <= V(C::fast_hi);
    const V y = xsimd::exp(v);
    if (xsimd::all(fast || xsimd::isnan(v))) return y;
    return xsimd::select(fast, y, detail::exp_edge(v));
  }
}

}  // namespace hyperad::kernels
