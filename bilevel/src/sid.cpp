#include "hyperad/bilevel/sid.hpp"

#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "linearization.hpp"

namespace hyperad::bilevel {

namespace ls = hyperad::linsolve;
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
  o.inner_step.validate("SID inner step");
  o.linear_step.validate("SID linear step");
  require(o.inner_momentum >= 0.0 && o.inner_momentum < 1.0,
          fmt::format("inner_momentum must be in [0, 1), got {}", o.inner_momentum));
  require(o.divergence_factor > 1.0, fmt::format("divergence_factor must be > 1, got {}", o.divergence_factor));
}

void require_like(const Tensors& xs, const Tensors& like, const char* what) {
  if (xs.size() != like.size())
    throw ShapeError(fmt::format("SID: {} has {} tensors, the inner state {}", what, xs.size(), like.size()));
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined() || xs[i].shape() != like[i].shape())
      throw ShapeError(fmt::format("SID: tensor {} of {} has shape {}, the inner state's is {}", i, what,
                                   xs[i].defined() ? xs[i].shape().str() : "undefined", like[i].shape().str()));
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

void SID::set_warm_start(bool on) {
  options_.warm_inner = on;
  options_.warm_linear = on;
}

void SID::set_iterations(const IterationCounts& c) {
  SIDOptions o = options_;
  if (c.inner_steps >= 0) o.inner_steps = c.inner_steps;
  if (c.linear_steps >= 0) o.linear_steps = c.linear_steps;
  if (c.cross_batches >= 0) o.cross_batches = c.cross_batches;
  set_options(o);
}

void SID::set_warm_state(const WarmState& s) {
  if (!s.inner.empty()) require_like(s.inner, problem_.initial_state(), "the warm w");
  if (!s.linear.empty()) require_like(s.linear, problem_.initial_state(), "the warm v");
  previous_w_ = detach_all(s.inner);
  previous_v_ = detach_all(s.linear);
}

namespace {
void put(std::vector<std::uint64_t>& out, const SamplerState& s) {
  out.insert(out.end(), s.rng.begin(), s.rng.end());
  for (std::int64_t x : {s.position, s.epoch, s.drawn, static_cast<std::int64_t>(s.permutation.size())})
    out.push_back(static_cast<std::uint64_t>(x));
  for (std::int64_t i : s.permutation) out.push_back(static_cast<std::uint64_t>(i));
}
SamplerState take(const std::vector<std::uint64_t>& in, std::size_t& at) {
  auto word = [&]() {
    if (at >= in.size()) throw ValueError(fmt::format("SID: the random state ends early ({} words)", in.size()));
    return in[at++];
  };
  SamplerState s;
  for (auto& r : s.rng) r = word();
  s.position = static_cast<std::int64_t>(word());
  s.epoch = static_cast<std::int64_t>(word());
  s.drawn = static_cast<std::int64_t>(word());
  const std::uint64_t n = word();
  if (n > in.size() - at)
    throw ValueError(fmt::format("SID: the random state holds a permutation of {} entries but only {} words remain", n,
                                 in.size() - at));
  for (std::uint64_t k = 0; k < n; ++k) s.permutation.push_back(static_cast<std::int64_t>(word()));
  return s;
}
}  // namespace

std::vector<std::uint64_t> SID::export_random_state() const {
  std::vector<std::uint64_t> out;
  put(out, inner_sampler_.state());
  put(out, outer_sampler_.state());
  return out;
}

