#include "hyperad/bilevel/reference.hpp"

#include <chrono>
#include <cmath>
#include <exception>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/implicit.hpp"
#include "hyperad/autodiff/dense_lu.hpp"
#include "call_meter.hpp"
#include "linearization.hpp"

namespace hyperad::bilevel {

namespace {

InnerResult converged_inner(const Problem& p, const TensorList& lambda, const InnerOptions& o, const TensorList& start,
                            const char* who) {
  InnerResult r = solve_inner(p, lambda, start.empty() ? p.initial_state() : start, o);
  if (o.tolerance.any() && !r.converged)
    throw ConvergenceError(fmt::format("{}: the inner solve did not reach the tolerance (rtol {:.3g}, atol {:.3g}) in {} "
                                       "steps (last step norm {:.3g})",
                                       who, o.tolerance.rtol, o.tolerance.atol, r.steps, r.last_step_norm));
  return r;
}
// Newton's correction of a fixed point (the chord method, one factorization): the
// iteration stops on its step norm, which for a contraction factor q near 1 leaves an error
// of step/(1 − q); solving (I − ∂_wΦ) δ = Φ(w) − w removes it to rounding. Returns the final
// fixed-point residual ‖Φ(w) − w‖ and the last correction's norm (the error estimate).
struct Polished {
  TensorList w;
  double residual = 0, correction = 0;
};
Polished newton_polish(const Problem& p, const TensorList& lambda, TensorList w) {
  const TensorList lam = list::detach(lambda);
  auto fixed_point_residual = [&](const TensorList& x) {
    TapeScope scope;
    NoGradGuard off;
    TensorList r = list::detach(p.phi(x, lam));
    list::axpy(-1.0, x, r);
    return r;  // Φ(x) − x
  };
  const auto n = static_cast<std::size_t>(list::numel(w));
  std::vector<double> bt(n * n);  // row j: (I − ∂_wΦᵀ) e_j, i.e. (I − ∂_wΦ)ᵀ row-major
  {
    TapeScope scope;
    const detail::PhiPullback phi(p, w, lam);
    for (std::size_t j = 0; j < n; ++j) {
      std::vector<double> ej(n, 0.0);
      ej[j] = 1.0;
      const std::vector<double> jt = list::flatten(phi.wt(list::unflatten(ej, w)));
      for (std::size_t i = 0; i < n; ++i) bt[j * n + i] = (i == j ? 1.0 : 0.0) - jt[i];
    }
  }
  Polished out;
  TensorList r = fixed_point_residual(w);
  out.residual = list::norm(r);
  try {
    const linsolve::DenseLU lu(bt, n);  // of Bᵀ with B = I − ∂_wΦ: solve_transposed solves B δ = r
    for (int k = 0; k < 3 && out.residual > 0; ++k) {
      const TensorList delta = list::unflatten(lu.solve_transposed(list::flatten(r)), w);
      TensorList next = list::clone(w);
      list::axpy(1.0, delta, next);
      const TensorList r_next = fixed_point_residual(next);
      const double res_next = list::norm(r_next);
      out.correction = list::norm(delta);
      if (!(res_next < out.residual)) break;  // at rounding level: keep the better point
      w = std::move(next);
      r = r_next;
      out.residual = res_next;
    }
  } catch (const ValueError&) {
    // I − ∂_wΦ singular: the linear solve below reports it with its reason.
  }
  out.w = std::move(w);
  return out;
}

}  // namespace

namespace {
// f(λ) = E(w(λ), λ) and the last step norm of the solve that gave w(λ).
struct OuterAt {
  double value = 0, last_step_norm = 0;
};
OuterAt outer_at(const Problem& problem, const TensorList& lambda, const InnerOptions& inner, const TensorList& start,
                 const char* who) {
  const InnerResult r = converged_inner(problem, lambda, inner, start, who);
  TapeScope scope;
  NoGradGuard off;
  return {problem.outer(r.state, list::detach(lambda)).item(), r.last_step_norm};
}
}  // namespace

double outer_value(const Problem& problem, const TensorList& lambda, const InnerOptions& inner, const TensorList& start) {
  return outer_at(problem, lambda, inner, start, "outer_value").value;
}

Hypergradient exact_hypergradient(const Problem& problem, const TensorList& lambda, const ExactOptions& options) {
  const detail::CallClock clock;
  const std::int64_t n = list::numel(problem.initial_state());
  if (n > options.max_state_elements)
    throw ValueError(fmt::format("exact_hypergradient: the inner state has {} elements, above the limit {} of a dense "
                                 "solve (raise ExactOptions::max_state_elements if you mean it)",
                                 n, options.max_state_elements));
  InnerResult inner = converged_inner(problem, lambda, options.inner, {}, "exact_hypergradient");
  const Polished polished = newton_polish(problem, lambda, std::move(inner.state));

  TapeScope scope;
  const TensorList& w = polished.w;
  const detail::OuterGradients e = detail::outer_gradients(problem, w, lambda);
  ImplicitOptions io;
  io.solver = linsolve::dense_lu(options.max_state_elements);
  io.symmetry = problem.symmetry();
  const FixedPointMap phi = [&problem](const TensorList& ws, const TensorList& ls) { return problem.phi(ws, ls); };
  ImplicitResult r = implicit_vjp(phi, w, lambda, e.wrt_w, e.wrt_lambda, io);
  if (r.report.status != linsolve::Status::converged)
    throw ConvergenceError(fmt::format("exact_hypergradient: the linear system (I − ∂_wΦᵀ) v = ∇_wE could not be "
                                       "solved: {}",
                                       r.report.reason));
  Hypergradient h;
  h.grad = std::move(r.grad);
  h.objective = e.value;
  h.diagnostics.method = "exact";
  h.diagnostics.inner_steps = inner.steps;
  h.diagnostics.inner_step_norm = polished.residual;  // ‖Φ(w) − w‖ after the Newton correction
  h.diagnostics.inner_error = polished.correction;
  h.diagnostics.warnings = r.report.warnings;
  h.diagnostics.linear = std::move(r.report);
  clock.finish(h.diagnostics);
  return h;
}

Hypergradient finite_difference_hypergradient(const Problem& problem, const TensorList& lambda,
                                              const FiniteDifferenceOptions& options) {
  const detail::CallClock clock;
  if (!(options.step > 0.0)) throw ValueError(fmt::format("finite_difference_hypergradient: step must be positive, got {}", options.step));
  // The inner solution at λ is a good start for every perturbed solve.
  const TensorList center = converged_inner(problem, lambda, options.inner, {}, "finite_difference_hypergradient").state;
  const std::vector<double> lam = list::flatten(lambda);
  const auto n = static_cast<std::int64_t>(lam.size());
  std::vector<double> g(lam.size()), err(lam.size());
  std::exception_ptr failure;
  // Each solve stops on a step norm s, leaving ‖w − w*‖ ≲ s·q/(1 − q) and an error of
  // about ‖∇_wE‖ times that in f. It is largely common to the steps h and 2h (both start
  // from the same center), so their disagreement does not show it: bound it separately.
  double inner_gain = 0.0;  // ‖∇_wE‖·q/(1 − q)
  {
    TapeScope scope;
    const double q = contraction_estimate(problem, center, lambda).q;
    const double grad_e = list::norm(detail::outer_gradients(problem, center, lambda).wrt_w);
    inner_gain = q < 1.0 ? grad_e * q / (1.0 - q) : std::numeric_limits<double>::infinity();
  }

  // f(λ + δ e_i), and the bound of its error from the inner solve.
  auto f_at = [&](std::int64_t i, double delta, double& f_error) {
    std::vector<double> moved = lam;
    moved[static_cast<std::size_t>(i)] += delta;
    const OuterAt f = outer_at(problem, list::unflatten(moved, lambda), options.inner, center,
                               "finite_difference_hypergradient");
    f_error = inner_gain * f.last_step_norm;
    return f.value;
  };
#pragma omp parallel for schedule(dynamic) if (options.parallel)
  for (std::int64_t i = 0; i < n; ++i) {
    try {
      const double h = options.step * std::max(1.0, std::abs(lam[static_cast<std::size_t>(i)]));
      double e[4];
      const double d = (f_at(i, h, e[0]) - f_at(i, -h, e[1])) / (2 * h);
      const double d2 = (f_at(i, 2 * h, e[2]) - f_at(i, -2 * h, e[3])) / (4 * h);
      // d − d2 = −3ch² + rounding noise: a third of it is d's truncation error (Richardson's,
      // at most); the inner solves add at most (e₊ + e₋)/(2h).
      g[static_cast<std::size_t>(i)] = options.richardson ? (4 * d - d2) / 3 : d;
      const double inner = options.richardson ? (4 * (e[0] + e[1]) / (2 * h) + (e[2] + e[3]) / (4 * h)) / 3
                                              : (e[0] + e[1]) / (2 * h);
      err[static_cast<std::size_t>(i)] = std::abs(d - d2) / 3 + inner;
    } catch (...) {
#pragma omp critical
      failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  Hypergradient hg;
  hg.grad = list::unflatten(g, lambda);
  hg.objective = outer_value(problem, lambda, options.inner, center);
  hg.diagnostics.method = options.richardson ? "finite differences (4-point)" : "finite differences";
  hg.diagnostics.inner_steps = 0;
  double e2 = 0;
  for (double e : err) e2 += e * e;
  hg.diagnostics.error_estimate = std::sqrt(e2);
  clock.finish(hg.diagnostics);
  return hg;
}

}  // namespace hyperad::bilevel
