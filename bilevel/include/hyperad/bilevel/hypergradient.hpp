#pragma once
/// \file hypergradient.hpp
/// The interface every hypergradient method shares: `hypergradient(problem, λ)` returns
/// ∇f(λ) (approximately) and diagnostics. Methods are small objects configured by option
/// structs; those with warm start keep the previous call's inner (and linear-system)
/// solution and use it to start the next call.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel {

/// Sample-gradients consumed, by part (see stochastic.hpp for the unit).
struct SampleCounts {
  std::int64_t inner = 0, linear = 0, cross = 0, outer = 0;
  std::int64_t total() const { return inner + linear + cross + outer; }
};

/// What a hypergradient computation did.
struct Diagnostics {
  std::string method;         ///< e.g. "AID-CG"
  int inner_steps = 0;        ///< applications of Φ in the inner solve
  /// ‖w_t − w_{t−1}‖ at the end of the inner solve (checkpointed ITD: ‖Φ(w_t) − w_t‖)
  double inner_step_norm = 0;
  int reverse_steps = 0;      ///< ITD: steps reversed through
  std::int64_t recomputed_steps = 0;  ///< checkpointed ITD: steps recomputed in the reverse pass
  std::size_t peak_stored_bytes = 0;  ///< checkpointed ITD: peak bytes of stored states
  int linear_iterations = 0;  ///< AID: iterations of the linear solver
  /// AID: ‖(I − ∂_wΦᵀ)v − ∇_wE‖ at the returned v (NaN for ITD).
  double linear_residual = std::numeric_limits<double>::quiet_NaN();
  bool linear_converged = false;
  double seconds = 0;                 ///< wall time of the call
  std::size_t peak_tape_bytes = 0;    ///< peak tape memory above the level at the call
  std::vector<std::string> warnings;  ///< problems noticed but not fatal
  std::int64_t samples = 0;  ///< sample-gradients consumed (inner, linear system, cross term, outer)
  SampleCounts sample_counts;  ///< `samples` by part (samples == sample_counts.total() when filled)
};

/// A hypergradient: one tensor per outer variable, the outer objective at the inner
/// solution used, and diagnostics.
struct Hypergradient {
  Tensors grad;
  double objective = 0;  ///< E(w_t, λ)
  Diagnostics diagnostics;
};

/// A method's warm-start state: the last call's inner solution w_t and linear-system
/// solution v (either may be empty; ITD has no v).
struct WarmState {
  Tensors inner;   ///< w_t
  Tensors linear;  ///< v
};

/// Iteration counts an outer loop imposes between calls (schedules, outer.hpp). A negative
/// field keeps the method's current value.
struct IterationCounts {
  int inner_steps = -1;    ///< t
  int linear_steps = -1;   ///< K
  int cross_batches = -1;  ///< J (stochastic cross term)
};

class HypergradientMethod {
 public:
  virtual ~HypergradientMethod() = default;
  /// Short name, e.g. "ITD", "AID-CG".
  virtual std::string name() const = 0;
  /// ∇f(λ) for `problem` at `lambda`.
  virtual Hypergradient hypergradient(const Problem& problem, const Tensors& lambda) = 0;
  /// Forgets the warm-start state (the next call starts from the problem's w0).
  virtual void reset() {}

  // ---- Control by an outer loop (outer.hpp). The defaults suit a method without the
  // feature: they accept "off / nothing" and throw ValueError for anything else, so an
  // outer loop never silently loses a setting.
  /// Turns warm starts (inner and linear system) on or off for the next calls.
  virtual void set_warm_start(bool on) {
    if (on) throw ValueError(name() + ": this method has no warm start");
  }
  /// The warm-start state the next call would start from (for save/resume).
  virtual WarmState warm_state() const { return {}; }
  /// Replaces the warm-start state (an empty part is cleared). Shapes are the caller's
  /// responsibility (the outer loop checks them against the problem).
  virtual void set_warm_state(const WarmState& s) {
    if (!s.inner.empty() || !s.linear.empty()) throw ValueError(name() + ": this method has no warm-start state");
  }
  /// Sets t, K, J for the next calls.
  virtual void set_iterations(const IterationCounts& c) {
    if (c.inner_steps >= 0 || c.linear_steps >= 0 || c.cross_batches >= 0)
      throw ValueError(name() + ": this method does not take iteration schedules");
  }
  /// Its exact random state as integers (stochastic methods: their samplers), for
  /// save/resume; empty for deterministic methods.
  virtual std::vector<std::uint64_t> export_random_state() const { return {}; }
  /// Restores what export_random_state returned.
  virtual void import_random_state(const std::vector<std::uint64_t>& s) {
    if (!s.empty()) throw ValueError(name() + ": this method has no random state");
  }
};

}  // namespace hyperad::bilevel
