// Hypergradients of ridge regression with one regularization hyperparameter per feature:
// every method against the exact answer, then a few steps of hypergradient descent on the
// validation loss. Exits non-zero if AID-CG disagrees with the exact hypergradient or the
// validation loss does not fall.
#include "hyperad/bilevel.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

int main() {
  Generator gen(1);
  const std::int64_t n = 80, d = 10;
  Tensor w_true = randn({d}, gen), X = randn({n, d}, gen), Xv = randn({n, d}, gen);
  Tensor y = matmul(X, w_true) + 0.5 * randn({n}, gen), yv = matmul(Xv, w_true) + 0.5 * randn({n}, gen);

  // Inner: ½ mean((Xw − y)²) + ½ Σ e^{λ_j} w_j²; outer: validation mean squared error.
  auto inner = [&](const TensorList& w, const TensorList& lam) {
    return 0.5 * mean(square(matmul(X, w[0]) - y)) + 0.5 * sum(exp(lam[0]) * square(w[0]));
  };
  auto outer = [&](const TensorList& w, const TensorList&) { return 0.5 * mean(square(matmul(Xv, w[0]) - yv)); };
  const double step = 1.0 / (squared_norm(X).item() / static_cast<double>(n) + 1.0);
  Problem problem = Problem::gradient_descent(inner, step, outer, {zeros({d})});
  TensorList lam{zeros({d})};

  Hypergradient exact = exact_hypergradient(problem, lam);
  auto error = [&](const Hypergradient& h) {
    NoGradGuard off;
    return norm(h.grad[0] - exact.grad[0]).item() / norm(exact.grad[0]).item();
  };
  ITD itd({.inner_steps = 200});
  AID fp({.inner_steps = 200, .solver = linsolve::richardson(), .linear_steps = 200});
  AID cg({.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 30});
  fmt::print("{}\n\n{:<22} {:>12} {:>10} {:>10}\n", problem.describe(), "method", "rel. error", "time (ms)", "residual");
  double cg_error = 1;
  for (HypergradientMethod* m : std::initializer_list<HypergradientMethod*>{&itd, &fp, &cg}) {
    Hypergradient h = m->hypergradient(problem, lam);
    fmt::print("{:<22} {:>12.2e} {:>10.2f} {:>10.2e}\n", m->name(), error(h), 1e3 * h.diagnostics.seconds,
               h.diagnostics.linear.residual);
    if (m == &cg) cg_error = error(h);
  }
  Hypergradient fd = finite_difference_hypergradient(problem, lam);
  fmt::print("{:<22} {:>12.2e} {:>10.2f}\n", "finite differences", error(fd), 1e3 * fd.diagnostics.seconds);

  // Hypergradient descent on λ with warm-started AID-CG.
  AID warm({.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 30, .warm_start = WarmStart::inner_and_linear});
  double first = 0, last = 0;
  fmt::print("\n{:>5} {:>16}\n", "step", "validation loss");
  for (int s = 0; s <= 40; ++s) {
    Hypergradient h = warm.hypergradient(problem, lam);
    if (s == 0) first = h.objective;
    last = h.objective;
    if (s % 10 == 0) fmt::print("{:>5} {:>16.6f}\n", s, h.objective);
    lam[0] = lam[0] - 2.0 * h.grad[0];
  }
  const bool ok = cg_error < 1e-6 && last < first;
  fmt::print("\nAID-CG error {:.1e}; validation loss {:.5f} -> {:.5f}: {}\n", cg_error, first, last, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
