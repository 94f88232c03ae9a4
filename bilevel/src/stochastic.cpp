#include "hyperad/bilevel/stochastic.hpp"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::bilevel {

namespace {
void require_sizes(std::int64_t n_inner, std::int64_t n_outer, const char* who) {
  if (n_inner < 1 || n_outer < 1)
    throw ValueError(fmt::format("{}: the data set sizes must be >= 1, got n_inner = {}, n_outer = {}", who, n_inner,
                                 n_outer));
}
}  // namespace

StochasticProblem StochasticProblem::from_map(StochasticInnerMap phi, std::int64_t n_inner, StochasticScalarFn outer,
                                              std::int64_t n_outer, TensorList w0, linsolve::Symmetry symmetry) {
  require_sizes(n_inner, n_outer, "StochasticProblem::from_map");
  StochasticProblem p;
  p.map_ = std::make_shared<const StochasticInnerMap>(std::move(phi));
  p.outer_ = std::make_shared<const StochasticScalarFn>(std::move(outer));
  p.n_inner_ = n_inner;
  p.n_outer_ = n_outer;
  p.w0_ = list::detach(w0);
  p.symmetry_ = symmetry;
  p.at(Batch{0}, Batch{0});  // validates w0 the way Problem does
  return p;
}

StochasticProblem StochasticProblem::gradient_descent(StochasticScalarFn inner_loss, double step_size,
                                                      std::int64_t n_inner, StochasticScalarFn outer,
                                                      std::int64_t n_outer, TensorList w0) {
  require_sizes(n_inner, n_outer, "StochasticProblem::gradient_descent");
  StochasticProblem p;
  p.loss_ = std::make_shared<const StochasticScalarFn>(std::move(inner_loss));
  p.outer_ = std::make_shared<const StochasticScalarFn>(std::move(outer));
  p.n_inner_ = n_inner;
  p.n_outer_ = n_outer;
  p.w0_ = list::detach(w0);
  p.kind_ = MapKind::gradient_step;
  p.symmetry_ = linsolve::Symmetry::symmetric;
  p.step_ = step_size;
  p.at(Batch{0}, Batch{0});  // validates the step size and w0
  return p;
}

Problem StochasticProblem::at(Batch xi, Batch zeta) const {
  if (xi.empty() || zeta.empty())
    throw ValueError(fmt::format("StochasticProblem: empty batch ({} inner, {} outer indices)", xi.size(), zeta.size()));
  // The closures share the batches (moved in once) and the callbacks; the data stays with
  // the callbacks' owner.
  auto x = std::make_shared<const Batch>(std::move(xi));
  auto z = std::make_shared<const Batch>(std::move(zeta));
  ScalarFn e = [f = outer_, z](const TensorList& w, const TensorList& l) { return (*f)(w, l, *z); };
  if (kind_ == MapKind::gradient_step)
    return Problem::gradient_descent([f = loss_, x](const TensorList& w, const TensorList& l) { return (*f)(w, l, *x); },
                                     step_, std::move(e), w0_);
  return Problem::from_map([f = map_, x](const TensorList& w, const TensorList& l) { return (*f)(w, l, *x); }, std::move(e),
                           w0_, symmetry_);
}

TensorList StochasticProblem::phi(const TensorList& w, const TensorList& lambda, const Batch& xi) const {
  return at(xi, {0}).phi(w, lambda);
}

Tensor StochasticProblem::outer(const TensorList& w, const TensorList& lambda, const Batch& zeta) const {
  return at({0}, zeta).outer(w, lambda);
}

void validate_damping(const StepSizeSchedule& step, const char* who) {
  if (!(step.alpha0 > 0.0 && step.alpha0 <= 1.0))
    throw ValueError(fmt::format("{}: the step size η₀ must be in (0, 1], got {}", who, step.alpha0));
  step.validate(who);
}

