#include "linearization.hpp"

#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::bilevel::detail {

namespace {
// (w, λ) as one list, and back.
Tensors join(const Tensors& w, const Tensors& lambda) {
  Tensors all = w;
  all.insert(all.end(), lambda.begin(), lambda.end());
  return all;
}
std::pair<Tensors, Tensors> split(const Tensors& all, std::size_t nw) {
  const auto mid = all.begin() + static_cast<std::ptrdiff_t>(nw);
  return {Tensors(all.begin(), mid), Tensors(mid, all.end())};
}
}  // namespace

OuterGradients outer_gradients(const Problem& p, const Tensors& w, const Tensors& lambda) {
  ValueAndGrad e = value_and_grad(
      [&](const Tensors& x) {
        auto [ws, ls] = split(x, w.size());
        return p.outer(ws, ls);
      },
      join(w, lambda));
  auto [gw, gl] = split(e.grads, w.size());
  return {e.value.item(), std::move(gw), std::move(gl)};
}

PhiPullback::PhiPullback(const Problem& p, const Tensors& w, const Tensors& lambda) : nw_(w.size()) {
  vjp_ = vjp(
      [&p, this](const Tensors& x) {
        auto [ws, ls] = split(x, nw_);
        return p.phi(ws, ls);
      },
      join(w, lambda));
}

std::pair<Tensors, Tensors> PhiPullback::both(const Tensors& u) const { return split(vjp_.pullback(u), nw_); }

Tensors PhiPullback::jvp(const Tensors& u) const {
  TapeScope scope;
  Tensors c = make_leaves(linsolve::zeros_like(u));
  Tensors rw = split(vjp_.pullback(c, /*create_graph=*/true), nw_).first;
  return detach_all(grad(rw, u, c, false, true));
}

}  // namespace hyperad::bilevel::detail
