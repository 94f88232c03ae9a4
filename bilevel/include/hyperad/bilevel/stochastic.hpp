#pragma once
/// \file stochastic.hpp
/// Stochastic bilevel problems: the inner map Φ(w, λ; ξ) and the outer objective
/// E(w, λ; ζ) evaluated on minibatches ξ of the inner data (n_inner examples) and ζ of the
/// outer data (n_outer examples), both given as index lists (sampling.hpp). The callbacks
/// receive the batch and select the rows themselves with `rows(X, batch)`, so the data sets
/// stay in memory once; nothing here copies them.
///
/// The full batches give back the deterministic problem (`full_batch()`), on which every
/// deterministic method (ITD, AID) and the reference hypergradients run unchanged.
///
/// Sample accounting (Diagnostics::samples): one *sample-gradient* is the gradient, or one
/// Jacobian–vector product, of one example's term. Evaluating Φ on a batch ξ, or pulling a
/// vector back through it, consumes |ξ|; a gradient of E on ζ consumes |ζ|. A deterministic
/// method on the full batch therefore consumes n_inner per pass over the inner data (each
/// inner step, each linear-solver iteration, the cross term ∂_λΦᵀv) and n_outer per
/// gradient of E — see `full_batch_samples`.
#include <cstdint>
#include <functional>
#include <memory>

#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/sampling.hpp"
#include "hyperad/bilevel/schedule.hpp"

namespace hyperad::bilevel {

/// Φ(w, λ; ξ) → next w (same count and shapes as w).
using StochasticInnerMap = std::function<TensorList(const TensorList& w, const TensorList& lambda, const Batch& xi)>;
/// A scalar function of (w, λ) on a batch: an inner loss L(w, λ; ξ) or E(w, λ; ζ). It
/// should be a mean over the batch, so that it is an unbiased estimate of the full one.
using StochasticScalarFn = std::function<Tensor(const TensorList& w, const TensorList& lambda, const Batch& batch)>;

class StochasticProblem {
 public:
  /// Φ(w, λ; ξ) given directly, over n_inner inner and n_outer outer examples.
  static StochasticProblem from_map(StochasticInnerMap phi, std::int64_t n_inner, StochasticScalarFn outer,
                                    std::int64_t n_outer, TensorList w0,
                                    linsolve::Symmetry symmetry = linsolve::Symmetry::unknown);
  /// Φ(w, λ; ξ) = w − η ∇_w L(w, λ; ξ) (SGD steps in the inner problem).
  static StochasticProblem gradient_descent(StochasticScalarFn inner_loss, double step_size, std::int64_t n_inner,
                                            StochasticScalarFn outer, std::int64_t n_outer, TensorList w0);

  /// The deterministic problem Φ(·, ·; ξ), E(·, ·; ζ) for fixed batches (a Problem whose
  /// closures hold the two index lists; no data is copied). Throws ValueError for an
  /// empty batch.
  Problem at(Batch xi, Batch zeta) const;
  /// The problem on the full batches: what deterministic methods and the outer loop's
  /// validation see.
  Problem full_batch() const { return at(bilevel::full_batch(n_inner_), bilevel::full_batch(n_outer_)); }

  /// Φ(w, λ; ξ) and E(w, λ; ζ).
  TensorList phi(const TensorList& w, const TensorList& lambda, const Batch& xi) const;
  Tensor outer(const TensorList& w, const TensorList& lambda, const Batch& zeta) const;

  std::int64_t n_inner() const { return n_inner_; }
  std::int64_t n_outer() const { return n_outer_; }
  const TensorList& initial_state() const { return w0_; }
  MapKind kind() const { return kind_; }
  double step_size() const { return step_; }

