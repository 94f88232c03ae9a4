#pragma once
/// \file sid.hpp
/// Stochastic implicit differentiation (SID) on a StochasticProblem:
///
/// 1. t stochastic inner steps  w ← (1 − η_s) w + η_s Φ(w, λ; ξ_s)  (solve_inner_stochastic);
/// 2. K steps of the damped stochastic fixed-point iteration for the linear system
///        v ← (1 − η_k) v + η_k (∂_wΦ(w, λ; ξ_k)ᵀ v + ∇_wE(w, λ; ζ_k)),
///    each with a fresh ξ_k and (when the outer batch is not the full outer data) a fresh ζ_k;
/// 3. h = ∇_λE(w, λ; ζ₀) + (1/J) Σ_j ∂_λΦ(w, λ; ξ_j)ᵀ v  over J fresh batches ξ_j.
///
/// A batch size of 0 means the full data set: that part is then deterministic, Φ's
/// linearization (or E's gradient) is computed once and reused, and with every batch full
/// and constant steps η = 1, SID is AID-FP (same iterates, same h).
///
/// Sample accounting (stochastic.hpp): inner Σ|ξ_s|; linear Σ_k |ξ_k| (+ |ζ_k| when the
/// outer batch is sampled); cross Σ_j |ξ_j| (one pass when the cross batch is full — the J
/// averages would be identical); outer |ζ₀|.
///
/// Divergence: a non-finite v, or ‖v‖ above `divergence_factor` times max(‖v₀‖, ‖∇_wE‖),
/// throws ConvergenceError — unless `fallback_on_divergence`, which then uses K = 0 from
/// v = 0 for this call (h = ∇_λE, the cross term vanishes), drops the warm v, and says so
/// in Diagnostics::warnings. An inner iteration that diverges always throws.
///
/// Schedules: an outer loop may change t, K, J between calls with `set_iterations` (what
/// OuterOptimizer does), or any option with `set_options` (validated); the samplers and the
/// warm state are kept. The step-size counters s and k restart at 0 in every call. Warm
/// start is controlled like AID's through HypergradientMethod (set_warm_start,
/// warm_state, set_warm_state), and the samplers' state is exported for save/resume.
#include <cstdint>
#include <string>

#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/sampling.hpp"
#include "hyperad/bilevel/stochastic.hpp"

namespace hyperad::bilevel {

struct SIDOptions {
  int inner_steps = 100;   ///< t
  int linear_steps = 100;  ///< K
  int cross_batches = 1;   ///< J (≥ 1)
  std::int64_t inner_batch = 0;   ///< |ξ_s| of the inner steps (0: full inner data)
  std::int64_t linear_batch = 0;  ///< |ξ_k| of the linear system (0: full)
  std::int64_t cross_batch = 0;   ///< |ξ_j| of the cross term (0: full)
  std::int64_t outer_batch = 0;   ///< |ζ| of E's gradients (0: full outer data, computed once)
  /// η_s of step 1 (validate_damping: η₀ ∈ (0, 1]).
  StepSizeSchedule inner_step = StepSizeSchedule::constant(1.0);
  StepSizeSchedule linear_step = StepSizeSchedule::constant(1.0);  ///< η_k of step 2
  double inner_momentum = 0.0;                     ///< heavy-ball μ of step 1
  Sampling sampling = Sampling::without_replacement;
  std::uint64_t seed = 0;  ///< seeds the inner-data and outer-data samplers (at construction)
  /// What each call starts from: the previous call's w_t, its v_K, both or neither.
  WarmStart warm_start = WarmStart::none;
  /// On a diverging linear system, use K = 0 (v = 0) for this call and warn, instead of
  /// throwing ConvergenceError.
  bool fallback_on_divergence = false;
  double divergence_factor = 1e6;
};

/// The random state of SID's two samplers (inner data, outer data), for save/resume.
struct SIDRandomState {
  SamplerState inner, outer;
};

class SID final : public HypergradientMethod {
 public:
  /// Throws ValueError for invalid options (negative counts, batch sizes above the data
  /// set sizes, step sizes outside (0, 1], momentum outside [0, 1)).
  explicit SID(StochasticProblem problem, SIDOptions options = {});

  std::string name() const override { return "SID"; }
  /// SID reaches the data through its StochasticProblem. `problem` — normally
  /// `stochastic_problem().full_batch()`, which the outer loop evaluates — only has to
  /// have the same state shapes (ShapeError otherwise).
  Hypergradient hypergradient(const Problem& problem, const TensorList& lambda) override;
  /// The same without a Problem.
  Hypergradient hypergradient(const TensorList& lambda);
  /// Steps 2 and 3 at the inner state w (no inner iterations); `problem` as above.
  Hypergradient hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) override;
  /// Forgets the warm w and v (the samplers go on).
  void reset() override {
    previous_w_.clear();
    previous_v_.clear();
  }

  const SIDOptions& options() const { return options_; }
  /// Replaces the options (validated); samplers and warm state are kept, `seed` is ignored.
  void set_options(const SIDOptions& options);

  // ---- Control by an outer loop (HypergradientMethod; see outer.hpp) -------------------
  bool has_linear_system() const override { return true; }
  void set_warm_start(WarmStart w) override { options_.warm_start = w; }
  /// {w_t, v_K} of the last call (empty before the first call or after reset(); v is also
  /// empty after a fallback to K = 0). The next call starts from them as warm_start says.
  WarmState warm_state() const override { return {previous_w_, previous_v_}; }
  /// ShapeError when a non-empty part does not match the inner state.
  void set_warm_state(const WarmState& s) override;
  /// Schedules: t, K, J for the next calls (unset fields unchanged; validated).
  void set_iterations(const IterationCounts& c) override;
  /// Both samplers as integers: per sampler 4 RNG words, position, epoch, drawn, the
  /// permutation's length and entries (inner sampler first).
  std::vector<std::uint64_t> export_random_state() const override;
  /// ValueError when the words do not come from a SID over data sets of the same sizes.
  void import_random_state(const std::vector<std::uint64_t>& s) override;

  /// The same random state, typed.
  SIDRandomState random_state() const { return {inner_sampler_.state(), outer_sampler_.state()}; }
  void set_random_state(const SIDRandomState& s);

  const StochasticProblem& stochastic_problem() const { return problem_; }

 private:
  // Steps 2 and 3 at w; fills h (not the inner part, samples or timing).
  void differentiate(const TensorList& lambda, const TensorList& w, Hypergradient& h);
  StochasticProblem problem_;
  SIDOptions options_;
  BatchSampler inner_sampler_, outer_sampler_;
  TensorList previous_w_, previous_v_;
};

}  // namespace hyperad::bilevel
