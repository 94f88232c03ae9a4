#pragma once
// Φ and E linearized at (w, λ): what AID, the exact reference and the contraction
// estimate share — the outer objective's gradients and Φ's pullback recorded once.
#include <utility>

#include "hyperad/autodiff/grad.hpp"
#include "hyperad/bilevel/problem.hpp"

namespace hyperad::bilevel::detail {

/// E(w, λ) and its gradients with respect to w and λ.
struct OuterGradients {
  double value = 0;
  Tensors wrt_w, wrt_lambda;
};
OuterGradients outer_gradients(const Problem& p, const Tensors& w, const Tensors& lambda);

/// Φ recorded once at (w, λ) on the current tape (keep a TapeScope around its use);
/// each pullback is one reverse sweep.
class PhiPullback {
 public:
  PhiPullback(const Problem& p, const Tensors& w, const Tensors& lambda);
  /// (∂_wΦᵀ u, ∂_λΦᵀ u)
  std::pair<Tensors, Tensors> both(const Tensors& u) const;
  /// ∂_wΦᵀ u
  Tensors wt(const Tensors& u) const { return both(u).first; }
  /// ∂_wΦ u (a Jacobian-vector product): the pullback is linear in its cotangent c, so
  /// differentiating ⟨∂_wΦᵀ c, u⟩ with respect to c gives ∂_wΦ u.
  Tensors jvp(const Tensors& u) const;

 private:
  std::size_t nw_;
  Vjp vjp_;
};

}  // namespace hyperad::bilevel::detail
