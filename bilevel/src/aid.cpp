#include "hyperad/bilevel/aid.hpp"

#include <cmath>

#include <fmt/format.h>

#include "call_meter.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "linearization.hpp"
#include "trust_checks.hpp"

namespace hyperad::bilevel {

AID::AID(AIDOptions options) : options_(std::move(options)) {
  if (options_.inner_steps < 0) throw ValueError(fmt::format("AID: inner_steps must be >= 0, got {}", options_.inner_steps));
  if (options_.linear_steps < 0)
    throw ValueError(fmt::format("AID: linear_steps must be >= 0, got {}", options_.linear_steps));
  options_.inner_tolerance.validate("AID: inner_tolerance");
  options_.linear_tolerance.validate("AID: linear_tolerance");
  if (!(options_.ridge >= 0.0) || !std::isfinite(options_.ridge))
    throw ValueError(fmt::format("AID: the ridge must be finite and >= 0, got {}", options_.ridge));
}

void AID::set_iterations(const IterationCounts& c) {
  if (c.cross_batches)
    throw ValueError(fmt::format("{}: AID's cross term is exact; it takes no J (asked for J = {})", name(), *c.cross_batches));
  if (c.inner_steps && *c.inner_steps < 0)
    throw ValueError(fmt::format("{}: inner_steps must be >= 0, got {}", name(), *c.inner_steps));
  if (c.linear_steps && *c.linear_steps < 0)
    throw ValueError(fmt::format("{}: linear_steps must be >= 0, got {}", name(), *c.linear_steps));
  if (c.inner_steps) options_.inner_steps = *c.inner_steps;
  if (c.linear_steps) options_.linear_steps = *c.linear_steps;
}

std::string AID::name() const { return "AID-" + options_.solver.name(); }

void AID::differentiate(const Problem& problem, const TensorList& lambda, const TensorList& w, Hypergradient& h) {
  Diagnostics& d = h.diagnostics;
  TapeScope scope;
  const detail::OuterGradients e = detail::outer_gradients(problem, w, lambda);
  h.objective = e.value;

  ImplicitOptions io;
  io.solver = options_.solver;
  io.symmetry = problem.symmetry();
  io.linear.tolerance = options_.linear_tolerance;
  io.linear.max_iterations = options_.linear_steps;
  io.linear.ridge = options_.ridge;
  io.linear.probe_symmetry = options_.probe_symmetry;
  if (warms_linear(options_.warm_start) && !previous_v_.empty()) io.start = previous_v_;
  const FixedPointMap phi = [&problem](const TensorList& ws, const TensorList& ls) { return problem.phi(ws, ls); };
  ImplicitResult r;
  try {
    r = implicit_vjp(phi, w, lambda, e.wrt_w, e.wrt_lambda, io);
  } catch (const ValueError& err) {
    throw ValueError(fmt::format("{}: {}", name(), err.what()));
  }
  if (r.report.status == linsolve::Status::diverged)
    throw ConvergenceError(fmt::format("{}: the linear solve diverged: {}", name(), r.report.reason));
  if (!std::isfinite(r.report.residual))
    throw ConvergenceError(fmt::format("{}: the linear-system solution is not finite", name()));
  d.warnings.insert(d.warnings.end(), r.report.warnings.begin(), r.report.warnings.end());
  detail::check_linear_solve(r.report, d);
  d.linear = std::move(r.report);
  h.grad = std::move(r.grad);
  previous_v_ = std::move(r.v);
}

Hypergradient AID::hypergradient(const Problem& problem, const TensorList& lambda) {
  const detail::CallMeter meter;
  Hypergradient h;
  Diagnostics& d = h.diagnostics;
  d.method = name();
  const bool warm = warms_inner(options_.warm_start) && !previous_w_.empty();
  InnerOptions inner_options;
  inner_options.max_iterations = options_.inner_steps;
  inner_options.tolerance = options_.inner_tolerance;
  InnerResult inner = solve_inner(problem, lambda, warm ? previous_w_ : problem.initial_state(), inner_options);
  d.inner_steps = inner.steps;
  d.inner_step_norm = inner.last_step_norm;
  detail::check_contraction(inner.step_growth, inner.steps, inner.growth_window, d);
  differentiate(problem, lambda, inner.state, h);
  previous_w_ = std::move(inner.state);
  meter.finish(d, strict_);
  return h;
}

Hypergradient AID::hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) {
  const detail::CallMeter meter;
  list::require_like(w, problem.initial_state(), name() + ": the inner state w");
  Hypergradient h;
  h.diagnostics.method = name();
  const TensorList state = list::detach(w);
  differentiate(problem, lambda, state, h);
  previous_w_ = state;
  meter.finish(h.diagnostics, strict_);
  return h;
}

}  // namespace hyperad::bilevel
