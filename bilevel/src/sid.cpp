#include "hyperad/bilevel/sid.hpp"

#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "call_meter.hpp"
#include "trust_checks.hpp"
#include "linearization.hpp"

namespace hyperad::bilevel {

using detail::PhiPullback;

namespace {

void validate(const SIDOptions& o, const StochasticProblem& p) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw ValueError("SID: " + what);
  };
  require(o.inner_steps >= 0, fmt::format("inner_steps (t) must be >= 0, got {}", o.inner_steps));
  require(o.linear_steps >= 0, fmt::format("linear_steps (K) must be >= 0, got {}", o.linear_steps));
  require(o.cross_batches >= 1, fmt::format("cross_batches (J) must be >= 1, got {}", o.cross_batches));
  auto batch = [&](std::int64_t b, std::int64_t n, const char* what, const char* data) {
    require(b >= 0 && b <= n, fmt::format("{} must be in [0, {}] (0: the full {} data), got {}", what, n, data, b));
  };
  batch(o.inner_batch, p.n_inner(), "inner_batch", "inner");
  batch(o.linear_batch, p.n_inner(), "linear_batch", "inner");
  batch(o.cross_batch, p.n_inner(), "cross_batch", "inner");
  batch(o.outer_batch, p.n_outer(), "outer_batch", "outer");
  validate_damping(o.inner_step, "SID inner step");
  validate_damping(o.linear_step, "SID linear step");
  require(o.inner_momentum >= 0.0 && o.inner_momentum < 1.0,
          fmt::format("inner_momentum must be in [0, 1), got {}", o.inner_momentum));
  require(o.divergence_factor > 1.0, fmt::format("divergence_factor must be > 1, got {}", o.divergence_factor));
}

void require_like(const TensorList& xs, const TensorList& like, const char* what) {
  list::require_like(xs, like, fmt::format("SID: {}", what));
}

// The sampler of the outer data gets a stream of its own.
std::uint64_t outer_seed(std::uint64_t seed) { return seed ^ 0x9e3779b97f4a7c15ULL; }

}  // namespace

SID::SID(StochasticProblem problem, SIDOptions options)
    : problem_(std::move(problem)),
      options_(options),
      inner_sampler_(problem_.n_inner(), options.sampling, options.seed),
      outer_sampler_(problem_.n_outer(), options.sampling, outer_seed(options.seed)) {
  validate(options_, problem_);
}

void SID::set_options(const SIDOptions& options) {
  if (options.sampling != options_.sampling)
    throw ValueError("SID::set_options: the sampling mode is fixed at construction");
  validate(options, problem_);
  options_ = options;
}

void SID::set_iterations(const IterationCounts& c) {
  SIDOptions o = options_;
  if (c.inner_steps) o.inner_steps = *c.inner_steps;
  if (c.linear_steps) o.linear_steps = *c.linear_steps;
  if (c.cross_batches) o.cross_batches = *c.cross_batches;
  set_options(o);
}

void SID::set_warm_state(const WarmState& s) {
  if (!s.inner.empty()) require_like(s.inner, problem_.initial_state(), "the warm w");
  if (!s.linear.empty()) require_like(s.linear, problem_.initial_state(), "the warm v");
  previous_w_ = list::detach(s.inner);
  previous_v_ = list::detach(s.linear);
}


std::vector<std::uint64_t> SID::export_random_state() const {
  std::vector<std::uint64_t> out;
  append_sampler_words(out, inner_sampler_.state());
  append_sampler_words(out, outer_sampler_.state());
  return out;
}

void SID::import_random_state(const std::vector<std::uint64_t>& words) {
  std::size_t at = 0;
  SIDRandomState s;
  s.inner = read_sampler_words(words, at, "SID");
  s.outer = read_sampler_words(words, at, "SID");
  if (at != words.size())
    throw ValueError(fmt::format("SID: the random state has {} words, {} expected", words.size(), at));
  set_random_state(s);
}

void SID::set_random_state(const SIDRandomState& s) {
  // Validate both before changing either.
  BatchSampler inner = inner_sampler_, outer = outer_sampler_;
  inner.set_state(s.inner);
  outer.set_state(s.outer);
  inner_sampler_ = std::move(inner);
  outer_sampler_ = std::move(outer);
}

Hypergradient SID::hypergradient(const Problem& problem, const TensorList& lambda) {
  require_like(problem.initial_state(), problem_.initial_state(), "the problem's initial state");
  return hypergradient(lambda);
}

Hypergradient SID::hypergradient(const TensorList& lambda) {
  const detail::CallMeter meter;
  const SIDOptions& o = options_;
  Hypergradient h;
  Diagnostics& d = h.diagnostics;
  d.method = name();

  // 1. Inner iterations.
  const bool warm_w = warms_inner(o.warm_start) && !previous_w_.empty();
  StochasticInnerOptions io;
  io.max_iterations = o.inner_steps;
  io.batch_size = o.inner_batch;
  io.step_size = o.inner_step;
  io.momentum = o.inner_momentum;
  io.divergence_factor = o.divergence_factor;
  StochasticInnerResult inner = solve_inner_stochastic(problem_, list::detach(lambda),
                                                       warm_w ? previous_w_ : problem_.initial_state(), io, inner_sampler_);
  d.inner_steps = inner.steps;
  d.inner_step_norm = inner.last_step_norm;
  d.sample_counts.inner = inner.samples;
  differentiate(lambda, inner.state, h);
  previous_w_ = std::move(inner.state);
  d.samples = d.sample_counts.total();
  detail::check_finite(h);
  meter.finish(d, strict_);
  return h;
}

