#include "hyperad/bilevel/problem.hpp"

#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"

namespace hyperad::bilevel {

namespace {
void require_state(const TensorList& w, const char* what) {
  if (w.empty()) throw ValueError(fmt::format("Problem: {} is empty (the inner state needs at least one tensor)", what));
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!w[i].defined()) throw ValueError(fmt::format("Problem: tensor {} of {} is undefined", i, what));
}

// ∇_w L(w, λ). When Φ's result must be differentiable (recording on, and w or λ requires
// gradients) the gradient is recorded with create_graph, so AID's pullbacks and ITD's
// reverse pass go through it (second order). Otherwise it is computed in a scope of its
// own and rewound, so plain evaluations of Φ (inner solves, untaped checkpoint sweeps)
// leave nothing on the tape.
TensorList inner_gradient(const ScalarFn& loss, const TensorList& w, const TensorList& lambda) {
  auto scalar_loss = [&loss, &lambda](const TensorList& ws) {
    Tensor l = loss(ws, lambda);
    if (l.numel() != 1)
      throw ShapeError(fmt::format("Problem: the inner loss must be a scalar, got shape {}", l.shape().str()));
    return l;
  };
  return gradient_of(scalar_loss, w, lambda);
}

// A map parameter's value at λ, checked: one element, finite, in the range `ok` describes.
Tensor checked(const ScalarParameter& p, const TensorList& lambda, const Tensor& like, const char* who,
               const char* what, bool (*ok)(double), const char* range) {
  Tensor v = p.at(lambda);
  if (v.numel() != 1)
    throw ShapeError(fmt::format("{}: the {} must be a one-element tensor, got shape {}", who, what, v.shape().str()));
  const double x = v.detach().item();
  if (!ok(x)) throw ValueError(fmt::format("{}: the {} at λ must be {}, got {}", who, what, range, x));
  if (v.rank() != 0) v = reshape(v, Shape{});
  return v.dtype() == like.dtype() ? v : v.to(like.dtype());
}
bool positive(double x) { return x > 0.0 && std::isfinite(x); }
bool unit_interval(double x) { return x >= 0.0 && x < 1.0; }

void require_constant(const ScalarParameter& p, const char* who, const char* what, bool (*ok)(double),
                      const char* range) {
  if (p.is_constant() && !ok(p.value()))
    throw ValueError(fmt::format("{}: the {} must be {}, got {}", who, what, range, p.value()));
}

// η·g for a constant η (a scalar multiplication, as it always was) or a tensor η(λ).
Tensor scaled(const ScalarParameter& p, const Tensor& value_at_lambda, const Tensor& g) {
  return p.is_constant() ? p.value() * g : value_at_lambda * g;
}
}  // namespace

// ---- ScalarParameter -----------------------------------------------------------------------

ScalarParameter::ScalarParameter(double value) : value_(value) {}

ScalarParameter::ScalarParameter(std::function<Tensor(const TensorList&)> fn)
    : value_(std::numeric_limits<double>::quiet_NaN()), fn_(std::move(fn)) {
  if (!fn_) throw ValueError("ScalarParameter: the function of λ is empty");
}

Tensor ScalarParameter::at(const TensorList& lambda) const { return fn_ ? fn_(lambda) : scalar(value_); }

std::string ScalarParameter::describe() const { return fn_ ? "a function of λ" : fmt::format("{}", value_); }

// ---- Problem -----------------------------------------------------------------------------------

Problem Problem::from_map(InnerMap phi, ScalarFn outer, TensorList w0, linsolve::Symmetry symmetry) {
  require_state(w0, "w0");
  if (!phi) throw ValueError("Problem::from_map: the inner map is empty");
  if (!outer) throw ValueError("Problem::from_map: the outer objective is empty");
  Problem p;
  p.phi_ = std::move(phi);
  p.outer_ = std::move(outer);
  p.n_weights_ = w0.size();
  p.state0_ = list::detach(w0);
  p.symmetry_ = symmetry;
  return p;
}

Problem Problem::gradient_descent(ScalarFn inner_loss, ScalarParameter step_size, ScalarFn outer, TensorList w0) {
  static constexpr const char* who = "Problem::gradient_descent";
  require_constant(step_size, who, "step size", positive, "positive");
  if (!inner_loss) throw ValueError("Problem::gradient_descent: the inner loss is empty");
  InnerMap phi = [loss = std::move(inner_loss), step_size](const TensorList& w, const TensorList& lambda) {
    const TensorList g = inner_gradient(loss, w, lambda);
    const Tensor eta =
        step_size.is_constant() ? Tensor{} : checked(step_size, lambda, w[0], who, "step size", positive, "positive");
    TensorList next;
    for (std::size_t i = 0; i < w.size(); ++i) next.push_back(w[i] - scaled(step_size, eta, g[i]));
    return next;
  };
  Problem p = from_map(std::move(phi), std::move(outer), std::move(w0), linsolve::Symmetry::symmetric);
  p.kind_ = MapKind::gradient_step;
  p.step_ = std::move(step_size);
  return p;
}

