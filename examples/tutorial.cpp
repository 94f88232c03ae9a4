// The program of docs/tutorial.md, step by step (the tutorial quotes it; keep both in sync).
// Learns one ℓ2 regularization weight per feature of a logistic regression by
// hypergradient descent on the validation loss. Exits non-zero if a check fails.
#include <cmath>

#include "hyperad/bilevel.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

bool check(bool ok, const char* what) {
  fmt::print("{:<58} {}\n", what, ok ? "ok" : "FAILED");
  return ok;
}

}  // namespace

int main() {
  bool ok = true;

  // [data]
  // Synthetic binary classification: n training and n validation points, d features,
  // labels in {-1, +1}. Only the first 3 features carry signal.
  const std::int64_t n = 200, d = 10;
  Generator gen(42);
  Tensor w_true = zeros({d});
  for (std::int64_t j = 0; j < 3; ++j) w_true.set({j}, 2.0);
  Tensor X = randn({n, d}, gen), Xv = randn({n, d}, gen);
  Tensor y = sign(matmul(X, w_true) + randn({n}, gen));
  Tensor yv = sign(matmul(Xv, w_true) + randn({n}, gen));
  // [data]

  // [model]
  // A model is a plain C++ function of tensors written with the DSL ops.
  auto train_loss = [&](const TensorList& in) {
    const Tensor& w = in[0];
    return logistic_loss(matmul(X, w), y) + 0.05 * sum(square(w));
  };
  Tensor w0 = 0.1 * randn({d}, gen);
  ValueAndGrad vg = value_and_grad(train_loss, {w0});
  fmt::print("loss {:.6f}, |grad| {:.6f}\n", vg.value.item(), norm(vg.grads[0]).item());

  // Reverse mode against central finite differences (first and second order).
  CheckReport first = check_gradient(train_loss, {w0});
  CheckReport second = check_second_order(train_loss, {w0});
  // [model]
  ok &= check(first.ok, "gradient matches finite differences");
  ok &= check(second.ok, "Hessian matches finite differences of the gradient");

  // [problem]
  // Inner: the training loss with penalty ½ Σ e^{λ_j} w_j² (e^λ keeps it positive);
  // outer: the validation loss at the inner solution w(λ).
  auto inner = [&](const TensorList& w, const TensorList& lam) {
    return logistic_loss(matmul(X, w[0]), y) + 0.5 * sum(exp(lam[0]) * square(w[0]));
  };
  auto outer = [&](const TensorList& w, const TensorList&) { return logistic_loss(matmul(Xv, w[0]), yv); };
  // Φ = w − η∇L contracts for η < 2/L_smooth. L_smooth ≤ ‖X‖²_F/(4n) + max e^λ, and λ ≤ 1
  // throughout (the outer loop's box below).
  const double smooth = squared_norm(X).item() / (4.0 * n) + std::exp(1.0);
  Problem problem = Problem::gradient_descent(inner, 1.0 / smooth, outer, {zeros({d})});
  TensorList lambda{full({d}, -1.0)};
  // [problem]
  fmt::print("{}\n", problem.describe());

  // [methods]
  ITD itd({.inner_steps = 300});
  AID fp({.inner_steps = 300, .solver = linsolve::richardson(), .linear_steps = 300});
  AID cg({.inner_steps = 300, .solver = linsolve::cg(), .linear_steps = 50, .linear_tolerance = Tolerance::relative(1e-10)});
  Hypergradient exact = exact_hypergradient(problem, lambda);  // dense LU, small problems only
  Hypergradient fd = finite_difference_hypergradient(problem, lambda);
  for (HypergradientMethod* m : std::initializer_list<HypergradientMethod*>{&itd, &fp, &cg}) {
    Hypergradient h = m->hypergradient(problem, lambda);
    fmt::print("{:<10} rel. error {:.1e}  {:.2f} ms\n", m->name(), list::relative_error(h.grad, exact.grad), 1e3 * h.diagnostics.seconds);
  }
  fmt::print("{:<10} rel. error {:.1e}  {:.2f} ms\n", "FD", list::relative_error(fd.grad, exact.grad), 1e3 * fd.diagnostics.seconds);
  // [methods]
  ok &= check(list::relative_error(cg.hypergradient(problem, lambda).grad, exact.grad) < 1e-6, "AID-CG agrees with the exact hypergradient");
  ok &= check(list::relative_error(fd.grad, exact.grad) < 1e-4, "finite differences agree with the exact hypergradient");

  // [diagnostics]
  Hypergradient h = cg.hypergradient(problem, lambda);
  const Diagnostics& dg = h.diagnostics;
  fmt::print("{}: {} inner steps (last step norm {:.1e}), {} CG iterations, residual {:.1e} ({}), "
             "peak tape {} bytes\n",
             dg.method, dg.inner_steps, dg.inner_step_norm, dg.linear.iterations, dg.linear.residual,
             dg.linear.converged() ? "converged" : "not converged", dg.peak_tape_bytes);
  for (const std::string& w : dg.warnings) fmt::print("warning: {}\n", w);
  InnerResult sol = solve_inner(problem, lambda, problem.initial_state(), {.max_iterations = 300});
  fmt::print("contraction q ≈ {:.4f}\n", estimate_contraction(problem, sol.state, lambda));
  // [diagnostics]
  ok &= check(dg.linear.converged() && dg.inner_step_norm < 1e-6, "AID-CG: inner solve and linear system converged");

  // [map]
  // Φ given directly: an equilibrium w = tanh(A w + λ) with ‖A‖₂ < 1 (a contraction whose
  // Jacobian is not symmetric: CG does not apply, GMRES does).
  Tensor A = 0.3 * randn({d, d}, gen) / std::sqrt(static_cast<double>(d));
  Tensor target = randn({d}, gen);
  Problem eq = Problem::from_map(
      [A](const TensorList& w, const TensorList& lam) { return TensorList{tanh(matmul(A, w[0]) + lam[0])}; },
      [target](const TensorList& w, const TensorList&) { return 0.5 * sum(square(w[0] - target)); }, {zeros({d})});
  AID gmres({.inner_steps = 100, .solver = linsolve::gmres(), .linear_steps = 50});
  Hypergradient he = gmres.hypergradient(eq, {zeros({d})});
  // [map]
  ok &= check(list::relative_error(he.grad, exact_hypergradient(eq, {zeros({d})}).grad) < 1e-8, "AID-GMRES on a non-symmetric map agrees");

  const double before = outer_value(problem, lambda, {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-10)});
  // [outer]
  // Projected hypergradient descent on the box λ ∈ [−6, 1]: e^λ ≤ e keeps the step size
  // 1/smooth valid (Φ stays a contraction). Warm starts reuse the previous w_t and v, so a
  // few inner and CG steps per outer step suffice.
  AID method({.inner_steps = 50, .solver = linsolve::cg(), .linear_steps = 20});
  OuterOptions opts;
  opts.outer_steps = 60;
  opts.update = OuterUpdate::adam;
  opts.step_size = StepSizeSchedule::constant(0.1);
  opts.warm_start = WarmStart::inner_and_linear;
  OuterOptimizer opt(problem, method, lambda, opts, {Projection::box(-6.0, 1.0)});
  const std::vector<OuterRecord>& history = opt.run();
  for (const OuterRecord& r : history)
    if (r.step % 10 == 0 || r.step + 1 == opts.outer_steps)
      fmt::print("step {:>3}  validation loss {:.5f}  |h| {:.2e}\n", r.step, r.objective, r.grad_norm);
  // [outer]
  const double after = outer_value(problem, opt.lambda(), {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-10)});
  fmt::print("validation loss at the inner solution: {:.5f} -> {:.5f}\n", before, after);
  ok &= check(after < before, "hypergradient descent lowered the validation loss");
  std::vector<double> lam_final = opt.lambda()[0].to_vector();
  bool inside = true;
  for (double v : lam_final) inside = inside && v >= -6.0 && v <= 1.0;
  ok &= check(inside, "every λ_j stayed inside the box");

  // [sid]
  // The same problem on minibatches: SGD inner steps and a stochastic linear solve.
  StochasticProblem sp = StochasticProblem::gradient_descent(
      [&](const TensorList& w, const TensorList& lam, const Batch& b) {
        return logistic_loss(matmul(rows(X, b), w[0]), rows(y, b)) + 0.5 * sum(exp(lam[0]) * square(w[0]));
      },
      1.0 / smooth, n,
      [&](const TensorList& w, const TensorList&, const Batch& b) {
        return logistic_loss(matmul(rows(Xv, b), w[0]), rows(yv, b));
      },
      n, {zeros({d})});
  SID sid(sp, {.inner_steps = 400, .linear_steps = 400, .inner_batch = 50, .linear_batch = 50,
               .inner_step = StepSizeSchedule::inverse(1.0, 50.0), .linear_step = StepSizeSchedule::inverse(1.0, 50.0),
               .seed = 7});
  Hypergradient hs = sid.hypergradient(lambda);
  fmt::print("SID: rel. error {:.1e} using {} sample-gradients\n", list::relative_error(hs.grad, exact.grad), hs.diagnostics.samples);
  // [sid]
  ok &= check(list::relative_error(hs.grad, exact.grad) < 1e-2, "SID agrees with the exact hypergradient to 1 %");

  fmt::print("{}\n", ok ? "tutorial: all checks passed" : "tutorial: FAILED");
  return ok ? 0 : 1;
}
