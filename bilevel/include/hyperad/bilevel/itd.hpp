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
  /// T: steps reversed through (the last T of t). 0 means all t (full ITD).
  int reverse_steps = 0;
  /// Start the inner iterations from the previous call's w_t instead of w0.
  bool warm_start = false;
  /// Reverse the T steps through `checkpointed_loop` with this policy (e.g.
  /// CheckpointPolicy::binomial(s)) instead of recording every step: the tape then holds
  /// one step at a time and memory is the stored states (see checkpoint.hpp).
  std::optional<CheckpointPolicy> checkpoint;
};

class ITD final : public HypergradientMethod {
 public:
  explicit ITD(ITDOptions options = {});
  std::string name() const override;
  Hypergradient hypergradient(const Problem& problem, const Tensors& lambda) override;
  void reset() override { previous_.clear(); }
  const ITDOptions& options() const { return options_; }

 private:
  ITDOptions options_;
  Tensors previous_;
};

}  // namespace hyperad::bilevel