Problem Problem::heavy_ball(ScalarFn inner_loss, ScalarParameter step_size, ScalarParameter momentum, ScalarFn outer,
                            TensorList w0) {
  static constexpr const char* who = "Problem::heavy_ball";
  require_constant(step_size, who, "step size", positive, "positive");
  require_constant(momentum, who, "momentum", unit_interval, "in [0, 1)");
  if (!inner_loss) throw ValueError("Problem::heavy_ball: the inner loss is empty");
  require_state(w0, "w0");
  const std::size_t n = w0.size();
  InnerMap phi = [loss = std::move(inner_loss), step_size, momentum, n](const TensorList& s, const TensorList& lambda) {
    const TensorList w(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    const TensorList g = inner_gradient(loss, w, lambda);
    const Tensor eta =
        step_size.is_constant() ? Tensor{} : checked(step_size, lambda, w[0], who, "step size", positive, "positive");
    const Tensor mu =
        momentum.is_constant() ? Tensor{} : checked(momentum, lambda, w[0], who, "momentum", unit_interval, "in [0, 1)");
    TensorList next;
    for (std::size_t i = 0; i < n; ++i)
      next.push_back(w[i] - scaled(step_size, eta, g[i]) + scaled(momentum, mu, w[i] - s[n + i]));
    for (std::size_t i = 0; i < n; ++i) next.push_back(w[i]);
    return next;
  };
  ScalarFn e = [outer = std::move(outer), n](const TensorList& s, const TensorList& lambda) {
    return outer(TensorList(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n)), lambda);
  };
  TensorList state = w0;
  state.insert(state.end(), w0.begin(), w0.end());
  Problem p = from_map(std::move(phi), std::move(e), std::move(state), linsolve::Symmetry::nonsymmetric);
  p.kind_ = MapKind::heavy_ball;
  p.step_ = std::move(step_size);
  p.n_weights_ = n;
  return p;
}

Problem Problem::solved_by(InnerSolver solver) const {
  if (!solver) throw ValueError("Problem::solved_by: the inner solver is empty");
  Problem p = *this;
  p.solver_ = std::move(solver);
  return p;
}

Problem Problem::solved_by(const Problem& other) const {
  list::require_like(other.weights(other.initial_state()), weights(initial_state()),
                     "Problem::solved_by: the solver problem's weights against this problem's");
  Problem self = *this;
  self.solver_ = nullptr;
  return solved_by([other, self](const TensorList& lambda, const TensorList& start, const InnerOptions& o) {
    InnerResult r = solve_inner(other, lambda, other.state_of(self.weights(start)), o);
    r.state = self.state_of(other.weights(r.state));
    return r;
  });
}

TensorList Problem::phi(const TensorList& state, const TensorList& lambda) const {
  TensorList next = phi_(state, lambda);
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

Tensor Problem::outer(const TensorList& state, const TensorList& lambda) const {
  Tensor e = outer_(state, lambda);
  if (!e.defined() || e.numel() != 1)
    throw ShapeError(fmt::format("Problem: the outer objective must be a scalar, got {}",
                                 e.defined() ? e.shape().str() : "undefined"));
  return e;
}

TensorList Problem::weights(const TensorList& state) const {
  return TensorList(state.begin(), state.begin() + static_cast<std::ptrdiff_t>(n_weights_));
}

TensorList Problem::state_of(const TensorList& weights) const {
  list::require_like(weights, TensorList(state0_.begin(), state0_.begin() + static_cast<std::ptrdiff_t>(n_weights_)),
                     "Problem::state_of: the weights");
  TensorList s = weights;
  if (kind_ == MapKind::heavy_ball) s.insert(s.end(), weights.begin(), weights.end());
  return s;
}

std::string Problem::describe() const {
  std::string s;
  switch (kind_) {
    case MapKind::gradient_step:
      s = fmt::format("gradient-descent map (step {}), symmetric Jacobian", step_.describe());
      break;
    case MapKind::heavy_ball:
      s = fmt::format("heavy-ball map (step {}), non-symmetric Jacobian", step_.describe());
      break;
    default:
      s = symmetric_jacobian() ? "inner map with a symmetric Jacobian"
                               : "inner map (Jacobian not known to be symmetric)";
  }
  return solver_ ? s + ", solved by its own inner solver" : s;
}

}  // namespace hyperad::bilevel
