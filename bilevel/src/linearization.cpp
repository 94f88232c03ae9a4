#include "linearization.hpp"

#include <numeric>

#include "hyperad/autodiff/tape.hpp"

namespace hyperad::bilevel::detail {

namespace {
// (w, λ) as one list, and back.
TensorList join(const TensorList& w, const TensorList& lambda) {
  TensorList all = w;
  all.insert(all.end(), lambda.begin(), lambda.end());
  return all;
}
std::pair<TensorList, TensorList> split(const TensorList& all, std::size_t nw) {
  const auto mid = all.begin() + static_cast<std::ptrdiff_t>(nw);
  return {TensorList(all.begin(), mid), TensorList(mid, all.end())};
}
}  // namespace

OuterGradients outer_gradients(const Problem& p, const TensorList& w, const TensorList& lambda) {
  ValueAndGrad e = value_and_grad(
      [&](const TensorList& x) {
        auto [ws, ls] = split(x, w.size());
        return p.outer(ws, ls);
      },
      join(w, lambda));
  auto [gw, gl] = split(e.grads, w.size());
  return {e.value.item(), std::move(gw), std::move(gl)};
}

PhiPullback::PhiPullback(const Problem& p, const TensorList& w, const TensorList& lambda) : nw_(w.size()) {
  vjp_ = vjp(
      [&p, this](const TensorList& x) {
        auto [ws, ls] = split(x, nw_);
        return p.phi(ws, ls);
      },
      join(w, lambda));
  std::vector<std::size_t> state(nw_);
  std::iota(state.begin(), state.end(), std::size_t{0});
  through_w_ = vjp_.pullback.with_respect_to(state);
}

std::pair<TensorList, TensorList> PhiPullback::both(const TensorList& u) const { return split(vjp_.pullback(u), nw_); }

}  // namespace hyperad::bilevel::detail
