#pragma once
/// \file aid.hpp
/// Approximate implicit differentiation: after t inner steps, solve the linear system
///
///     (I − ∂_wΦ(w_t, λ)ᵀ) v = ∇_wE(w_t, λ)
///
/// approximately, then h = ∇_λE + ∂_λΦᵀ v — that is, the inner solve followed by
/// `implicit_vjp` (autodiff/implicit.hpp), which records Φ once at (w_t, λ) and pulls back
/// through w alone at each solver iteration, so AID's memory does not grow with t and its
/// iterations do none of λ's work. Any `linsolve::Solver` can solve the system:
///
/// | solver        | needs                           | per iteration          |
/// |---------------|---------------------------------|------------------------|
/// | richardson    | ∂_wΦ a contraction              | 1 pullback             |
/// | neumann       | ∂_wΦ a contraction              | 1 pullback             |
/// | cg            | ∂_wΦ symmetric (gradient maps)  | 1 pullback             |
/// | gmres         | I − ∂_wΦ non-singular           | 1 pullback (+ restarts)|
/// | bicgstab      | I − ∂_wΦ non-singular           | 2 pullbacks            |
/// | normal_cg     | I − ∂_wΦ non-singular           | 3 pullbacks            |
/// | dense_lu      | a small state (n ≤ 4000)        | n pullbacks, once      |
///
/// Neumann(K) = Σ_{k≤K} (∂_wΦᵀ)^k ∇_wE equals Richardson from 0 after the same K pullbacks.
/// CG on a map whose Jacobian is not symmetric is refused: declared so (heavy-ball maps), or
/// found so by a random probe of a map of unknown symmetry (`probe_symmetry`, on by default).
#include <optional>

#include "hyperad/autodiff/implicit.hpp"
#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel {

struct AIDOptions {
  int inner_steps = 100;  ///< t: at most this many inner steps
  /// Stop the inner solve early (see InnerOptions::tolerance; zero: run t steps).
  Tolerance inner_tolerance{};
  /// Solver of the linear system (any linsolve::Solver, including one of your own).
  linsolve::Solver solver = linsolve::cg();
  int linear_steps = 100;  ///< K: at most this many solver iterations
  /// Stop the solver when ‖(I − ∂_wΦᵀ)v − ∇_wE‖ ≤ max(atol, rtol‖∇_wE‖) (zero: run K).
  Tolerance linear_tolerance{};
  /// Tikhonov term: solve (I − ∂_wΦᵀ + ridge·I) v = ∇_wE (0: none).
  double ridge = 0.0;
  /// Probe the symmetry of ∂_wΦ, when it is not declared, before a solver that needs it
  /// (two pullbacks; an asymmetric one is refused). Off: CG only warns.
  bool probe_symmetry = true;
  /// What each call starts from: the previous call's w_t, its v, both or neither.
  WarmStart warm_start = WarmStart::none;
};

class AID final : public HypergradientMethod {
 public:
  explicit AID(AIDOptions options = {});
  /// "AID-" and the solver's name, e.g. "AID-CG".
  std::string name() const override;
  Hypergradient hypergradient(const Problem& problem, const TensorList& lambda) override;
  Hypergradient hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) override;
  void reset() override {
    previous_w_.clear();
    previous_v_.clear();
  }
  const AIDOptions& options() const { return options_; }

  // Outer-loop control (hypergradient.hpp). The warm state is (w_t, v).
  bool has_linear_system() const override { return true; }
  void set_warm_start(WarmStart w) override { options_.warm_start = w; }
  WarmState warm_state() const override { return {previous_w_, previous_v_}; }
  void set_warm_state(const WarmState& s) override {
    previous_w_ = s.inner;
    previous_v_ = s.linear;
  }
  /// t and K; a J count is refused (AID's cross term is exact).
  void set_iterations(const IterationCounts& c) override;

 private:
  // The linear solve and cross term at an inner state; fills h and the warm state's v.
  void differentiate(const Problem& problem, const TensorList& lambda, const TensorList& w, Hypergradient& h);
  AIDOptions options_;
  TensorList previous_w_, previous_v_;
};

}  // namespace hyperad::bilevel