 private:
  std::shared_ptr<const StochasticInnerMap> map_;
  std::shared_ptr<const StochasticScalarFn> loss_, outer_;
  std::int64_t n_inner_ = 0, n_outer_ = 0;
  TensorList w0_;
  MapKind kind_ = MapKind::general;
  linsolve::Symmetry symmetry_ = linsolve::Symmetry::unknown;
  double step_ = 0.0;
};

/// Throws ValueError naming `who` unless the damping schedule η_s of a stochastic
/// iteration (s = 0, 1, … counts the steps of one solve) has η₀ ∈ (0, 1] (and γ > 0 for the
/// decreasing rules): each step is then a convex combination of the iterate and Φ's image,
/// a contraction whenever Φ is.
void validate_damping(const StepSizeSchedule& step, const char* who);

/// Options of the stochastic inner solver.
struct StochasticInnerOptions {
  int max_iterations = 100;     ///< t
  std::int64_t batch_size = 0;  ///< |ξ_s|; 0: the full inner data (no sampling)
  /// η_s (validate_damping): constant, or decreasing as η₀γ/(γ + s) or η₀√(γ/(γ + s)).
  StepSizeSchedule step_size = StepSizeSchedule::constant(1.0);
  /// Heavy-ball momentum μ ∈ [0, 1): w ← w + η_s (Φ(w; ξ_s) − w) + μ (w − w_prev).
  double momentum = 0.0;
  /// A step norm that is non-finite or exceeds this factor times the first one throws.
  double divergence_factor = 1e6;
};

struct StochasticInnerResult {
  TensorList state;              ///< w_t (detached)
  int steps = 0;
  double last_step_norm = 0;  ///< ‖w_t − w_{t−1}‖
  std::int64_t samples = 0;   ///< Σ_s |ξ_s|
};

/// Stochastic fixed-point iterations w_{s+1} = (1 − η_s) w_s + η_s Φ(w_s, λ; ξ_s) (plus
/// momentum), from `start`, with ξ_s drawn from `sampler` (over the inner data). For a
/// gradient-descent problem this is SGD with step η_s·η. Nothing is recorded: each step
/// runs in a tape scope of its own. Throws ConvergenceError when the iteration diverges.
StochasticInnerResult solve_inner_stochastic(const StochasticProblem& problem, const TensorList& lambda,
                                             const TensorList& start, const StochasticInnerOptions& options,
                                             BatchSampler& sampler);

/// The sample-gradients a deterministic method (AID, ITD) consumed on the full-batch
/// problem, from its diagnostics: inner n_inner·(inner_steps + recomputed_steps); linear
/// n_inner·iterations·iteration_cost of the linear report (normal-equation CG: 3
/// pullbacks an iteration, BiCGStab 2) for AID,
/// n_inner·reverse_steps for ITD (each reversed step pulls back through w and λ at once,
/// so ITD has no separate cross term); cross n_inner for AID (the final ∂_λΦᵀv); outer
/// n_outer (one gradient of E). AID's optional symmetry probe is not counted. Throws
/// ValueError for a method it does not know.
SampleCounts full_batch_samples(const Diagnostics& d, std::int64_t n_inner, std::int64_t n_outer);

/// Runs a deterministic method and fills its Diagnostics::samples (and sample_counts) by
/// `full_batch_samples` — for comparing it with SID at equal sample budgets. Forwards every
/// other call (reset, warm start, schedules, random state) to the wrapped method.
class FullBatchCounted final : public HypergradientMethod {
 public:
  FullBatchCounted(std::shared_ptr<HypergradientMethod> method, std::int64_t n_inner, std::int64_t n_outer);
  std::string name() const override { return method_->name(); }
  Hypergradient hypergradient(const Problem& problem, const TensorList& lambda) override;
  Hypergradient hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) override;
  void reset() override { method_->reset(); }
  bool has_linear_system() const override { return method_->has_linear_system(); }
  void set_warm_start(WarmStart w) override { method_->set_warm_start(w); }
  WarmState warm_state() const override { return method_->warm_state(); }
  void set_warm_state(const WarmState& s) override { method_->set_warm_state(s); }
  void set_iterations(const IterationCounts& c) override { method_->set_iterations(c); }
  std::vector<std::uint64_t> export_random_state() const override { return method_->export_random_state(); }
  void import_random_state(const std::vector<std::uint64_t>& s) override { method_->import_random_state(s); }
  void set_strict(bool strict) override {
    HypergradientMethod::set_strict(strict);
    method_->set_strict(strict);
  }
  HypergradientMethod& method() { return *method_; }

 private:
  std::shared_ptr<HypergradientMethod> method_;
  std::int64_t n_inner_, n_outer_;
};

}  // namespace hyperad::bilevel
