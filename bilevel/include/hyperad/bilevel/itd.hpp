#pragma once
/// \file itd.hpp
/// Iterative differentiation (reverse mode): run t inner steps w_{i+1} = Φ(w_i, λ) and
/// differentiate E(w_t, λ) with respect to λ through the last T of them (truncated ITD;
/// T = t is full ITD). Memory grows with T (or with the stored states when checkpointed);
/// cost ≈ a constant times the inner solve.
#include <optional>

#include "hyperad/autodiff/checkpoint.hpp"
#include "hyperad/bilevel/hypergradient.hpp"

namespace hyperad::bilevel {

struct ITDOptions {
  int inner_steps = 100;    ///< t
  /// T: steps reversed through (the last T of t); unset: all t (full ITD).
  std::optional<int> reverse_steps{};
  /// none, or inner: start the inner iterations from the previous call's w_t instead of
  /// w0 (ITD has no linear system to warm-start).
  WarmStart warm_start = WarmStart::none;
  /// Reverse the T steps through `checkpointed_loop` with this policy (e.g.
  /// CheckpointPolicy::binomial(s)) instead of recording every step: the tape then holds
  /// one step at a time and memory is the stored states (see checkpoint.hpp).
  std::optional<CheckpointPolicy> checkpoint{};
};

class ITD final : public HypergradientMethod {
 public:
  explicit ITD(ITDOptions options = {});
  std::string name() const override;
  Hypergradient hypergradient(const Problem& problem, const TensorList& lambda) override;
  /// Reverses T steps taken from w (T = reverse_steps, or t): the derivative of
  /// E(Φ^T(w, λ), λ) with w held fixed.
  Hypergradient hypergradient_at(const Problem& problem, const TensorList& lambda, const TensorList& w) override;
  void reset() override { previous_.clear(); }
  const ITDOptions& options() const { return options_; }

  // Outer-loop control (hypergradient.hpp). ITD has no linear system: its warm state is
  // w_t only, and a K or J count is refused.
  /// ValueError for a warm start of the linear system.
  void set_warm_start(WarmStart w) override;
  WarmState warm_state() const override { return {previous_, {}}; }
  /// ValueError if `s.linear` is not empty.
  void set_warm_state(const WarmState& s) override;
  /// t only; T (reverse_steps) is clamped to the new t when it exceeds it.
  void set_iterations(const IterationCounts& c) override;

 private:
  int reversed() const { return options_.reverse_steps.value_or(options_.inner_steps); }
  // T recorded steps from `start` and the reverse pass; fills h (not its timing).
  void differentiate(const Problem& problem, const TensorList& lambda, const TensorList& start, double head_step_norm,
                     Hypergradient& h);
  ITDOptions options_;
  TensorList previous_;
};

}  // namespace hyperad::bilevel
