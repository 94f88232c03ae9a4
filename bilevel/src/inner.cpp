#include "hyperad/bilevel/inner.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "linearization.hpp"
#include "trust_checks.hpp"

namespace hyperad::bilevel {

InnerResult solve_inner(const Problem& problem, const TensorList& lambda, const TensorList& start,
                        const InnerOptions& options) {
  if (options.max_iterations < 0)
    throw ValueError(fmt::format("solve_inner: max_iterations must be >= 0, got {}", options.max_iterations));
  options.tolerance.validate("solve_inner");
  list::require_like(start, problem.initial_state(), "solve_inner: the start state");
  if (const InnerSolver* solver = problem.inner_solver()) {
    NoGradGuard off;
    InnerResult r = (*solver)(list::detach(lambda), list::detach(start), options);
    list::require_like(r.state, problem.initial_state(), "solve_inner: the inner solver's result");
    r.state = list::detach(r.state);
    return r;
  }
  InnerResult r;
  r.state = list::detach(start);
  const TensorList lam = list::detach(lambda);
  double first = 0.0;
  detail::StepTrace trace;
  for (int k = 0; k < options.max_iterations; ++k) {
    TensorList next;
    {
      TapeScope scope;  // gradient maps record ∇L internally: drop it after each step
      NoGradGuard off;
      next = list::detach(problem.phi(r.state, lam));
    }
    const double step = list::distance(next, r.state);
    if (k == 0) first = step;
    const double size = options.tolerance.rtol > 0.0 ? list::norm(next) : 0.0;
    r.state = std::move(next);
    r.steps = k + 1;
    r.last_step_norm = step;
    trace.add(step);
    if (!std::isfinite(step) || step > options.divergence_factor * std::max(first, 1e-300)) {
      const std::string advice =
          problem.kind() == MapKind::general
              ? std::string("check that the map is a contraction")
              : fmt::format("the step size {} may be too large for this inner loss", problem.step_size().describe());
      throw ConvergenceError(fmt::format("solve_inner: the inner iteration diverged at step {}: step norm {:.3g} "
                                         "(first step {:.3g}); {}",
                                         k + 1, step, first, advice));
    }
    if (options.tolerance.any() && step <= options.tolerance.bound(size)) {
      r.converged = true;
      break;
    }
  }
  if (!r.converged) {
    r.step_growth = trace.growth(list::norm(r.state));
    r.growth_window = trace.window();
  }
  return r;
}

ContractionEstimate contraction_estimate(const Problem& problem, const TensorList& state, const TensorList& lambda,
                                         int iterations, std::uint64_t seed) {
  if (iterations < 1) throw ValueError(fmt::format("estimate_contraction: iterations must be >= 1, got {}", iterations));
  TapeScope scope;
  const detail::PhiPullback phi(problem, list::detach(state), list::detach(lambda));
  Generator gen(seed);
  TensorList v;
  for (const Tensor& s : state) v.push_back(randn(s.shape(), gen, s.dtype()));
  double nv = list::norm(v);
  std::vector<double> trace;
  for (int k = 0; k < iterations && nv > 0.0; ++k) {
    TensorList u = list::clone(v);
    list::scale(u, 1.0 / nv);
    v = phi.wt(u);
    nv = list::norm(v);  // ‖Jᵀu‖ with ‖u‖ = 1
    trace.push_back(nv);
  }
  ContractionEstimate e;
  e.iterations = static_cast<int>(trace.size());
  if (trace.empty()) return e;
  e.q = trace.back();
  const std::size_t m = std::max<std::size_t>(1, trace.size() / 10);
  const double before = trace.size() > m ? trace[trace.size() - 1 - m] : 0.0;
  e.change = e.q > 0 ? std::abs(e.q - before) / e.q : 0.0;
  return e;
}

double estimate_contraction(const Problem& problem, const TensorList& state, const TensorList& lambda, int iterations,
                            std::uint64_t seed) {
  return contraction_estimate(problem, state, lambda, iterations, seed).q;
}

}  // namespace hyperad::bilevel
