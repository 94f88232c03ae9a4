#include "hyperad/bilevel/aid.hpp"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "linearization.hpp"

namespace hyperad::bilevel {

namespace ls = hyperad::linsolve;
using detail::PhiPullback;

const char* linear_solver_name(LinearSolver s) {
  switch (s) {
    case LinearSolver::fixed_point: return "FP";
    case LinearSolver::neumann: return "Neumann";
    case LinearSolver::cg: return "CG";
    case LinearSolver::gmres: return "GMRES";
    case LinearSolver::normal_cg: return "normal-CG";
  }
  return "?";
}

AID::AID(AIDOptions options) : options_(options) {
  if (options_.inner_steps < 0) throw ValueError(fmt::format("AID: inner_steps must be >= 0, got {}", options_.inner_steps));
  if (options_.linear_steps < 0)
    throw ValueError(fmt::format("AID: linear_steps must be >= 0, got {}", options_.linear_steps));
  if (options_.linear_tolerance < 0)
    throw ValueError(fmt::format("AID: linear_tolerance must be >= 0, got {}", options_.linear_tolerance));
  if (options_.gmres_restart < 1)
    throw ValueError(fmt::format("AID: gmres_restart must be >= 1, got {}", options_.gmres_restart));
}

void AID::set_iterations(const IterationCounts& c) {
  if (c.cross_batches >= 0)
    throw ValueError(fmt::format("{}: AID's cross term is exact; it takes no J (asked for J = {})", name(), c.cross_batches));
  if (c.inner_steps >= 0) options_.inner_steps = c.inner_steps;
  if (c.linear_steps >= 0) options_.linear_steps = c.linear_steps;
}

std::string AID::name() const { return fmt::format("AID-{}", linear_solver_name(options_.solver)); }

namespace {

Tensors minus(const Tensors& a, const Tensors& b) {
  NoGradGuard off;
  Tensors r;
  for (std::size_t i = 0; i < a.size(); ++i) r.push_back(a[i] - b[i]);
  return r;
}

// Random probe of the symmetry of J = ∂_wΦ: ⟨a, Jᵀb⟩ = ⟨Ja, b⟩ = ⟨b, Jᵀa⟩ iff symmetric (a.s.).
void require_symmetric(const PhiPullback& phi, const Tensors& w, const std::string& method) {
  Generator gen(4242);
  Tensors a, b;
  for (const Tensor& x : w) {
    a.push_back(randn(x.shape(), gen, x.dtype()));
    b.push_back(randn(x.shape(), gen, x.dtype()));
  }
  Tensors jb = phi.wt(b), ja = phi.wt(a);
  const double lhs = ls::dot(a, jb), rhs = ls::dot(b, ja);
  const double scale = ls::norm(a) * std::max(ls::norm(jb), ls::norm(ja));
  if (std::abs(lhs - rhs) > 1e-6 * std::max(scale, 1e-300))
    throw ValueError(fmt::format("{}: ∂_wΦ is not symmetric (random probe: ⟨a, Jᵀb⟩ = {:.6g} but ⟨b, Jᵀa⟩ = {:.6g}); "
                                 "CG needs a symmetric system: use GMRES or normal-equation CG",
                                 method, lhs, rhs));
}

}  // namespace

Hypergradient AID::hypergradient(const Problem& problem, const Tensors& lambda) {
  const auto t0 = std::chrono::steady_clock::now();
  Tape& tape = Tape::current();
  const std::size_t base = tape.memory_bytes();
  tape.reset_peak_memory();
  Hypergradient h;
  Diagnostics& d = h.diagnostics;
  d.method = name();

  const bool warm = options_.warm_start && !previous_w_.empty();
  InnerResult inner = solve_inner(problem, lambda, warm ? previous_w_ : problem.initial_state(),
                                  {.max_steps = options_.inner_steps, .tolerance = options_.inner_tolerance});
  d.inner_steps = inner.steps;
  d.inner_step_norm = inner.last_step_norm;
  const Tensors& w = inner.state;
  {
    TapeScope scope;
    const detail::OuterGradients e = detail::outer_gradients(problem, w, lambda);
    h.objective = e.value;
    const Tensors& gw = e.wrt_w;
    const Tensors& gl = e.wrt_lambda;

    PhiPullback phi(problem, w, lambda);
    if (options_.solver == LinearSolver::cg) {
      if (problem.kind() == MapKind::heavy_ball)
        throw ValueError(fmt::format("{}: the heavy-ball map has a non-symmetric Jacobian; CG needs a symmetric system: "
                                     "use GMRES or normal-equation CG",
                                     name()));
      if (options_.check_symmetry) require_symmetric(phi, w, name());
      else if (!problem.symmetric_jacobian())
        d.warnings.push_back("CG assumes a symmetric ∂_wΦ, which this problem does not declare; "
                             "set check_symmetry to verify it, or use GMRES");
    }

    // (I − ∂_wΦᵀ) v = ∇_wE
    const ls::LinearOp A = [&phi](const Tensors& v) { return minus(v, phi.wt(v)); };
    const Tensors v0 = options_.warm_start && !previous_v_.empty() ? previous_v_ : Tensors{};
    ls::Options lo;
    lo.rtol = options_.linear_tolerance;
    lo.max_iter = options_.linear_steps;
    lo.restart = options_.gmres_restart;
    Tensors v;
    ls::Result res;
    switch (options_.solver) {
      case LinearSolver::fixed_point: res = ls::richardson(A, gw, v0, lo); break;
      case LinearSolver::cg: res = ls::cg(A, gw, v0, lo); break;
      case LinearSolver::gmres: res = ls::gmres(A, gw, v0, lo); break;
      case LinearSolver::normal_cg: {
        // (I − J)(I − Jᵀ) v = (I − J) ∇_wE: symmetric positive definite.
        const ls::LinearOp At = [&phi](const Tensors& u) { return minus(u, phi.jvp(u)); };
        res = ls::cg([&](const Tensors& u) { return At(A(u)); }, At(gw), v0, lo);
        break;
      }
      case LinearSolver::neumann: {
        // v = Σ_{k=0}^{K} (Jᵀ)^k ∇_wE
        Tensors term = ls::clone(gw);
        v = ls::clone(gw);
        for (int k = 0; k < options_.linear_steps; ++k) {
          term = phi.wt(term);
          ls::axpy(1.0, term, v);
          if (!ls::all_finite(v))
            throw ConvergenceError(fmt::format("{}: the Neumann series diverged at term {} (is ∂_wΦ a contraction?)",
                                               name(), k + 1));
        }
        res.iterations = options_.linear_steps;
        break;
      }
    }
    if (options_.solver != LinearSolver::neumann) {
      if (res.diverged)
        throw ConvergenceError(fmt::format("{}: the linear solve diverged: {}", name(), res.reason));
      v = std::move(res.x);
      d.linear_converged = res.converged;
    }
    d.linear_iterations = res.iterations;

    auto [jv, cross] = phi.both(v);
    d.linear_residual = ls::norm(minus(minus(v, jv), gw));
    if (!std::isfinite(d.linear_residual))
      throw ConvergenceError(fmt::format("{}: the linear-system solution is not finite", name()));
    for (std::size_t k = 0; k < lambda.size(); ++k) h.grad.push_back((gl[k] + cross[k]).detach());
    previous_v_ = ls::clone(v);
  }
  previous_w_ = w;
  d.peak_tape_bytes = tape.peak_memory_bytes() > base ? tape.peak_memory_bytes() - base : 0;
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return h;
}

}  // namespace hyperad::bilevel