void SID::import_random_state(const std::vector<std::uint64_t>& words) {
  std::size_t at = 0;
  SIDRandomState s;
  s.inner = take(words, at);
  s.outer = take(words, at);
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

Hypergradient SID::hypergradient(const Problem& problem, const Tensors& lambda) {
  require_like(problem.initial_state(), problem_.initial_state(), "the problem's initial state");
  return hypergradient(lambda);
}

Hypergradient SID::hypergradient(const Tensors& lambda) {
  const auto t0 = std::chrono::steady_clock::now();
  const SIDOptions& o = options_;
  Tape& tape = Tape::current();
  const std::size_t base = tape.memory_bytes();
  tape.reset_peak_memory();
  Hypergradient h;
  Diagnostics& d = h.diagnostics;
  SampleCounts& count = d.sample_counts;
  d.method = name();
  const Tensors lam = detach_all(lambda);
  const auto size = [](const Batch& b) { return static_cast<std::int64_t>(b.size()); };

  // 1. Inner iterations.
  const bool warm_w = o.warm_inner && !previous_w_.empty();
  StochasticInnerResult inner =
      solve_inner_stochastic(problem_, lam, warm_w ? previous_w_ : problem_.initial_state(),
                             {.steps = o.inner_steps,
                              .batch_size = o.inner_batch,
                              .step = o.inner_step,
                              .momentum = o.inner_momentum,
                              .divergence_factor = o.divergence_factor},
                             inner_sampler_);
  d.inner_steps = inner.steps;
  d.inner_step_norm = inner.last_step_norm;
  count.inner = inner.samples;
  const Tensors& w = inner.state;
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
    const bool warm_v = o.warm_linear && !previous_v_.empty();
    Tensors v = warm_v ? previous_v_ : ls::zeros_like(w);
    double scale = ls::norm(v);
    std::string diverged;
    for (int k = 0; k < o.linear_steps; ++k) {
      Tensors jtv, g;
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
      if (k == 0) scale = std::max(scale, ls::norm(g));
      const double eta = o.linear_step.at(k);
      Tensors next;
      {
        NoGradGuard off;
        for (std::size_t i = 0; i < v.size(); ++i)
          next.push_back(eta == 1.0 ? (jtv[i] + g[i]).detach() : ((1.0 - eta) * v[i] + eta * (jtv[i] + g[i])).detach());
      }
      v = std::move(next);
      d.linear_iterations = k + 1;
      const double nv = ls::norm(v);
      if (!std::isfinite(nv) || nv > o.divergence_factor * std::max(scale, 1e-300)) {
        diverged = fmt::format("the linear system diverged at iteration {}: ‖v‖ = {:.3g} (start/‖∇_wE‖ scale {:.3g}, "
                               "limit factor {:.3g}); is ∂_wΦ a contraction, or is the step η too large?",
                               k + 1, nv, scale, o.divergence_factor);
        break;
      }
    }

    // 3. Cross term, averaged over J batches.
    Tensors cross = ls::zeros_like(lam);
    if (!diverged.empty()) {
      if (!o.fallback_on_divergence) throw ConvergenceError("SID: " + diverged);
      d.warnings.push_back("SID: " + diverged + "; fell back to K = 0 for this step (v = 0, h = ∇_λE)");
      v = ls::zeros_like(w);
      previous_v_.clear();
    } else if (o.cross_batch == 0) {
      auto [jv, c] = full->both(v);
      cross = std::move(c);
      count.cross = problem_.n_inner();
      if (full_outer) {
        NoGradGuard off;
        Tensors r;
        for (std::size_t i = 0; i < v.size(); ++i) r.push_back(v[i] - jv[i] - e.wrt_w[i]);
        d.linear_residual = ls::norm(r);
      }
    } else {
      for (int j = 0; j < o.cross_batches; ++j) {
        TapeScope step_scope;
        const Batch xi = inner_sampler_.next(o.cross_batch);
        const Tensors c = PhiPullback(problem_.at(xi, one), w, lam).both(v).second;
        ls::axpy(1.0 / o.cross_batches, c, cross);
        count.cross += size(xi);
      }
    }
    NoGradGuard off;
    for (std::size_t k = 0; k < lam.size(); ++k) h.grad.push_back((e.wrt_lambda[k] + cross[k]).detach());
    if (diverged.empty()) previous_v_ = v;
  }
  previous_w_ = w;
  d.samples = count.total();
  d.peak_tape_bytes = tape.peak_memory_bytes() > base ? tape.peak_memory_bytes() - base : 0;
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return h;
}

}  // namespace hyperad::bilevel