StochasticInnerResult solve_inner_stochastic(const StochasticProblem& problem, const TensorList& lambda,
                                             const TensorList& start, const StochasticInnerOptions& o,
                                             BatchSampler& sampler) {
  if (o.max_iterations < 0)
    throw ValueError(fmt::format("solve_inner_stochastic: max_iterations must be >= 0, got {}", o.max_iterations));
  if (o.batch_size < 0 || o.batch_size > problem.n_inner())
    throw ValueError(fmt::format("solve_inner_stochastic: batch_size must be in [0, {}] (0: full batch), got {}",
                                 problem.n_inner(), o.batch_size));
  if (!(o.momentum >= 0.0 && o.momentum < 1.0))
    throw ValueError(fmt::format("solve_inner_stochastic: the momentum must be in [0, 1), got {}", o.momentum));
  validate_damping(o.step_size, "solve_inner_stochastic");
  if (sampler.n() != problem.n_inner())
    throw ValueError(fmt::format("solve_inner_stochastic: the sampler draws from {} examples, the inner data has {}",
                                 sampler.n(), problem.n_inner()));
  list::require_like(start, problem.initial_state(), "solve_inner_stochastic: the start state");

  StochasticInnerResult r;
  r.state = list::clone(list::detach(start));
  const TensorList lam = list::detach(lambda);
  const bool full = o.batch_size == 0;
  const Batch all = full ? full_batch(problem.n_inner()) : Batch{};
  TensorList previous;  // w_{s−1}, for momentum
  double first = 0.0;
  for (int s = 0; s < o.max_iterations; ++s) {
    const double eta = o.step_size.at(s);
    TensorList next;
    {
      TapeScope scope;  // gradient maps record ∇L internally: drop it after each step
      NoGradGuard off;
      const Batch xi = full ? all : sampler.next(o.batch_size);
      r.samples += static_cast<std::int64_t>(xi.size());
      TensorList image = problem.phi(r.state, lam, xi);
      for (std::size_t i = 0; i < image.size(); ++i) {
        Tensor w = r.state[i];
        Tensor n = eta == 1.0 ? image[i].detach() : (w + eta * (image[i] - w)).detach();
        if (o.momentum > 0.0 && !previous.empty()) n = (n + o.momentum * (w - previous[i])).detach();
        next.push_back(n);
      }
    }
    const double step = list::distance(next, r.state);
    if (s == 0) first = step;
    previous = std::move(r.state);
    r.state = std::move(next);
    r.steps = s + 1;
    r.last_step_norm = step;
    if (!std::isfinite(step) || step > o.divergence_factor * std::max(first, 1e-300))
      throw ConvergenceError(fmt::format("solve_inner_stochastic: the inner iteration diverged at step {}: step norm "
                                         "{:.3g} (first step {:.3g}); reduce the step size η₀ = {} or the map's step",
                                         s + 1, step, first, o.step_size.alpha0));
  }
  return r;
}

SampleCounts full_batch_samples(const Diagnostics& d, std::int64_t n_inner, std::int64_t n_outer) {
  SampleCounts c;
  c.inner = n_inner * (d.inner_steps + d.recomputed_steps);
  c.outer = n_outer;
  if (d.method.rfind("ITD", 0) == 0 || d.method.rfind("truncated ITD", 0) == 0) {
    c.linear = n_inner * d.reverse_steps;
  } else if (d.method.rfind("AID", 0) == 0) {
    c.linear = n_inner * d.linear.iteration_cost * d.linear.iterations;
    c.cross = n_inner;
  } else {
    throw ValueError(fmt::format("full_batch_samples: unknown method \"{}\" (AID and ITD are counted)", d.method));
  }
  return c;
}

FullBatchCounted::FullBatchCounted(std::shared_ptr<HypergradientMethod> method, std::int64_t n_inner,
                                   std::int64_t n_outer)
    : method_(std::move(method)), n_inner_(n_inner), n_outer_(n_outer) {
  if (!method_) throw ValueError("FullBatchCounted: no method given");
  require_sizes(n_inner, n_outer, "FullBatchCounted");
}

Hypergradient FullBatchCounted::hypergradient(const Problem& problem, const TensorList& lambda) {
  Hypergradient h = method_->hypergradient(problem, lambda);
  h.diagnostics.sample_counts = full_batch_samples(h.diagnostics, n_inner_, n_outer_);
  h.diagnostics.samples = h.diagnostics.sample_counts.total();
  return h;
}

Hypergradient FullBatchCounted::hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) {
  Hypergradient h = method_->hypergradient_at(problem, lambda, w);
  h.diagnostics.sample_counts = full_batch_samples(h.diagnostics, n_inner_, n_outer_);
  h.diagnostics.samples = h.diagnostics.sample_counts.total();
  return h;
}

}  // namespace hyperad::bilevel
