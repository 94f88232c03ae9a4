#include "hyperad/bilevel/reference.hpp"

#include <chrono>
#include <cmath>
#include <exception>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/bilevel/dense_lu.hpp"
#include "linearization.hpp"

namespace hyperad::bilevel {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

InnerResult converged_inner(const Problem& p, const Tensors& lambda, const InnerOptions& o, const Tensors& start,
                            const char* who) {
  InnerResult r = solve_inner(p, lambda, start.empty() ? p.initial_state() : start, o);
  if (o.tolerance > 0 && !r.converged)
    throw ConvergenceError(fmt::format("{}: the inner solve did not reach the tolerance {:.3g} in {} steps (last "
                                       "step norm {:.3g})",
                                       who, o.tolerance, r.steps, r.last_step_norm));
  return r;
}
}  // namespace

double outer_value(const Problem& problem, const Tensors& lambda, const InnerOptions& inner, const Tensors& start) {
  InnerResult r = converged_inner(problem, lambda, inner, start, "outer_value");
  TapeScope scope;
  NoGradGuard off;
  return problem.outer(r.state, detach_all(lambda)).item();
}

Hypergradient exact_hypergradient(const Problem& problem, const Tensors& lambda, const ExactOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t n = 0;
  for (const Tensor& s : problem.initial_state()) n += s.numel();
  if (n > options.max_state_elements)
    throw ValueError(fmt::format("exact_hypergradient: the inner state has {} elements, above the limit {} of a dense "
                                 "solve (raise ExactOptions::max_state_elements if you mean it)",
                                 n, options.max_state_elements));
  InnerResult inner = converged_inner(problem, lambda, options.inner, {}, "exact_hypergradient");

  TapeScope scope;
  const Tensors w = inner.state;
  const detail::OuterGradients e = detail::outer_gradients(problem, w, lambda);
  const Tensors& gw = e.wrt_w;
  const Tensors& gl = e.wrt_lambda;
  // A = I − ∂_wΦᵀ, column j = e_j − ∂_wΦᵀ e_j, by n pullbacks of the map recorded once.
  const detail::PhiPullback phi(problem, w, lambda);
  const auto un = static_cast<std::size_t>(n);
  std::vector<double> a(un * un);
  for (std::size_t j = 0; j < un; ++j) {
    std::vector<double> ej(un, 0.0);
    ej[j] = 1.0;
    const std::vector<double> col = flatten_all(phi.wt(unflatten_like(ej, w)));
    for (std::size_t i = 0; i < un; ++i) a[i * un + j] = (i == j ? 1.0 : 0.0) - col[i];
  }
  std::vector<double> rhs = flatten_all(gw);
  DenseLU lu(a, un);
  std::vector<double> v = lu.solve(rhs);

  double res = 0.0, rn = 0.0;
  for (std::size_t i = 0; i < un; ++i) {
    double s = -rhs[i];
    for (std::size_t j = 0; j < un; ++j) s += a[i * un + j] * v[j];
    res += s * s;
    rn += rhs[i] * rhs[i];
  }
  const Tensors cross = phi.both(unflatten_like(v, w)).second;
  Hypergradient h;
  for (std::size_t k = 0; k < lambda.size(); ++k) h.grad.push_back(gl[k] + cross[k]);
  h.objective = e.value;
  h.diagnostics.method = "exact";
  h.diagnostics.inner_steps = inner.steps;
  h.diagnostics.inner_step_norm = inner.last_step_norm;
  h.diagnostics.linear_residual = std::sqrt(res);
  h.diagnostics.linear_converged = std::sqrt(res) <= 1e-10 * std::max(1.0, std::sqrt(rn));
  h.diagnostics.seconds = seconds_since(t0);
  return h;
}

Hypergradient finite_difference_hypergradient(const Problem& problem, const Tensors& lambda,
                                              const FiniteDifferenceOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!(options.step > 0.0)) throw ValueError(fmt::format("finite_difference_hypergradient: step must be positive, got {}", options.step));
  // The inner solution at λ is a good start for every perturbed solve.
  const Tensors center = converged_inner(problem, lambda, options.inner, {}, "finite_difference_hypergradient").state;
  const std::vector<double> lam = flatten_all(lambda);
  const auto n = static_cast<std::int64_t>(lam.size());
  std::vector<double> g(lam.size());
  std::exception_ptr failure;

  auto f_at = [&](std::int64_t i, double delta) {
    std::vector<double> moved = lam;
    moved[static_cast<std::size_t>(i)] += delta;
    return outer_value(problem, unflatten_like(moved, lambda), options.inner, center);
  };
#pragma omp parallel for schedule(dynamic) if (options.parallel)
  for (std::int64_t i = 0; i < n; ++i) {
    try {
      const double h = options.step * std::max(1.0, std::abs(lam[static_cast<std::size_t>(i)]));
      double d = (f_at(i, h) - f_at(i, -h)) / (2 * h);
      if (options.richardson) {
        const double d2 = (f_at(i, 2 * h) - f_at(i, -2 * h)) / (4 * h);
        d = (4 * d - d2) / 3;
      }
      g[static_cast<std::size_t>(i)] = d;
    } catch (...) {
#pragma omp critical
      failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  Hypergradient hg;
  hg.grad = unflatten_like(g, lambda);
  hg.objective = outer_value(problem, lambda, options.inner, center);
  hg.diagnostics.method = options.richardson ? "finite differences (4-point)" : "finite differences";
  hg.diagnostics.inner_steps = 0;
  hg.diagnostics.seconds = seconds_since(t0);
  return hg;
}

}  // namespace hyperad::bilevel
