#pragma once
/// \file hypergradient.hpp
/// The interface every hypergradient method shares:
///
/// - `hypergradient(problem, λ)`: solve the inner problem (t steps of the problem's inner
///   solver, from w0 or a warm start), then differentiate at the w reached;
/// - `hypergradient_at(problem, λ, w)`: differentiate at a w the caller provides (from a
///   solver of their own, a previous run, ...), with no inner solve.
///
/// Both return ∇f(λ) (approximately) and diagnostics. Methods are small objects configured
/// by option structs; with warm start they keep the previous call's inner (and
/// linear-system) solution and start the next call from it.
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/names.hpp"
#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel {

/// Sample-gradients consumed, by part (see stochastic.hpp for the unit).
struct SampleCounts {
  std::int64_t inner = 0, linear = 0, cross = 0, outer = 0;
  std::int64_t total() const { return inner + linear + cross + outer; }
};

/// Why a hypergradient may be wrong, found by the cheap checks every method runs (always on):
enum class Doubt {
  /// The inner iteration is not contracting: over its last steps the step norms did not
  /// shrink (and it did not reach its tolerance). Φ may not be a contraction there, so w_t
  /// is no fixed point and the implicit (or unrolled) derivative is not ∇f.
  inner_not_contracting,
  /// The linear system was not solved: its true relative residual ‖(I − ∂_wΦᵀ)v − ∇_wE‖/‖∇_wE‖
  /// is above 1 (worse than v = 0: a divergent iteration, a singular system) or not finite.
  linear_not_solved,
  /// The linear solver broke down (reason in the message): e.g. CG meeting pᵀAp ≤ 0, or a
  /// "converged" whose recomputed residual misses the tolerance (a singular system).
  linear_breakdown,
  /// A non-finite value in the hypergradient.
  non_finite,
};
inline constexpr std::array<Named<Doubt>, 4> kDoubtNames{{{Doubt::inner_not_contracting, "inner not contracting"},
                                                         {Doubt::linear_not_solved, "linear system not solved"},
                                                         {Doubt::linear_breakdown, "linear solver breakdown"},
                                                         {Doubt::non_finite, "non-finite"}}};
inline const char* doubt_name(Doubt d) { return name_of(kDoubtNames, d); }

/// One failed check: what and why (the message has the numbers).
struct Concern {
  Doubt doubt;
  std::string message;
};

/// A hypergradient from a method in strict mode (`set_strict`) that failed a check; the
/// message lists every concern.
class UntrustedError : public ConvergenceError {
 public:
  using ConvergenceError::ConvergenceError;
};

/// What a hypergradient computation did.
struct Diagnostics {
  std::string method;         ///< e.g. "AID-CG"
  int inner_steps = 0;        ///< applications of the inner solver's map
  /// ‖w_t − w_{t−1}‖ at the end of the inner solve (checkpointed ITD: ‖Φ(w_t) − w_t‖;
  /// exact_hypergradient: ‖Φ(w) − w‖ after its Newton correction)
  double inner_step_norm = 0;
  /// exact_hypergradient: the norm of its last Newton correction of w, an estimate of
  /// ‖w − w*‖ (NaN for the other methods).
  double inner_error = std::numeric_limits<double>::quiet_NaN();
  /// finite_difference_hypergradient: the estimated error ‖g − ∇f‖ of its result (two step
  /// sizes and the inner solves' stopping error; NaN for the other methods).
  double error_estimate = std::numeric_limits<double>::quiet_NaN();
  int reverse_steps = 0;      ///< ITD: steps reversed through
  std::int64_t recomputed_steps = 0;  ///< checkpointed ITD: steps recomputed in the reverse pass
  std::size_t peak_stored_bytes = 0;  ///< checkpointed ITD: peak bytes of stored states
  /// The linear system (I − ∂_wΦᵀ)v = ∇_wE: AID's solve (status, iterations, the true
  /// residual ‖(I − ∂_wΦᵀ)v − ∇_wE‖ and its ratio to ‖∇_wE‖); SID's stochastic iteration
  /// (residual NaN unless every batch is full). ITD has none (solver empty, 0 iterations).
  linsolve::Report linear;
  double seconds = 0;                 ///< wall time of the call
  /// Threads the call's kernels used at its end (runtime::ThreadPlan: decided once per
  /// call, 1 after a stall), and the stalls seen during the call (worker threads that did
  /// not get a core within runtime::stall_threshold()).
  int threads = 1;
  std::uint64_t parallel_stalls = 0;
  /// Peak memory the tape kept alive for the call, above its level at the call: records and
  /// the tensors the call created and saved (what recording cost; the process grows by it).
  std::size_t peak_tape_bytes = 0;
  /// Peak bytes of tensors from before the call (data, λ, given states) that the tape held
  /// references to: no new memory, reported apart so that a large data matrix saved by
  /// every step does not pass for the tape's own memory.
  std::size_t peak_referenced_bytes = 0;
  std::vector<std::string> warnings;  ///< problems noticed but not fatal (each concern's message too)
  /// The checks that failed; empty when every check passed.
  std::vector<Concern> concerns;
  /// True when no check failed. (The checks are necessary conditions: a trusted result
  /// can still be inexact, e.g. a truncated solve, but an untrusted one is likely wrong.)
  bool trusted() const { return concerns.empty(); }
  /// Records a failed check (also appended to `warnings`).
  void raise(Doubt doubt, std::string message) {
    warnings.push_back(message);
    concerns.push_back({doubt, std::move(message)});
  }
  std::int64_t samples = 0;  ///< sample-gradients consumed (inner, linear system, cross term, outer)
  SampleCounts sample_counts;  ///< `samples` by part (samples == sample_counts.total() when filled)
};

