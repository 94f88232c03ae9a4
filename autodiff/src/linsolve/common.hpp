#pragma once
// What the built-in solver algorithms share: the start of an iteration and the residual.
// The operator they receive is the driver's (products counted and shape-checked there).
#include "hyperad/autodiff/linsolve.hpp"

namespace hyperad::linsolve::detail {

/// b − A x as a fresh list.
inline TensorList residual(const Operator& A, const TensorList& b, const TensorList& x) {
  TensorList r = list::clone(b);
  list::axpy(-1.0, A.apply(x), r);
  return r;
}

/// The first iterate and its residual: x0 and b − A x0, or zeros and b (no product).
struct Start {
  TensorList x, r;
};
inline Start start(const Operator& A, const TensorList& b, const TensorList& x0) {
  if (x0.empty()) return {list::zeros_like(b), list::clone(b)};
  TensorList x = list::clone(x0);
  TensorList r = residual(A, b, x);
  return {std::move(x), std::move(r)};
}

}  // namespace hyperad::linsolve::detail
