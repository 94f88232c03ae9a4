// implicit_vjp: the adjoint system of a fixed point, solved with w-only pullbacks.
#include "hyperad/autodiff/implicit.hpp"

#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"

namespace hyperad {

namespace {

// ∂_wΦ u from the pullback c ↦ ∂_wΦᵀ c: it is linear in c, so differentiating ⟨∂_wΦᵀ c, u⟩
// with respect to c gives ∂_wΦ u (two reverse sweeps, no forward mode needed).
TensorList jacobian_product(const Pullback& through_w, const TensorList& u) {
  TapeScope scope;
  EnableGradGuard on;
  const TensorList c = list::make_leaves(list::zeros_like(u));
  const TensorList jt = through_w(c, /*create_graph=*/true);
  return list::detach(grad(jt, u, c, false, /*allow_unused=*/true));
}

}  // namespace

ImplicitResult implicit_vjp(const FixedPointMap& phi, const TensorList& w, const TensorList& params,
                            const TensorList& w_cotangent, const TensorList& params_cotangent,
                            const ImplicitOptions& o) {
  if (!phi) throw ValueError("implicit_vjp: the map is empty");
  if (w.empty()) throw ValueError("implicit_vjp: the state w has no tensors");
  list::require_like(w_cotangent, w, "implicit_vjp: the cotangent of w");
  if (!params_cotangent.empty()) list::require_like(params_cotangent, params, "implicit_vjp: the cotangent of params");
  if (!o.start.empty()) list::require_like(o.start, w, "implicit_vjp: the start of v");

  const std::size_t nw = w.size();
  TensorList inputs = list::detach(w);
  for (const Tensor& p : params) inputs.push_back(p.detach());

  ImplicitResult out;
  TapeScope scope;  // Φ's recording is dropped on return
  const Vjp rec = vjp(
      [&](const TensorList& x) {
        const auto mid = x.begin() + static_cast<std::ptrdiff_t>(nw);
        return phi(TensorList(x.begin(), mid), TensorList(mid, x.end()));
      },
      inputs);
  list::require_like(rec.value, w, "implicit_vjp: the map's value against w");

  std::vector<std::size_t> state(nw);
  std::iota(state.begin(), state.end(), std::size_t{0});
  const Pullback through_w = rec.pullback.with_respect_to(state);
  const linsolve::Operator A = linsolve::Operator::identity_minus(
      [&through_w](const TensorList& u) { return through_w(u); },
      [&through_w](const TensorList& u) { return jacobian_product(through_w, u); }, o.symmetry);
  linsolve::Options lo = o.linear;
  lo.verify_residual = false;  // the final pullback below gives ∂_wΦᵀv for free
  linsolve::Solution s = o.solver(A, list::detach(w_cotangent), o.start, lo);

  // (∂_wΦᵀ v, ∂_pΦᵀ v) in one sweep: the cross term and the true residual v − ∂_wΦᵀv − ḡ_w.
  const TensorList both = rec.pullback(s.x);
  TensorList r = list::clone(s.x);
  list::axpy(-1.0, TensorList(both.begin(), both.begin() + static_cast<std::ptrdiff_t>(nw)), r);
  list::axpy(-1.0, w_cotangent, r);
  // With a ridge the solver met its target on the shifted system; this residual is the
  // unshifted one, which the ridge keeps above the tolerance by design: report it, do not judge it.
  if (lo.ridge == 0.0) linsolve::record_true_residual(s.report, list::norm(r), w_cotangent);
  else s.report.residual = list::norm(r);

  out.grad.reserve(params.size());
  for (std::size_t j = 0; j < params.size(); ++j) {
    Tensor g = both[nw + j].detach();
    out.grad.push_back(params_cotangent.empty() ? g : (params_cotangent[j].detach() + g).detach());
  }
  out.v = std::move(s.x);
  out.report = std::move(s.report);
  return out;
}

}  // namespace hyperad
