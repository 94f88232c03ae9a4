#include "hyperad/bilevel/itd.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "call_meter.hpp"
#include "trust_checks.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"

namespace hyperad::bilevel {

ITD::ITD(ITDOptions options) : options_(std::move(options)) {
  if (options_.inner_steps < 1)
    throw ValueError(fmt::format("ITD: inner_steps must be >= 1, got {}", options_.inner_steps));
  if (options_.reverse_steps && (*options_.reverse_steps < 1 || *options_.reverse_steps > options_.inner_steps))
    throw ValueError(fmt::format("ITD: reverse_steps must be in [1, inner_steps = {}], got {}", options_.inner_steps,
                                 *options_.reverse_steps));
  set_warm_start(options_.warm_start);
}

void ITD::set_warm_start(WarmStart w) {
  if (warms_linear(w))
    throw ValueError(fmt::format("{}: warm start '{}': ITD has no linear system to warm-start (use 'inner')", name(),
                                 warm_start_name(w)));
  options_.warm_start = w;
}

void ITD::set_warm_state(const WarmState& s) {
  if (!s.linear.empty())
    throw ValueError(fmt::format("{}: a warm state with a linear-system part ({} tensors); ITD has none", name(),
                                 s.linear.size()));
  previous_ = s.inner;
}

void ITD::set_iterations(const IterationCounts& c) {
  if (c.linear_steps || c.cross_batches)
    throw ValueError(fmt::format("{}: ITD has no linear system or cross-term batches (asked for K = {}, J = {})", name(),
                                 c.linear_steps.value_or(-1), c.cross_batches.value_or(-1)));
  if (!c.inner_steps) return;
  if (*c.inner_steps < 1) throw ValueError(fmt::format("ITD: inner_steps must be >= 1, got {}", *c.inner_steps));
  options_.inner_steps = *c.inner_steps;
  if (options_.reverse_steps) options_.reverse_steps = std::min(*options_.reverse_steps, *c.inner_steps);
}

std::string ITD::name() const {
  if (!options_.reverse_steps || *options_.reverse_steps == options_.inner_steps) return "ITD";
  return fmt::format("truncated ITD (T={})", *options_.reverse_steps);
}

void ITD::differentiate(const Problem& problem, const TensorList& lambda, const TensorList& start,
                        double head_step_norm, Hypergradient& h) {
  const int steps = reversed();
  CheckpointStats checkpoint_stats;
  detail::StepTrace trace;  // the reversed steps' norms (not with checkpointing: the loop keeps them)
  {
    TapeScope scope;
    EnableGradGuard on;  // the unrolled steps are the derivative: record them whatever the caller's mode
    TensorList lam = list::make_leaves(lambda);
    TensorList w = start;
    TensorList prev;
    if (options_.checkpoint) {
      const StepFn step = [&problem](const TensorList& x, const TensorList& l) { return problem.phi(x, l); };
      w = checkpointed_loop(step, w, lam, steps, *options_.checkpoint, &checkpoint_stats);
      // The loop keeps w_{t−1} to itself: report the next step ‖Φ(w_t) − w_t‖ instead.
      TapeScope step_scope;
      NoGradGuard off;
      prev = list::detach(problem.phi(list::detach(w), list::detach(lam)));
    } else {
      for (int i = 0; i < steps; ++i) {
        prev = w;
        w = problem.phi(w, lam);
        trace.add(list::distance(w, prev));
      }
    }
    Tensor e = problem.outer(w, lam);
    GradOptions o;
    o.allow_unused = true;  // an outer variable may be absent from both Φ and E
    h.grad = grad(e, lam, o);
    h.objective = e.item();
    h.diagnostics.inner_step_norm = prev.empty() ? head_step_norm : list::distance(w, prev);
    previous_ = list::detach(w);
    // The unrolled iteration's own contraction check (the head's is the caller's); ITD has no
    // tolerance, so a non-contracting map shows only here.
    detail::check_contraction(trace.growth(list::norm(previous_)), trace.size(), trace.window(), h.diagnostics);
  }
  detail::check_finite(h);
  h.diagnostics.method = name();
  h.diagnostics.reverse_steps = steps;
  if (checkpoint_stats) {
    h.diagnostics.recomputed_steps = checkpoint_stats->recomputed_steps;
    h.diagnostics.peak_stored_bytes = checkpoint_stats->peak_stored_bytes;
  }
}

Hypergradient ITD::hypergradient(const Problem& problem, const TensorList& lambda) {
  const detail::CallMeter meter;
  // The first t − T steps are not differentiated through: plain inner iterations.
  const bool warm = warms_inner(options_.warm_start) && !previous_.empty();
  InnerOptions plain;
  plain.max_iterations = options_.inner_steps - reversed();
  const TensorList& start = warm ? previous_ : problem.initial_state();
  const InnerResult head =
      plain.max_iterations > 0 ? solve_inner(problem, lambda, start, plain) : InnerResult{list::detach(start)};
  Hypergradient h;
  differentiate(problem, lambda, head.state, head.last_step_norm, h);
  if (h.diagnostics.trusted())  // the reversed steps said nothing: the head may
    detail::check_contraction(head.step_growth, head.steps, head.growth_window, h.diagnostics);
  h.diagnostics.inner_steps = options_.inner_steps;
  meter.finish(h.diagnostics, strict_);
  return h;
}

Hypergradient ITD::hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) {
  const detail::CallMeter meter;
  list::require_like(w, problem.initial_state(), name() + ": the inner state w");
  Hypergradient h;
  differentiate(problem, lambda, list::detach(w), 0.0, h);
  h.diagnostics.inner_steps = reversed();
  meter.finish(h.diagnostics, strict_);
  return h;
}

}  // namespace hyperad::bilevel
