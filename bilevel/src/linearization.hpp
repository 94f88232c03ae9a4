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
  TensorList wrt_w, wrt_lambda;
};
OuterGradients outer_gradients(const Problem& p, const TensorList& w, const TensorList& lambda);

/// Φ recorded once at (w, λ) on the current tape (keep a TapeScope around its use);
/// each pullback is one reverse sweep.
class PhiPullback {
 public:
  PhiPullback(const Problem& p, const TensorList& w, const TensorList& lambda);
  /// (∂_wΦᵀ u, ∂_λΦᵀ u): one sweep through w and λ.
  std::pair<TensorList, TensorList> both(const TensorList& u) const;
  /// ∂_wΦᵀ u: one sweep through w only (none of λ's work).
  TensorList wt(const TensorList& u) const { return through_w_(u); }

 private:
  std::size_t nw_;
  Vjp vjp_;
  Pullback through_w_;
};

}  // namespace hyperad::bilevel::detail
