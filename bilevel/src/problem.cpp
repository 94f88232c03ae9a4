#include "hyperad/bilevel/problem.hpp"

#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"

namespace hyperad::bilevel {

namespace {
void require_state(const Tensors& w, const char* what) {
  if (w.empty()) throw ValueError(fmt::format("Problem: {} is empty (the inner state needs at least one tensor)", what));
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!w[i].defined()) throw ValueError(fmt::format("Problem: tensor {} of {} is undefined", i, what));
}

// ∇_w L(w, λ). When Φ's result must be differentiable (recording on, and w or λ requires
// gradients) the gradient is recorded with create_graph, so AID's pullbacks and ITD's
// reverse pass go through it (second order). Otherwise it is computed in a scope of its
// own and rewound, so plain evaluations of Φ (inner solves, untaped checkpoint sweeps)
// leave nothing on the tape.
Tensors inner_gradient(const ScalarFn& loss, const Tensors& w, const Tensors& lambda) {
  auto scalar_loss = [&loss, &lambda](const Tensors& ws) {
    Tensor l = loss(ws, lambda);
    if (l.numel() != 1)
      throw ShapeError(fmt::format("Problem: the inner loss must be a scalar, got shape {}", l.shape().str()));
    return l;
  };
  bool differentiable = false;
  if (Tape::current().recording()) {
    for (const Tensor& x : w) differentiable = differentiable || x.requires_grad();
    for (const Tensor& x : lambda) differentiable = differentiable || x.requires_grad();
  }
  if (!differentiable) {
    TapeScope scope;
    EnableGradGuard on;
    GradOptions o;
    o.allow_unused = true;
    Tensors ws = make_leaves(w);
    return detach_all(grad(scalar_loss(ws), ws, o));
  }
  Tensors ws;
  for (const Tensor& x : w) ws.push_back(x.requires_grad() ? x : x.detach().requires_grad_());
  GradOptions o;
  o.create_graph = true;
  o.allow_unused = true;
  return grad(scalar_loss(ws), ws, o);
}
}  // namespace

Problem Problem::from_map(InnerMap phi, ScalarFn outer, Tensors w0, bool symmetric_jacobian) {
  require_state(w0, "w0");
  Problem p;
  p.phi_ = std::move(phi);
  p.outer_ = std::move(outer);
  p.n_weights_ = w0.size();
  p.state0_ = detach_all(w0);
  p.symmetric_ = symmetric_jacobian;
  return p;
}

Problem Problem::gradient_descent(ScalarFn inner_loss, double step_size, ScalarFn outer, Tensors w0) {
  if (!(step_size > 0.0) || !std::isfinite(step_size))
    throw ValueError(fmt::format("Problem::gradient_descent: the step size must be positive, got {}", step_size));
  InnerMap phi = [loss = std::move(inner_loss), step_size](const Tensors& w, const Tensors& lambda) {
    Tensors g = inner_gradient(loss, w, lambda);
    Tensors next;
    for (std::size_t i = 0; i < w.size(); ++i) next.push_back(w[i] - step_size * g[i]);
    return next;
  };
  Problem p = from_map(std::move(phi), std::move(outer), std::move(w0), true);
  p.kind_ = MapKind::gradient_step;
  p.step_ = step_size;
  return p;
}