Hypergradient SID::hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) {
  const detail::CallMeter meter;
  require_like(problem.initial_state(), problem_.initial_state(), "the problem's initial state");
  require_like(w, problem_.initial_state(), "the inner state w");
  Hypergradient h;
  h.diagnostics.method = name();
  const TensorList state = list::detach(w);
  differentiate(lambda, state, h);
  previous_w_ = state;
  h.diagnostics.samples = h.diagnostics.sample_counts.total();
  detail::check_finite(h);
  meter.finish(h.diagnostics, strict_);
  return h;
}

void SID::differentiate(const TensorList& lambda, const TensorList& w, Hypergradient& h) {
  const SIDOptions& o = options_;
  Diagnostics& d = h.diagnostics;
  SampleCounts& count = d.sample_counts;
  const TensorList lam = list::detach(lambda);
  const auto size = [](const Batch& b) { return static_cast<std::int64_t>(b.size()); };
  linsolve::Report& report = d.linear;
  report.solver = "damped stochastic FP";
  report.status = linsolve::Status::iteration_cap;
  {
    TapeScope scope;
    const Batch one{0};  // the unused batch of `at` when only Φ or only E is evaluated
    const bool full_outer = o.outer_batch == 0;
    const Batch zeta0 = full_outer ? full_batch(problem_.n_outer()) : outer_sampler_.next(o.outer_batch);
    const detail::OuterGradients e = detail::outer_gradients(problem_.at(one, zeta0), w, lam);
    count.outer = size(zeta0);
    h.objective = e.value;

    // Φ on the full inner data, linearized once when a part uses the full batch (kept on
    // this scope's tape; the per-iteration scopes below rewind to after it).
    std::unique_ptr<PhiPullback> full;
    if (o.linear_batch == 0 || o.cross_batch == 0)
      full = std::make_unique<PhiPullback>(problem_.at(full_batch(problem_.n_inner()), one), w, lam);

    // 2. Damped stochastic fixed-point iteration on the linear system.
    const bool warm_v = warms_linear(o.warm_start) && !previous_v_.empty();
    TensorList v = warm_v ? previous_v_ : list::zeros_like(w);
    double scale = list::norm(v);
    std::string diverged;
    for (int k = 0; k < o.linear_steps; ++k) {
      TensorList jtv, g;
      {
        TapeScope step_scope;
        if (o.linear_batch == 0) {
          jtv = full->wt(v);
          count.linear += problem_.n_inner();
        } else {
          const Batch xi = inner_sampler_.next(o.linear_batch);
          jtv = PhiPullback(problem_.at(xi, one), w, lam).wt(v);
          count.linear += size(xi);
        }
        if (full_outer) {
          g = e.wrt_w;
        } else {
          const Batch zeta = outer_sampler_.next(o.outer_batch);
          g = detail::outer_gradients(problem_.at(one, zeta), w, lam).wrt_w;
          count.linear += size(zeta);
        }
      }
      if (k == 0) scale = std::max(scale, list::norm(g));
      const double eta = o.linear_step.at(k);
      TensorList next;
      {
        NoGradGuard off;
        for (std::size_t i = 0; i < v.size(); ++i)
          next.push_back(eta == 1.0 ? (jtv[i] + g[i]).detach() : ((1.0 - eta) * v[i] + eta * (jtv[i] + g[i])).detach());
      }
      v = std::move(next);
      report.iterations = k + 1;
      report.products = k + 1;
      const double nv = list::norm(v);
      if (!std::isfinite(nv) || nv > o.divergence_factor * std::max(scale, 1e-300)) {
        diverged = fmt::format("the linear system diverged at iteration {}: ‖v‖ = {:.3g} (start/‖∇_wE‖ scale {:.3g}, "
                               "limit factor {:.3g}); is ∂_wΦ a contraction, or is the step η too large?",
                               k + 1, nv, scale, o.divergence_factor);
        break;
      }
    }

    // 3. Cross term, averaged over J batches.
    TensorList cross = list::zeros_like(lam);
    if (!diverged.empty()) {
      if (!o.fallback_on_divergence) throw ConvergenceError("SID: " + diverged);
      report.status = linsolve::Status::diverged;
      report.reason = "diverged: " + diverged;
      d.warnings.push_back("SID: " + diverged + "; fell back to K = 0 for this step (v = 0, h = ∇_λE)");
      v = list::zeros_like(w);
      previous_v_.clear();
    } else if (o.cross_batch == 0) {
      auto [jv, c] = full->both(v);
      cross = std::move(c);
      count.cross = problem_.n_inner();
      if (full_outer) {
        NoGradGuard off;
        TensorList r;
        for (std::size_t i = 0; i < v.size(); ++i) r.push_back(v[i] - jv[i] - e.wrt_w[i]);
        report.residual = list::norm(r);
        report.rhs_norm = list::norm(e.wrt_w);
      }
    } else {
      for (int j = 0; j < o.cross_batches; ++j) {
        TapeScope step_scope;
        const Batch xi = inner_sampler_.next(o.cross_batch);
        const TensorList c = PhiPullback(problem_.at(xi, one), w, lam).both(v).second;
        list::axpy(1.0 / o.cross_batches, c, cross);
        count.cross += size(xi);
      }
    }
    NoGradGuard off;
    for (std::size_t k = 0; k < lam.size(); ++k) h.grad.push_back((e.wrt_lambda[k] + cross[k]).detach());
    if (diverged.empty()) {
      previous_v_ = v;
      report.reason = fmt::format("ran K = {} iterations", report.iterations);
    }
  }
}

}  // namespace hyperad::bilevel
