#pragma once
// The numerically stable softplus and sigmoid, for scalars and xsimd batches alike, written
// in terms of e = exp(−|v|) ∈ (0, 1] (no overflow at any v; tiny results keep their
// relative precision). Callers that need both at one point compute e once.
#include <cmath>

#include "kernels/exp.hpp"

namespace hyperad::kernels {

/// e = exp(−|v|), the one exponential the two functions below need.
template <class V>
V exp_neg_abs(V v) {
  using std::abs;  // ADL finds xsimd's for batches
  return vexp(-abs(v));
}

/// softplus(v) = log(1 + e^v) = max(v, 0) + log1p(e), with e = exp_neg_abs(v).
template <class V>
V softplus_from(V v, V e) {
  using std::log1p;
  return if_else(v > V(0), v, V(0)) + log1p(e);
}

/// σ(v) = 1 / (1 + e^−v): 1/(1 + e) for v ≥ 0, e/(1 + e) below, with e = exp_neg_abs(v).
template <class V>
V sigmoid_from(V v, V e) {
  const V s = V(1) / (V(1) + e);
  return if_else(v >= V(0), s, e * s);
}

}  // namespace hyperad::kernels
