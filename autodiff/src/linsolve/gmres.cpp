// Restarted GMRES(m): Arnoldi by modified Gram–Schmidt, least squares by Givens rotations.
#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "hyperad/autodiff/errors.hpp"

namespace hyperad::linsolve {

Solver gmres(int restart) {
  if (restart < 1) throw ValueError(fmt::format("linsolve::gmres: restart must be >= 1, got {}", restart));
  auto algorithm = [m = restart](const Operator& A, const TensorList& b, const TensorList& x0, const Options& o,
                                 Report& rep) {
    detail::Start s = detail::start(A, b, x0);
    TensorList x = std::move(s.x), r = std::move(s.r);
    StoppingRule rule(o, rep.rhs_norm, b);
    double rn = list::norm(r);
    const double rn_first = rn;
    while (!rule.done(rn, rep.iterations, rep)) {
      // One cycle: Arnoldi basis V, Hessenberg H (column-major, (m+1) × m) reduced to upper
      // triangular by Givens rotations (cs, sn); g is the rotated β e₁.
      std::vector<TensorList> V;
      V.push_back(r);
      list::scale(V[0], 1.0 / rn);  // rn > tolerance >= 0
      std::vector<double> H(static_cast<std::size_t>((m + 1) * m), 0.0), cs(m, 1.0), sn(m, 0.0), g(m + 1, 0.0);
      auto h = [&](int i, int j) -> double& { return H[static_cast<std::size_t>(j * (m + 1) + i)]; };
      g[0] = rn;
      int k = 0;  // columns built
      while (k < m && rep.iterations < o.max_iterations) {
        const int j = k;
        TensorList w = A.apply(V[j]);
        const double wn = list::norm(w);
        for (int i = 0; i <= j; ++i) {  // modified Gram–Schmidt
          h(i, j) = list::dot(w, V[i]);
          list::axpy(-h(i, j), V[i], w);
        }
        const double hn = list::norm(w);
        h(j + 1, j) = hn;
        for (int i = 0; i < j; ++i) {  // previous rotations on the new column
          const double a = h(i, j), c = h(i + 1, j);
          h(i, j) = cs[i] * a + sn[i] * c;
          h(i + 1, j) = -sn[i] * a + cs[i] * c;
        }
        const double a = h(j, j), c = h(j + 1, j), d = std::hypot(a, c);
        cs[j] = d == 0.0 ? 1.0 : a / d;
        sn[j] = d == 0.0 ? 0.0 : c / d;
        h(j, j) = d;
        h(j + 1, j) = 0.0;
        g[j + 1] = -sn[j] * g[j];
        g[j] = cs[j] * g[j];
        ++k;
        ++rep.iterations;
        const double est = std::abs(g[j + 1]);
        // Happy breakdown: A v_j lies in the basis up to rounding. Orthogonalization leaves a
        // residue of order (j+1)·ε·‖A v_j‖, not 0; normalized, that residue would enter the
        // basis as a vector of noise and spoil the least-squares solution.
        const bool closed = hn <= 4.0 * (j + 1) * rule.epsilon() * wn;
        if (est <= std::max(rule.tolerance(), rule.floor()) || closed || !std::isfinite(est)) break;
        list::scale(w, 1.0 / hn);
        V.push_back(std::move(w));
      }
      // Back substitution H[0:k,0:k] y = g[0:k]; a zero pivot (singular A restricted to the
      // Krylov space) contributes nothing instead of dividing by zero.
      std::vector<double> y(k, 0.0);
      for (int i = k - 1; i >= 0; --i) {
        double acc = g[i];
        for (int l = i + 1; l < k; ++l) acc -= h(i, l) * y[l];
        y[i] = h(i, i) != 0.0 ? acc / h(i, i) : 0.0;
      }
      TensorList x_next = list::clone(x);
      for (int i = 0; i < k; ++i) list::axpy(y[i], V[i], x_next);
      TensorList r_next = detail::residual(A, b, x_next);
      const double rn_next = list::norm(r_next);
      // A cycle minimizes the residual over x + span(V) ∋ x: in exact arithmetic it cannot
      // grow. If it grew beyond rounding, the basis lost orthogonality: keep x and say so.
      // Rounding: at the noise floor the computed residual wanders by factors, so growth
      // counts only above max(1e-8, 1e4·ε) of the larger of ‖b‖ and the first residual
      // (record_true_residual's slack; a warm start's first residual can be tiny).
      const double slack = std::max(1e-8, 1e4 * rule.epsilon()) * std::max(rn_first, rep.rhs_norm);
      if (std::isfinite(rn_next) && rn_next > rn + slack) {
        rep.status = Status::breakdown;
        rep.residual = rn;
        rep.reason = fmt::format("breakdown: a GMRES cycle raised the residual from {:.3e} to {:.3e} at iteration {} "
                                 "(its Arnoldi basis lost orthogonality); the last iterate is kept",
                                 rn, rn_next, rep.iterations);
        return x;
      }
      x = std::move(x_next);
      r = std::move(r_next);
      rn = rn_next;
    }
    return x;
  };
  return Solver("GMRES", algorithm, {.exact_residual = true});
}

}  // namespace hyperad::linsolve