/// A hypergradient: one tensor per outer variable, the outer objective at the inner
/// solution used, and diagnostics.
struct Hypergradient {
  TensorList grad;
  double objective = 0;  ///< E(w_t, λ)
  Diagnostics diagnostics;
};

/// What each hypergradient computation starts from: the previous call's inner solution
/// w_t, its linear-system solution v, both, or neither (w0 and v = 0).
enum class WarmStart { none, inner, linear, inner_and_linear };
inline constexpr std::array<Named<WarmStart>, 4> kWarmStartNames{{{WarmStart::none, "none"},
                                                                  {WarmStart::inner, "inner"},
                                                                  {WarmStart::linear, "linear"},
                                                                  {WarmStart::inner_and_linear, "inner+linear"}}};
/// "none", "inner", "linear", "inner+linear".
inline const char* warm_start_name(WarmStart w) { return name_of(kWarmStartNames, w); }
inline bool warms_inner(WarmStart w) { return w == WarmStart::inner || w == WarmStart::inner_and_linear; }
inline bool warms_linear(WarmStart w) { return w == WarmStart::linear || w == WarmStart::inner_and_linear; }

/// A method's warm-start state: the last call's inner solution w_t and linear-system
/// solution v (either may be empty; ITD has no v).
struct WarmState {
  TensorList inner;   ///< w_t
  TensorList linear;  ///< v
};

/// Iteration counts an outer loop imposes between calls (schedules, outer.hpp). An unset
/// field keeps the method's current value.
struct IterationCounts {
  std::optional<int> inner_steps{};    ///< t
  std::optional<int> linear_steps{};   ///< K
  std::optional<int> cross_batches{};  ///< J (stochastic cross term)
  bool any() const { return inner_steps || linear_steps || cross_batches; }
};

class HypergradientMethod {
 public:
  virtual ~HypergradientMethod() = default;
  /// Short name, e.g. "ITD", "AID-CG".
  virtual std::string name() const = 0;
  /// ∇f(λ) for `problem` at `lambda`: the inner solve, then the method at the w reached.
  virtual Hypergradient hypergradient(const Problem& problem, const TensorList& lambda) = 0;
  /// The method at the inner state `w` (a state of `problem`, e.g. from a solver of the
  /// caller's), with no inner solve: AID solves its linear system at w, ITD reverses its T
  /// steps from w, SID runs its linear iteration and cross term at w. ShapeError when w is
  /// not shaped like the problem's state.
  virtual Hypergradient hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) = 0;
  /// Forgets the warm-start state (the next call starts from the problem's w0).
  virtual void reset() {}

  // ---- Control by an outer loop (outer.hpp). The defaults suit a method without the
  // feature: they accept "off / nothing" and throw ValueError for anything else, so an
  // outer loop never silently loses a setting.
  /// True when the method solves a linear system whose solution v it can keep and start
  /// from (AID, SID); false for ITD and by default.
  virtual bool has_linear_system() const { return false; }
  /// What the next calls start from.
  virtual void set_warm_start(WarmStart w) {
    if (w != WarmStart::none) throw ValueError(name() + ": this method has no warm start");
  }
  /// The warm-start state the next call would start from (for save/resume).
  virtual WarmState warm_state() const { return {}; }
  /// Replaces the warm-start state (an empty part is cleared).
  virtual void set_warm_state(const WarmState& s) {
    if (!s.inner.empty() || !s.linear.empty()) throw ValueError(name() + ": this method has no warm-start state");
  }
  /// Sets t, K, J for the next calls.
  virtual void set_iterations(const IterationCounts& c) {
    if (c.any()) throw ValueError(name() + ": this method does not take iteration schedules");
  }
  /// Its exact random state as integers (stochastic methods: their samplers), for
  /// save/resume; empty for deterministic methods.
  virtual std::vector<std::uint64_t> export_random_state() const { return {}; }
  /// Restores what export_random_state returned.
  virtual void import_random_state(const std::vector<std::uint64_t>& s) {
    if (!s.empty()) throw ValueError(name() + ": this method has no random state");
  }

  /// Strict mode: a hypergradient that fails a check (Diagnostics::concerns) throws
  /// UntrustedError instead of being returned. Off by default; `hyperad check` and
  /// `hyperad run --strict` turn it on.
  virtual void set_strict(bool strict) { strict_ = strict; }
  bool strict() const { return strict_; }

 protected:
  bool strict_ = false;
};

}  // namespace hyperad::bilevel
