// BiCGStab (van der Vorst 1992): bi-conjugate gradient with a local residual minimization,
// for non-symmetric systems.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common.hpp"

namespace hyperad::linsolve {

Solver bicgstab() {
  auto algorithm = [](const Operator& A, const TensorList& b, const TensorList& x0, const Options& o, Report& rep) {
    detail::Start s = detail::start(A, b, x0);
    TensorList x = std::move(s.x), r = std::move(s.r);
    const TensorList shadow = list::clone(r);  // r̂, fixed
    TensorList p, v;
    double rho = 1.0, alpha = 1.0, omega = 1.0, rn = list::norm(r);
    StoppingRule rule(o, rep.rhs_norm, b);
    auto breakdown = [&](const std::string& what) {
      rep.status = Status::breakdown;
      rep.reason = fmt::format("breakdown: {} at iteration {} (the shadow residual is orthogonal to the Krylov "
                               "space; restart from this x, or use GMRES)",
                               what, rep.iterations);
      rep.residual = rn;
    };
    while (!rule.done(rn, rep.iterations, rep)) {
      const double rho_next = list::dot(shadow, r);
      if (rho_next == 0.0 || !std::isfinite(rho_next)) {
        breakdown(fmt::format("<r^, r> = {:.3e}", rho_next));
        break;
      }
      if (p.empty()) {
        p = list::clone(r);
      } else {  // p ← r + β (p − ω v)
        const double beta = (rho_next / rho) * (alpha / omega);
        list::axpy(-omega, v, p);
        list::scale(p, beta);
        list::axpy(1.0, r, p);
      }
      rho = rho_next;
      v = A.apply(p);
      const double rv = list::dot(shadow, v);
      if (rv == 0.0 || !std::isfinite(rv)) {
        breakdown(fmt::format("<r^, A p> = {:.3e}", rv));
        break;
      }
      alpha = rho / rv;
      TensorList half = list::clone(r);  // s = r − α v, the residual after the BiCG half step
      list::axpy(-alpha, v, half);
      ++rep.iterations;
      const double hn = list::norm(half);
      if (hn <= std::max(rule.tolerance(), rule.floor())) {
        list::axpy(alpha, p, x);
        r = std::move(half);
        rn = hn;
        continue;
      }
      const TensorList t = A.apply(half);
      const double tt = list::dot(t, t);
      if (tt == 0.0) {  // A s = 0 with s ≠ 0: A is singular
        list::axpy(alpha, p, x);
        r = std::move(half);
        rn = hn;
        breakdown("A s = 0 for the half-step residual s (a singular operator)");
        break;
      }
      omega = list::dot(t, half) / tt;
      list::axpy(alpha, p, x);
      list::axpy(omega, half, x);
      r = std::move(half);
      list::axpy(-omega, t, r);
      rn = list::norm(r);
      if (omega == 0.0 && !rule.done(rn, rep.iterations, rep)) {
        breakdown("the stabilizing step omega = 0");
        break;
      }
    }
    return x;
  };
  return Solver("BiCGStab", algorithm, {.iteration_cost = 2});
}

}  // namespace hyperad::linsolve
