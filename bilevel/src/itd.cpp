#include "hyperad/bilevel/itd.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"

namespace hyperad::bilevel {

ITD::ITD(ITDOptions options) : options_(options) {
  if (options_.inner_steps < 1)
    throw ValueError(fmt::format("ITD: inner_steps must be >= 1, got {}", options_.inner_steps));
  if (options_.reverse_steps < 0 || options_.reverse_steps > options_.inner_steps)
    throw ValueError(fmt::format("ITD: reverse_steps must be in [0, inner_steps = {}], got {}", options_.inner_steps,
                                 options_.reverse_steps));
}

void ITD::set_warm_state(const WarmState& s) {
  if (!s.linear.empty())
    throw ValueError(fmt::format("{}: a warm state with a linear-system part ({} tensors); ITD has none", name(),
                                 s.linear.size()));
  previous_ = s.inner;
}

void ITD::set_iterations(const IterationCounts& c) {
  if (c.linear_steps >= 0 || c.cross_batches >= 0)
    throw ValueError(fmt::format("{}: ITD has no linear system or cross-term batches (asked for K = {}, J = {})", name(),
                                 c.linear_steps, c.cross_batches));
  if (c.inner_steps < 0) return;
  if (c.inner_steps < 1) throw ValueError(fmt::format("ITD: inner_steps must be >= 1, got {}", c.inner_steps));
  options_.inner_steps = c.inner_steps;
  options_.reverse_steps = std::min(options_.reverse_steps, c.inner_steps);
}

std::string ITD::name() const {
  if (options_.reverse_steps == 0 || options_.reverse_steps == options_.inner_steps) return "ITD";
  return fmt::format("truncated ITD (T={})", options_.reverse_steps);
}

Hypergradient ITD::hypergradient(const Problem& problem, const Tensors& lambda) {
  const auto t0 = std::chrono::steady_clock::now();
  Tape& tape = Tape::current();
  const std::size_t base = tape.memory_bytes();
  tape.reset_peak_memory();
  const int t = options_.inner_steps;
  const int reversed = options_.reverse_steps == 0 ? t : options_.reverse_steps;

  // The first t − T steps are not differentiated through: plain inner iterations.
  const Tensors& start = options_.warm_start && !previous_.empty() ? previous_ : problem.initial_state();
  InnerOptions plain;
  plain.max_steps = t - reversed;
  InnerResult head = solve_inner(problem, lambda, start, plain);

  Hypergradient h;
  CheckpointStats checkpoint_stats;
  {
    TapeScope scope;
    Tensors lam = make_leaves(lambda);
    Tensors w = head.state;
    Tensors prev;
    if (options_.checkpoint) {
      const StepFn step = [&problem](const TensorList& x, const TensorList& l) { return problem.phi(x, l); };
      w = checkpointed_loop(step, w, lam, reversed, *options_.checkpoint, &checkpoint_stats);
      // The loop keeps w_{t−1} to itself: report the next step ‖Φ(w_t) − w_t‖ instead.
      TapeScope step_scope;
      NoGradGuard off;
      prev = detach_all(problem.phi(detach_all(w), detach_all(lam)));
    } else {
      for (int i = 0; i < reversed; ++i) {
        prev = w;
        w = problem.phi(w, lam);
      }
    }
    Tensor e = problem.outer(w, lam);
    GradOptions o;
    o.allow_unused = true;  // an outer variable may be absent from both Φ and E
    h.grad = grad(e, lam, o);
    h.objective = e.item();
    h.diagnostics.inner_step_norm = prev.empty() ? head.last_step_norm : distance(w, prev);
    previous_ = detach_all(w);
  }
  h.diagnostics.method = name();
  h.diagnostics.inner_steps = t;
  h.diagnostics.reverse_steps = reversed;
  h.diagnostics.peak_tape_bytes = tape.peak_memory_bytes() > base ? tape.peak_memory_bytes() - base : 0;
  if (checkpoint_stats) {
    h.diagnostics.recomputed_steps = checkpoint_stats->recomputed_steps;
    h.diagnostics.peak_stored_bytes = checkpoint_stats->peak_stored_bytes;
  }
  h.diagnostics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return h;
}

}  // namespace hyperad::bilevel
