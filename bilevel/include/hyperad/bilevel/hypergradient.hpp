#pragma once
/// \file hypergradient.hpp
/// The interface every hypergradient method shares: `hypergradient(problem, λ)` returns
/// ∇f(λ) (approximately) and diagnostics. Methods are small objects configured by option
/// structs; those with warm start keep the previous call's inner (and linear-system)
/// solution and use it to start the next call.
#include <limits>
#include <string>
#include <vector>

#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel {

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
};

/// A hypergradient: one tensor per outer variable, the outer objective at the inner
/// solution used, and diagnostics.
struct Hypergradient {
  Tensors grad;
  double objective = 0;  ///< E(w_t, λ)
  Diagnostics diagnostics;
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
};

}  // namespace hyperad::bilevel