Problem Problem::heavy_ball(ScalarFn inner_loss, double step_size, double momentum, ScalarFn outer, Tensors w0) {
  if (!(step_size > 0.0) || !std::isfinite(step_size))
    throw ValueError(fmt::format("Problem::heavy_ball: the step size must be positive, got {}", step_size));
  if (!(momentum >= 0.0 && momentum < 1.0))
    throw ValueError(fmt::format("Problem::heavy_ball: the momentum must be in [0, 1), got {}", momentum));
  require_state(w0, "w0");
  const std::size_t n = w0.size();
  InnerMap phi = [loss = std::move(inner_loss), step_size, momentum, n](const Tensors& s, const Tensors& lambda) {
    Tensors w(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    Tensors g = inner_gradient(loss, w, lambda);
    Tensors next;
    for (std::size_t i = 0; i < n; ++i) next.push_back(w[i] - step_size * g[i] + momentum * (w[i] - s[n + i]));
    for (std::size_t i = 0; i < n; ++i) next.push_back(w[i]);
    return next;
  };
  ScalarFn e = [outer = std::move(outer), n](const Tensors& s, const Tensors& lambda) {
    return outer(Tensors(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n)), lambda);
  };
  Tensors state = w0;
  state.insert(state.end(), w0.begin(), w0.end());
  Problem p = from_map(std::move(phi), std::move(e), std::move(state), false);
  p.kind_ = MapKind::heavy_ball;
  p.step_ = step_size;
  p.n_weights_ = n;
  return p;
}

Tensors Problem::phi(const Tensors& state, const Tensors& lambda) const {
  Tensors next = phi_(state, lambda);
  if (next.size() != state.size())
    throw ShapeError(fmt::format("Problem: the inner map returned {} tensors for a state of {}", next.size(),
                                 state.size()));
  for (std::size_t i = 0; i < next.size(); ++i)
    if (!next[i].defined() || next[i].shape() != state[i].shape())
      throw ShapeError(fmt::format("Problem: the inner map returned shape {} for state tensor {} of shape {}",
                                   next[i].defined() ? next[i].shape().str() : "undefined", i,
                                   state[i].shape().str()));
  return next;
}

Tensor Problem::outer(const Tensors& state, const Tensors& lambda) const {
  Tensor e = outer_(state, lambda);
  if (!e.defined() || e.numel() != 1)
    throw ShapeError(fmt::format("Problem: the outer objective must be a scalar, got {}",
                                 e.defined() ? e.shape().str() : "undefined"));
  return e;
}

Tensors Problem::weights(const Tensors& state) const {
  return Tensors(state.begin(), state.begin() + static_cast<std::ptrdiff_t>(n_weights_));
}

std::string Problem::describe() const {
  switch (kind_) {
    case MapKind::gradient_step:
      return fmt::format("gradient-descent map (step {}), symmetric Jacobian", step_);
    case MapKind::heavy_ball:
      return fmt::format("heavy-ball map (step {}), non-symmetric Jacobian", step_);
    default:
      return symmetric_ ? "inner map with a symmetric Jacobian" : "inner map (Jacobian not known to be symmetric)";
  }
}

// ---- tensor lists -----------------------------------------------------------------------

double distance(const Tensors& a, const Tensors& b) {
  Tensors diff = linsolve::clone(a);
  linsolve::axpy(-1.0, b, diff);
  return linsolve::norm(diff);
}

double relative_error(const std::vector<double>& a, const std::vector<double>& ref) {
  if (a.size() != ref.size())
    throw ShapeError(fmt::format("relative_error: {} values against a reference of {}", a.size(), ref.size()));
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - ref[i]) * (a[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

double relative_error(const Tensors& a, const Tensors& ref) { return relative_error(flatten_all(a), flatten_all(ref)); }

std::vector<double> flatten_all(const Tensors& xs) {
  std::vector<double> v;
  for (const Tensor& x : xs) {
    std::vector<double> p = x.to_vector();
    v.insert(v.end(), p.begin(), p.end());
  }
  return v;
}

Tensors unflatten_like(const std::vector<double>& v, const Tensors& like) {
  Tensors out;
  std::size_t at = 0;
  for (const Tensor& x : like) {
    const auto n = static_cast<std::size_t>(x.numel());
    if (at + n > v.size()) throw ShapeError(fmt::format("unflatten_like: {} values for more elements", v.size()));
    out.push_back(tensor(std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(at),
                                             v.begin() + static_cast<std::ptrdiff_t>(at + n)),
                         x.shape(), x.dtype()));
    at += n;
  }
  if (at != v.size()) throw ShapeError(fmt::format("unflatten_like: {} values for {} elements", v.size(), at));
  return out;
}

}  // namespace hyperad::bilevel
