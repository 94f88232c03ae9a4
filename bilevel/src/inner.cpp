#include "hyperad/bilevel/inner.hpp"

#include "linearization.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::bilevel {

InnerResult solve_inner(const Problem& problem, const Tensors& lambda, const Tensors& start,
                        const InnerOptions& options) {
  if (options.max_steps < 0) throw ValueError(fmt::format("solve_inner: max_steps must be >= 0, got {}", options.max_steps));
  if (start.size() != problem.initial_state().size())
    throw ShapeError(fmt::format("solve_inner: the start state has {} tensors, the problem's state {}", start.size(),
                                 problem.initial_state().size()));
  InnerResult r;
  r.state = detach_all(start);
  const Tensors lam = detach_all(lambda);
  double first = 0.0;
  for (int k = 0; k < options.max_steps; ++k) {
    Tensors next;
    {
      TapeScope scope;  // gradient maps record ∇L internally: drop it after each step
      NoGradGuard off;
      next = detach_all(problem.phi(r.state, lam));
    }
    const double step = distance(next, r.state);
    if (k == 0) first = step;
    r.state = std::move(next);
    r.steps = k + 1;
    r.last_step_norm = step;
    if (!std::isfinite(step) || step > options.divergence_factor * std::max(first, 1e-300)) {
      std::string advice = problem.kind() == MapKind::general
                               ? "check that the map is a contraction"
                               : fmt::format("the step size {} may be too large for this inner loss", problem.step_size());
      throw ConvergenceError(fmt::format("solve_inner: the inner iteration diverged at step {}: step norm {:.3g} "
                                         "(first step {:.3g}); {}",
                                         k + 1, step, first, advice));
    }
    if (options.tolerance > 0.0 && step <= options.tolerance) {
      r.converged = true;
      break;
    }
  }
  return r;
}

double estimate_contraction(const Problem& problem, const Tensors& state, const Tensors& lambda, int iterations,
                            std::uint64_t seed) {
  TapeScope scope;
  const Tensors lam = detach_all(lambda);
  const detail::PhiPullback phi(problem, detach_all(state), lam);
  Generator gen(seed);
  Tensors v;
  for (const Tensor& s : state) v.push_back(randn(s.shape(), gen, s.dtype()));
  double nv = linsolve::norm(v), ratio = 0.0;
  for (int k = 0; k < iterations && nv > 0.0; ++k) {
    Tensors u;
    for (const Tensor& x : v) u.push_back(x * (1.0 / nv));
    v = phi.wt(u);
    nv = linsolve::norm(v);  // ‖Jᵀu‖ with ‖u‖ = 1
    ratio = nv;
  }
  return ratio;
}

}  // namespace hyperad::bilevel
