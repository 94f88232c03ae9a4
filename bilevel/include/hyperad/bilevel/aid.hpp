#pragma once
/// \file aid.hpp
/// Approximate implicit differentiation: after t inner steps, solve the linear system
///
///     (I − ∂_wΦ(w_t, λ)ᵀ) v = ∇_wE(w_t, λ)
///
/// approximately, then h = ∇_λE + ∂_λΦᵀ v. Φ is recorded once at (w_t, λ) and its pullback
/// (one reverse sweep, no re-run of Φ) applied once per solver iteration, so AID's memory
/// does not grow with t. Which solver:
///
/// | solver        | needs                           | per iteration          |
/// |---------------|---------------------------------|------------------------|
/// | fixed_point   | ∂_wΦ a contraction              | 1 pullback             |
/// | neumann       | ∂_wΦ a contraction              | 1 pullback             |
/// | cg            | ∂_wΦ symmetric (gradient maps)  | 1 pullback             |
/// | gmres         | I − ∂_wΦ non-singular           | 1 pullback (+ restarts)|
/// | normal_cg     | I − ∂_wΦ non-singular           | ~3 pullbacks           |
///
/// Neumann(K) = Σ_{k≤K} (∂_wΦᵀ)^k ∇_wE equals fixed_point with K + 1 iterations from 0.
/// CG on a map whose Jacobian is not symmetric is refused (heavy-ball maps), flagged in the
/// diagnostics (maps of unknown symmetry), or — with `check_symmetry` — probed with
/// random a, b: |⟨a, ∂_wΦᵀ b⟩ − ⟨b, ∂_wΦᵀ a⟩| > 1e-6·‖a‖‖b‖‖∂_wΦᵀ‖ throws.
#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel {

/// Solver of the AID linear system.
enum class LinearSolver { fixed_point, neumann, cg, gmres, normal_cg };
/// "FP", "Neumann", "CG", "GMRES", "normal-CG".
const char* linear_solver_name(LinearSolver s);

struct AIDOptions {
  int inner_steps = 100;         ///< t: at most this many inner steps
  double inner_tolerance = 0.0;  ///< stop the inner solve early at this step norm (0: run t)
  LinearSolver solver = LinearSolver::cg;
  int linear_steps = 100;  ///< K: at most this many solver iterations
  /// Stop the solver when ‖(I − ∂_wΦᵀ)v − ∇_wE‖ ≤ linear_tolerance · ‖∇_wE‖ (0: run K).
  double linear_tolerance = 0.0;
  int gmres_restart = 30;
  /// Start the inner solve and the linear solve from the previous call's w_t and v.
  bool warm_start = false;
  /// Probe the symmetry of ∂_wΦ before running CG (costs two pullbacks).
  bool check_symmetry = false;
};

class AID final : public HypergradientMethod {
 public:
  explicit AID(AIDOptions options = {});
  std::string name() const override;
  Hypergradient hypergradient(const Problem& problem, const Tensors& lambda) override;
  void reset() override {
    previous_w_.clear();
    previous_v_.clear();
  }
  const AIDOptions& options() const { return options_; }

  // Outer-loop control (hypergradient.hpp). The warm state is (w_t, v); setting it with an
  // empty `linear` part, or reset_linear(), drops v only (the next linear solve starts
  // from 0 while the inner solve still starts from w_t).
  void set_warm_start(bool on) override { options_.warm_start = on; }
  WarmState warm_state() const override { return {previous_w_, previous_v_}; }
  void set_warm_state(const WarmState& s) override {
    previous_w_ = s.inner;
    previous_v_ = s.linear;
  }
  void reset_linear() { previous_v_.clear(); }
  /// t and K; a J count is refused (AID's cross term is exact).
  void set_iterations(const IterationCounts& c) override;

 private:
  AIDOptions options_;
  Tensors previous_w_, previous_v_;
};

}  // namespace hyperad::bilevel
