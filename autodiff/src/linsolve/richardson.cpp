// Fixed-point (Richardson) iteration and the Neumann series.
#include <cmath>

#include <fmt/format.h>

#include "common.hpp"
#include "hyperad/autodiff/errors.hpp"

namespace hyperad::linsolve {

Solver richardson(double omega) {
  if (!(omega > 0.0) || !std::isfinite(omega))
    throw ValueError(fmt::format("linsolve::richardson: the step omega must be finite and > 0, got {}", omega));
  auto algorithm = [omega](const Operator& A, const TensorList& b, const TensorList& x0, const Options& o,
                           Report& rep) {
    detail::Start s = detail::start(A, b, x0);
    TensorList x = std::move(s.x), r = std::move(s.r);
    StoppingRule rule(o, rep.rhs_norm, b);
    double rn = list::norm(r);
    while (!rule.done(rn, rep.iterations, rep)) {
      list::axpy(omega, r, x);
      ++rep.iterations;
      r = detail::residual(A, b, x);
      rn = list::norm(r);
    }
    return x;
  };
  return Solver("FP", algorithm, {.exact_residual = true});
}

Solver neumann() {
  auto algorithm = [](const Operator& A, const TensorList& b, const TensorList& x0, const Options& o, Report& rep) {
    // M t, exactly when the operator gives M (A = I − M), else t − A t.
    auto M = [&A](const TensorList& t) {
      if (A.iteration_matrix) return A.iteration_matrix(t);
      TensorList y = list::clone(t);
      list::axpy(-1.0, A.apply(t), y);
      return y;
    };
    // x0 + Σ_{k ≤ K} Mᵏ r0: after adding the term Mᵏ r0 the residual is M^{k+1} r0, which the
    // last term bounds when ‖M‖ ≤ 1.
    detail::Start s = detail::start(A, b, x0);
    TensorList x = std::move(s.x), term = std::move(s.r);
    list::axpy(1.0, term, x);
    StoppingRule rule(o, rep.rhs_norm, b);
    while (!rule.done(list::norm(term), rep.iterations, rep)) {
      term = M(term);
      list::axpy(1.0, term, x);
      ++rep.iterations;
    }
    return x;
  };
  return Solver("Neumann", algorithm);
}

}  // namespace hyperad::linsolve
