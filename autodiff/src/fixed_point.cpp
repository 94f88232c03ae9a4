// fixed_point: iterate without recording, record one op, differentiate implicitly.
#include "hyperad/autodiff/fixed_point.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/record.hpp"

namespace hyperad {

namespace {

struct Payload {
  FixedPointMap phi;
  FixedPointOptions opts;
  std::size_t n_state = 0;
  TensorList w_star, params;  // detached handles, checked against in-place writes
  std::vector<std::uint64_t> w_version, p_version;
  std::shared_ptr<FixedPointReport> report;
};

std::vector<std::uint64_t> versions(const TensorList& xs) {
  std::vector<std::uint64_t> v;
  for (const Tensor& x : xs) v.push_back(x.version());
  return v;
}

// Φ must map the state tuple to a tuple of the same shapes and dtypes.
void check_like_state(const TensorList& out, const TensorList& w0, int iteration) {
  if (out.size() != w0.size())
    throw ShapeError(fmt::format("fixed_point: the map returned {} tensors for a state of {} tensors (iteration {})",
                                 out.size(), w0.size(), iteration));
  for (std::size_t i = 0; i < w0.size(); ++i) {
    if (!out[i].defined())
      throw ValueError(fmt::format("fixed_point: the map returned an undefined tensor for state tensor {} "
                                   "(iteration {})",
                                   i, iteration));
    if (out[i].shape() != w0[i].shape() || out[i].dtype() != w0[i].dtype())
      throw ShapeError(fmt::format("fixed_point: the map returned {} {} for state tensor {} of {} {} (iteration {})",
                                   dtype_name(out[i].dtype()), out[i].shape().str(), i, dtype_name(w0[i].dtype()),
                                   w0[i].shape().str(), iteration));
  }
}

void fail(OnFailure mode, FixedPointReport& rep, std::string msg) {
  if (mode == OnFailure::throw_error) throw ConvergenceError(msg);
  if (mode == OnFailure::warn) fmt::print(stderr, "hyperad warning: {}\n", msg);
  rep.warnings.push_back(std::move(msg));
}

void check_version(const TensorList& xs, const std::vector<std::uint64_t>& was, const char* what) {
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (xs[i].version() != was[i])
      throw TapeError(fmt::format("backward of 'fixed_point': {} {} (shape {}) was modified in place after the "
                                  "forward pass (version {} then, {} now)",
                                  what, i, xs[i].shape().str(), was[i], xs[i].version()));
}

void backward(Backward& b) {
  if (b.create_graph())
    throw TapeError("fixed_point: second-order differentiation through fixed_point is not supported: its backward "
                    "pass solves the adjoint equation outside the tape, so it cannot run with create_graph (grad "
                    "with create_graph, hvp, second-order checks)");
  const Payload& P = b.payload<Payload>();
  check_version(P.w_star, P.w_version, "the fixed point w*, state tensor");
  check_version(P.params, P.p_version, "parameter");
  FixedPointReport& rep = *P.report;
  ++rep.backward_calls;
  const std::size_t n = P.n_state;

  // A converged fixed point does not depend on w0.
  for (std::size_t i = 0; i < n; ++i)
    if (b.needs(static_cast<int>(i))) b.accumulate(static_cast<int>(i), zeros_like(P.w_star[i]));
  bool any_param = false;
  for (std::size_t j = 0; j < P.params.size(); ++j) any_param = any_param || b.needs(static_cast<int>(n + j));
  if (!any_param) return;

  TensorList ubar;
  for (std::size_t k = 0; k < n; ++k) {
    const Tensor& g = b.grad_out(static_cast<int>(k));
    ubar.push_back(g.defined() ? g.detach() : zeros_like(P.w_star[k]));
  }
  ImplicitOptions ao = P.opts.adjoint;
  ao.start.clear();
  const std::shared_ptr<TensorList>& warm = P.opts.adjoint_start;
  if (warm && warm->size() == n) {
    bool fits = true;
    for (std::size_t k = 0; k < n; ++k)
      fits = fits && (*warm)[k].defined() && (*warm)[k].shape() == ubar[k].shape() &&
             (*warm)[k].dtype() == ubar[k].dtype();
    if (fits) ao.start = *warm;
  }
  ImplicitResult res = implicit_vjp(P.phi, P.w_star, P.params, ubar, {}, ao);
  rep.adjoint = res.report;
  if (!res.report.converged())
    fail(P.opts.on_failure, rep,
         fmt::format("fixed_point backward: the adjoint solve ({}) failed: {}", res.report.solver, res.report.reason));
  if (warm) *warm = list::clone(res.v);
  for (std::size_t j = 0; j < P.params.size(); ++j) b.accumulate(static_cast<int>(n + j), std::move(res.grad[j]));
}

const OpDef kFixedPointDef{"fixed_point", backward};

}  // namespace

TensorList fixed_point(const FixedPointMap& phi, const TensorList& w0, const TensorList& params,
                       const FixedPointOptions& o, FixedPointStats* stats) {
  if (!phi) throw ValueError("fixed_point: the map is empty");
  if (w0.empty()) throw ValueError("fixed_point: the initial state has no tensors");
  for (std::size_t i = 0; i < w0.size(); ++i)
    if (!w0[i].defined()) throw ValueError(fmt::format("fixed_point: initial state tensor {} is undefined", i));
  for (std::size_t j = 0; j < params.size(); ++j)
    if (!params[j].defined()) throw ValueError(fmt::format("fixed_point: parameter {} is undefined", j));
  if (o.max_iterations < 1)
    throw ValueError(fmt::format("fixed_point: max_iterations must be >= 1, got {}", o.max_iterations));
  o.tolerance.validate("fixed_point");

  auto rep = std::make_shared<FixedPointReport>();
  if (stats) *stats = rep;
  TensorList p = list::detach(params);
  TensorList w = list::detach(w0);
  {
    NoGradGuard off;
    double best = std::numeric_limits<double>::infinity();
    int best_at = 0;
    for (int k = 1; k <= o.max_iterations; ++k) {
      TensorList next = phi(w, p);
      check_like_state(next, w0, k);
      const double step = list::distance(next, w);
      const double tol = o.tolerance.bound(list::norm(next));
      rep->forward_iterations = k;
      rep->forward_step = step;
      rep->forward_tolerance = tol;
      if (!std::isfinite(step) || !list::all_finite(next)) {
        rep->forward_diverged = true;  // keep w, the last finite iterate
        fail(o.on_failure, *rep,
             fmt::format("fixed_point: the iteration diverges: non-finite iterate at iteration {} (step norm {}{})",
                         k, std::isnan(step) ? std::string("NaN") : fmt::format("{:.3e}", step),
                         best_at > 0 ? fmt::format("; smallest step so far {:.3e} at iteration {}", best, best_at)
                                     : std::string()));
        break;
      }
      w = std::move(next);
      if (step <= tol) {
        rep->forward_converged = true;
        break;
      }
      if (step > o.divergence_factor * best) {
        rep->forward_diverged = true;
        fail(o.on_failure, *rep,
             fmt::format("fixed_point: the iteration diverges: at iteration {} the step norm ||w_k+1 - w_k|| = "
                         "{:.3e} grew {:.3g}-fold above its smallest value {:.3e} (iteration {}); the map is not "
                         "a contraction near the iterate",
                         k, step, step / best, best, best_at));
        break;
      }
      if (step < best) {
        best = step;
        best_at = k;
      }
    }
    if (!rep->forward_converged && !rep->forward_diverged)
      fail(o.on_failure, *rep,
           fmt::format("fixed_point: not converged after {} iterations: step norm ||w_k+1 - w_k|| = {:.3e} > "
                       "tolerance {:.3e} = max(atol {:.1e}, rtol {:.1e} * ||w|| {:.3e})",
                       o.max_iterations, rep->forward_step, rep->forward_tolerance, o.tolerance.atol, o.tolerance.rtol,
                       list::norm(w)));
  }

  auto payload = std::make_shared<Payload>();
  payload->phi = phi;
  payload->opts = o;
  payload->n_state = w0.size();
  payload->w_star = w;
  payload->w_version = versions(w);
  payload->params = p;
  payload->p_version = versions(p);
  payload->report = rep;
  OpAttrs attrs;
  attrs.payload = std::move(payload);

  TensorList inputs = w0;
  inputs.insert(inputs.end(), params.begin(), params.end());
  return record(kFixedPointDef, std::move(w), std::span<const Tensor>(inputs), {}, std::move(attrs));
}

Tensor fixed_point(const std::function<Tensor(const Tensor& w, const TensorList& params)>& phi, const Tensor& w0,
                   const TensorList& params, const FixedPointOptions& options, FixedPointStats* stats) {
  if (!phi) throw ValueError("fixed_point: the map is empty");
  FixedPointMap tuple_phi = [phi](const TensorList& w, const TensorList& p) { return TensorList{phi(w[0], p)}; };
  return fixed_point(tuple_phi, TensorList{w0}, params, options, stats)[0];
}

}  // namespace hyperad
