// The driver every linear solver runs behind (linsolve.hpp): argument checks, the counted
// and shape-checked operator with the ridge term, the solver's assumptions, the stopping
// rule, the final residual, and the solvers' name table.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <memory>

#include <fmt/format.h>

#include "common.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/linsolve.hpp"

namespace hyperad::linsolve {

const char* status_name(Status s) {
  switch (s) {
    case Status::converged: return "converged";
    case Status::iteration_cap: return "iteration cap";
    case Status::breakdown: return "breakdown";
    case Status::diverged: return "diverged";
  }
  return "?";
}

Operator Operator::identity_minus(LinearMap M, LinearMap Mt, Symmetry symmetry) {
  Operator op;
  op.apply = [M](const TensorList& x) {
    TensorList y = list::clone(x);
    list::axpy(-1.0, M(x), y);
    return y;
  };
  if (Mt)
    op.apply_transposed = [Mt](const TensorList& x) {
      TensorList y = list::clone(x);
      list::axpy(-1.0, Mt(x), y);
      return y;
    };
  op.iteration_matrix = std::move(M);
  op.symmetry = symmetry;
  return op;
}

// ---- the stopping rule ---------------------------------------------------------------------

namespace {
// The relative accuracy of the lists' arithmetic: float32's if any tensor is float32.
double working_epsilon(const TensorList& v) {
  for (const Tensor& t : v)
    if (t.dtype() == Dtype::f32) return std::numeric_limits<float>::epsilon();
  return std::numeric_limits<double>::epsilon();
}
}  // namespace

StoppingRule::StoppingRule(const Options& o, double rhs_norm, const TensorList& like)
    : tolerance_(o.tolerance.bound(rhs_norm)),
      epsilon_(working_epsilon(like)),
      floor_(epsilon_ * rhs_norm),
      divergence_factor_(o.divergence_factor),
      max_iterations_(o.max_iterations) {}

bool StoppingRule::done(double rn, int it, Report& r) {
  best_ = std::min(best_, rn);
  r.residual = rn;
  if (rn <= tolerance_) {
    r.status = Status::converged;
    r.reason = fmt::format("converged: residual {:.3e} <= tolerance {:.3e} after {} iterations", rn, tolerance_, it);
  } else if (rn <= floor_) {
    // Below ε‖b‖ the residual is rounding noise: iterating on (tolerance 0, a large cap) only
    // feeds garbage ratios to the recurrences.
    r.status = Status::converged;
    r.reason = fmt::format("converged to machine precision: residual {:.3e} <= eps*|b| = {:.3e} after {} iterations "
                           "(the tolerance {:.3e} is below what the arithmetic resolves)",
                           rn, floor_, it, tolerance_);
  } else if (!std::isfinite(rn)) {
    r.status = Status::diverged;
    r.reason = fmt::format("diverged: non-finite residual at iteration {}", it);
  } else if (rn > divergence_factor_ * best_) {
    r.status = Status::diverged;
    r.reason = fmt::format("diverged: residual {:.3e} at iteration {} after a smallest residual of {:.3e} (the "
                           "iteration does not contract)",
                           rn, it, best_);
  } else if (it >= max_iterations_) {
    r.status = Status::iteration_cap;
    r.reason = fmt::format("not converged: residual {:.3e} > tolerance {:.3e} after {} iterations", rn, tolerance_, it);
  } else {
    return false;
  }
  return true;
}

// ---- the driver ------------------------------------------------------------------------------

namespace {

void check_options(const Options& o, const std::string& who) {
  o.tolerance.validate(who);
  if (o.max_iterations < 0)
    throw ValueError(fmt::format("{}: max_iterations must be >= 0, got {}", who, o.max_iterations));
  if (!(o.ridge >= 0.0) || !std::isfinite(o.ridge))
    throw ValueError(fmt::format("{}: the ridge must be finite and >= 0, got {}", who, o.ridge));
  if (!(o.divergence_factor > 1.0))
    throw ValueError(fmt::format("{}: divergence_factor must be > 1, got {}", who, o.divergence_factor));
}

// y = f(x) with f's result checked against x's shapes and dtypes, counted, made a list of
// its own (an operator may return its input, which the solvers then update in place), and
// with ρ x added.
TensorList counted(const LinearMap& f, const TensorList& x, double ridge, Report& r, const char* what) {
  TensorList y = f(x);
  ++r.products;
  if (y.size() != x.size())
    throw ShapeError(fmt::format("linsolve::{}: the {} returned {} tensors for a vector of {}", r.solver, what,
                                 y.size(), x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!y[i].defined() || y[i].shape() != x[i].shape())
      throw ShapeError(fmt::format("linsolve::{}: the {} returned shape {} for tensor {} of shape {}", r.solver, what,
                                   y[i].defined() ? y[i].shape().str() : std::string("(undefined)"), i,
                                   x[i].shape().str()));
    if (y[i].shares_storage(x[i])) y[i] = y[i].detach().clone();
  }
  if (ridge != 0.0) list::axpy(ridge, x, y);
  return y;
}

Operator driven(const Operator& A, double ridge, Report& r) {
  Operator op;
  op.symmetry = A.symmetry;
  op.apply = [&A, ridge, &r](const TensorList& x) { return counted(A.apply, x, ridge, r, "operator"); };
  if (A.apply_transposed)
    op.apply_transposed = [&A, ridge, &r](const TensorList& x) {
      return counted(A.apply_transposed, x, ridge, r, "transposed operator");
    };
  if (A.iteration_matrix)  // I − (A + ρI) = M − ρI
    op.iteration_matrix = [&A, ridge, &r](const TensorList& x) {
      return counted(A.iteration_matrix, x, -ridge, r, "iteration matrix");
    };
  return op;
}

// Random probe of A's symmetry: ⟨a, A c⟩ = ⟨c, A a⟩ for all a, c iff A is symmetric (a.s.).
void require_symmetric(const Operator& A, const TensorList& like, const std::string& solver) {
  Generator gen(4242);
  TensorList a, c;
  for (const Tensor& x : like) {
    a.push_back(randn(x.shape(), gen, x.dtype()));
    c.push_back(randn(x.shape(), gen, x.dtype()));
  }
  const TensorList Ac = A.apply(c), Aa = A.apply(a);
  const double lhs = list::dot(a, Ac), rhs = list::dot(c, Aa);
  const double scale = list::norm(a) * std::max(list::norm(Ac), list::norm(Aa));
  if (std::abs(lhs - rhs) > 1e-6 * std::max(scale, 1e-300))
    throw ValueError(fmt::format("linsolve::{}: the operator is not symmetric (random probe: <a, A b> = {:.6g} but "
                                 "<b, A a> = {:.6g}); {} needs a symmetric operator: use GMRES, BiCGStab or "
                                 "normal-CG",
                                 solver, lhs, rhs, solver));
}

}  // namespace

void record_true_residual(Report& r, double true_residual, const TensorList& like) {
  r.residual = true_residual;
  if (r.status != Status::converged) return;
  if (!std::isfinite(true_residual)) {
    r.status = Status::diverged;
    r.reason = fmt::format("diverged: the residual of the solution is not finite after {} iterations", r.iterations);
    return;
  }
  // A recursive residual (CG, BiCGStab, the normal equations' ‖Aᵀr‖) can drift from the
  // true one on singular or badly conditioned systems: that "converged" is no convergence.
  // Inexact is not wrong: only a true residual far above the target (10×, and above 1e-8‖b‖,
  // which conditioning alone reaches — normal-CG's κ², say) counts as drift.
  const double slack = std::max({10.0 * r.tolerance, 1e-8 * r.rhs_norm, 1e4 * working_epsilon(like) * r.rhs_norm});
  if (true_residual > slack) {
    r.status = Status::breakdown;
    r.reason = fmt::format("the solver reported convergence after {} iterations, but the true residual {:.3e} exceeds "
                           "the tolerance {:.3e} (its recursive residual drifted: the system is likely singular or "
                           "badly conditioned)",
                           r.iterations, true_residual, r.tolerance);
  }
}

Solver::Solver(std::string name, Algorithm algorithm, Traits traits)
    : name_(std::move(name)), algorithm_(std::move(algorithm)), traits_(traits) {
  if (!algorithm_) throw ValueError(fmt::format("linsolve::Solver '{}': the algorithm is empty", name_));
  if (traits_.iteration_cost < 1)
    throw ValueError(fmt::format("linsolve::Solver '{}': iteration_cost must be >= 1, got {}", name_,
                                 traits_.iteration_cost));
}

Solution Solver::operator()(const Operator& A, const TensorList& b, const TensorList& x0, const Options& o) const {
  const std::string who = "linsolve::" + name_;
  check_options(o, who);
  if (!A.apply) throw ValueError(fmt::format("{}: the operator has no apply function", who));
  if (b.empty()) throw ValueError(fmt::format("{}: empty right-hand side", who));
  for (std::size_t i = 0; i < b.size(); ++i)
    if (!b[i].defined()) throw ValueError(fmt::format("{}: right-hand side tensor {} is undefined", who, i));
  if (!x0.empty()) list::require_like(x0, b, who + ": the initial guess against the right-hand side");
  if (traits_.needs_transpose && !A.apply_transposed)
    throw ValueError(fmt::format("{}: {} needs the transposed operator (Operator::apply_transposed)", who, name_));

  Solution s;
  Report& r = s.report;
  r.solver = name_;
  r.iteration_cost = traits_.iteration_cost;
  r.rhs_norm = list::norm(b);
  r.tolerance = o.tolerance.bound(r.rhs_norm);
  const Operator op = driven(A, o.ridge, r);
  if (traits_.needs_symmetric) {
    if (A.symmetry == Symmetry::nonsymmetric)
      throw ValueError(fmt::format("{}: the operator is declared non-symmetric, and {} needs a symmetric one: use "
                                   "GMRES, BiCGStab or normal-CG",
                                   who, name_));
    if (A.symmetry == Symmetry::unknown) {
      if (o.probe_symmetry) require_symmetric(op, b, name_);
      else
        r.warnings.push_back(fmt::format("{} assumes a symmetric operator, and this one's symmetry is unknown: "
                                         "probe it (probe_symmetry), declare it, or use GMRES",
                                         name_));
    }
  }

  s.x = algorithm_(op, b, x0, o, r);
  list::require_like(s.x, b, who + ": the solution against the right-hand side");
  if (o.verify_residual && !traits_.exact_residual)
    record_true_residual(r, list::norm(detail::residual(op, b, s.x)), b);
  if (r.status != Status::diverged && !list::all_finite(s.x)) {
    r.status = Status::diverged;
    r.reason = fmt::format("diverged: the solution has non-finite entries after {} iterations", r.iterations);
  }
  return s;
}

// ---- the name table ----------------------------------------------------------------------------

namespace {
const SolverInfo kSolvers[] = {
    {"FP", "fixed-point (Richardson) iteration; needs a contraction", [] { return richardson(); }},
    {"Neumann", "truncated Neumann series; needs a contraction", [] { return neumann(); }},
    {"CG", "conjugate gradient; needs a symmetric positive definite system", [] { return cg(); }},
    {"GMRES", "restarted GMRES(30); any non-singular system", [] { return gmres(); }},
    {"BiCGStab", "stabilized bi-conjugate gradient; any non-singular system, 2 products per step",
     [] { return bicgstab(); }},
    {"normal-CG", "CG on the normal equations; any non-singular system, needs the transpose",
     [] { return normal_cg(); }},
    {"LU", "dense LU factorization of the assembled matrix; small systems (exact)", [] { return dense_lu(); }},
};

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

std::span<const SolverInfo> solver_table() { return kSolvers; }

Solver solver_named(std::string_view name) {
  std::string names;
  for (const SolverInfo& s : kSolvers) {
    if (same_name(name, s.name)) return s.make();
    names += (names.empty() ? "" : ", ") + std::string(s.name);
  }
  throw ValueError(fmt::format("unknown linear solver '{}'; the solvers are: {}", name, names));
}

}  // namespace hyperad::linsolve
