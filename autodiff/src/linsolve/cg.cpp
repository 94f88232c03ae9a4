// Conjugate gradient, and CG on the normal equations.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common.hpp"

namespace hyperad::linsolve {

namespace {

TensorList cg_iteration(const Operator& A, const TensorList& b, const TensorList& x0, const Options& o,
                        Report& rep) {
  detail::Start s = detail::start(A, b, x0);
  TensorList x = std::move(s.x), r = std::move(s.r);
  StoppingRule rule(o, list::norm(b), b);
  rep.tolerance = rule.tolerance();
  TensorList p = list::clone(r);
  double rs = list::dot(r, r), rn = std::sqrt(rs);
  // Checked after every update, so a converged x is returned as is (never one step late).
  while (!rule.done(rn, rep.iterations, rep)) {
    const TensorList Ap = A.apply(p);
    const double pAp = list::dot(p, Ap);
    if (!(pAp > 0.0)) {  // also catches NaN; rs > 0 here, so p != 0
      rep.status = std::isfinite(pAp) ? Status::breakdown : Status::diverged;
      rep.reason = fmt::format("breakdown: p'Ap = {:.3e} <= 0 at iteration {}; the operator is not positive "
                               "definite (CG needs a symmetric positive definite operator; use GMRES)",
                               pAp, rep.iterations);
      break;
    }
    const double alpha = rs / pAp;
    list::axpy(alpha, p, x);
    list::axpy(-alpha, Ap, r);
    ++rep.iterations;
    const double rs_new = list::dot(r, r);
    rn = std::sqrt(rs_new);
    if (rn <= std::max(rule.tolerance(), rule.floor()) || !std::isfinite(rn)) continue;  // stops at the loop head
    list::scale(p, rs_new / rs);  // rs > tolerance² >= 0 from the previous check: no 0/0
    list::axpy(1.0, r, p);
    rs = rs_new;
  }
  return x;
}

}  // namespace

Solver cg() { return Solver("CG", cg_iteration, {.needs_symmetric = true}); }

Solver normal_cg() {
  // (AᵀA) x = Aᵀ b: symmetric positive definite for any non-singular A.
  auto algorithm = [](const Operator& A, const TensorList& b, const TensorList& x0, const Options& o, Report& rep) {
    Operator normal;
    normal.apply = [&A](const TensorList& u) { return A.apply_transposed(A.apply(u)); };
    normal.symmetry = Symmetry::symmetric;
    TensorList x = cg_iteration(normal, A.apply_transposed(b), x0, o, rep);
    // It stopped on the normal equations' residual ‖Aᵀr‖; the report's target stays the one
    // for ‖b − Ax‖ (the driver's check of the true residual compares against it).
    rep.tolerance = o.tolerance.bound(rep.rhs_norm);
    return x;
  };
  return Solver("normal-CG", algorithm, {.needs_transpose = true, .iteration_cost = 3});
}

}  // namespace hyperad::linsolve
