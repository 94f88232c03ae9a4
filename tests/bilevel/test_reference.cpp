// Reference hypergradients (dense exact, finite differences) and ITD against the ridge
// closed form; the inner solver and the contraction estimate.
#include <doctest/doctest.h>

#include <cmath>

#include "bilevel/ridge_fixture.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/autodiff/checkpoint.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using hyperad::testing::Ridge;

TEST_CASE("exact and finite-difference hypergradients match the ridge closed form") {
  Ridge r(40, 6, 3);
  Tensor lam = tensor({-1.0, 0.0, 0.5, -2.0, 1.0, -0.5});
  Problem p = r.problem(lam);
  std::vector<double> truth = r.hypergradient(lam);
  Hypergradient exact = exact_hypergradient(p, {lam});
  // Newton-corrected: to rounding (the step-norm stop alone left 3.6e-12 on such problems).
  CHECK(list::relative_error(exact.grad[0].to_vector(), truth) < 1e-13);
  CHECK(exact.diagnostics.linear.residual < 1e-12);
  CHECK(exact.diagnostics.inner_error < 1e-11);       // its own estimate of ‖w − w*‖ (rounding level)
  CHECK(exact.diagnostics.inner_step_norm < 1e-15);   // ‖Φ(w) − w‖ after the correction
  // A weaker ℓ2 term (e^λ = 1e-3, a slower contraction) is corrected just as well.
  const Tensor slow = full({6}, std::log(1e-3));
  CHECK(list::relative_error(exact_hypergradient(r.problem(slow), {slow}).grad[0].to_vector(), r.hypergradient(slow)) <
        1e-12);
  Hypergradient fd = finite_difference_hypergradient(p, {lam});
  CHECK(list::relative_error(fd.grad[0].to_vector(), truth) < 1e-6);
  FiniteDifferenceOptions rich;
  rich.richardson = true;
  rich.step = 1e-3;
  CHECK(list::relative_error(finite_difference_hypergradient(p, {lam}, rich).grad[0].to_vector(), truth) < 1e-7);
  // The error estimate is honest: with a large step (the h² term dominates) it matches the
  // true error; with the default (rounding and inner-solve noise dominate) it bounds it.
  auto abs_error = [&](const Hypergradient& h) {
    std::vector<double> g = h.grad[0].to_vector();
    double e = 0;
    for (std::size_t i = 0; i < g.size(); ++i) e += (g[i] - truth[i]) * (g[i] - truth[i]);
    return std::sqrt(e);
  };
  CHECK(abs_error(fd) <= 3 * fd.diagnostics.error_estimate);
  CHECK(fd.diagnostics.error_estimate < 1e-5 * list::norm(fd.grad));
  FiniteDifferenceOptions coarse;
  coarse.step = 3e-2;
  const Hypergradient fd_coarse = finite_difference_hypergradient(p, {lam}, coarse);
  CHECK(abs_error(fd_coarse) > 1e-6);
  CHECK(fd_coarse.diagnostics.error_estimate == doctest::Approx(abs_error(fd_coarse)).epsilon(0.2));
  CHECK(std::isnan(exact.diagnostics.error_estimate));
  FiniteDifferenceOptions serial;
  serial.parallel = false;
  CHECK(finite_difference_hypergradient(p, {lam}, serial).grad[0].to_vector() == fd.grad[0].to_vector());
  CHECK(fd.objective == doctest::Approx(exact.objective).epsilon(1e-10));
}

TEST_CASE("ITD converges to the hypergradient; truncation identities") {
  Ridge r(40, 6, 4);
  Tensor lam = tensor({-1.0, 0.0, 0.5, -2.0, 1.0, -0.5});
  Problem p = r.problem(lam);
  std::vector<double> truth = r.hypergradient(lam);
  ITD full({.inner_steps = 3000});
  Hypergradient h = full.hypergradient(p, {lam});
  CHECK(list::relative_error(h.grad[0].to_vector(), truth) < 1e-8);
  CHECK(h.diagnostics.reverse_steps == 3000);
  CHECK(h.diagnostics.peak_tape_bytes > 0);

  // ITD's error decreases (linearly) with t.
  double e20 = list::relative_error(ITD({.inner_steps = 20}).hypergradient(p, {lam}).grad[0].to_vector(), truth);
  double e80 = list::relative_error(ITD({.inner_steps = 80}).hypergradient(p, {lam}).grad[0].to_vector(), truth);
  CHECK(e80 < 0.5 * e20);

  // Truncated ITD with T = t is full ITD.
  std::vector<double> a = ITD({.inner_steps = 50}).hypergradient(p, {lam}).grad[0].to_vector();
  std::vector<double> b = ITD({.inner_steps = 50, .reverse_steps = 50}).hypergradient(p, {lam}).grad[0].to_vector();
  CHECK(a == b);
  CHECK(ITD({.inner_steps = 50, .reverse_steps = 10}).name() == "truncated ITD (T=10)");
  CHECK_THROWS_WITH_AS(ITD({.inner_steps = 5, .reverse_steps = 6}), doctest::Contains("ITD: reverse_steps must be in [1, inner_steps = 5], got 6"),
                       ValueError);
}

TEST_CASE("the inner solver stops at its tolerance and reports divergence with advice") {
  Ridge r(30, 4, 5);
  Tensor lam = zeros({4});
  Problem p = r.problem(lam);
  InnerResult res = solve_inner(p, {lam}, p.initial_state(), {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-10)});
  CHECK(res.converged);
  CHECK(res.last_step_norm <= 1e-10);
  CHECK(res.steps < 100000);
  std::vector<double> ws = r.w_star(lam), w = res.state[0].to_vector();
  CHECK(list::relative_error(w, ws) < 1e-8);

  Problem bad = Problem::gradient_descent(
      [&](const TensorList& w_, const TensorList& l) { return r.inner_loss(w_, l); },
      5.0 / r.smoothness(lam), [&](const TensorList& w_, const TensorList& l) { return r.outer(w_, l); },
      {zeros({4})});
  CHECK_THROWS_WITH_AS(solve_inner(bad, {lam}, bad.initial_state(), {.max_iterations = 5000}),
                       doctest::Contains("may be too large for this inner loss"), ConvergenceError);
}

TEST_CASE("the contraction estimate matches 1 - eta * lambda_min(H) for a gradient step") {
  Ridge r(50, 5, 6);
  Tensor lam = tensor({0.0, -1.0, -2.0, 0.5, -0.5});
  Problem p = r.problem(lam);
  // Jacobian I − ηH: eigenvalues 1 − η μ_i, the largest is 1 − η μ_min (η ≤ 1/μ_max).
  std::vector<double> h = r.hessian(lam);
  double eta = p.step_size().value();
  // μ_min by inverse power iteration with the LU factorization.
  linsolve::DenseLU lu(h, 5);
  std::vector<double> v(5, 1.0);
  double mu = 0;
  for (int k = 0; k < 500; ++k) {
    std::vector<double> u = lu.solve(v);
    double nn = 0;
    for (double x : u) nn += x * x;
    nn = std::sqrt(nn);
    for (std::size_t i = 0; i < 5; ++i) v[i] = u[i] / nn;
    mu = 1.0 / nn;
  }
  double q = estimate_contraction(p, p.initial_state(), {lam}, 400);
  CHECK(q == doctest::Approx(1.0 - eta * mu).epsilon(1e-6));
}

TEST_CASE("problem construction errors") {
  auto L = [](const TensorList& w, const TensorList&) { return sum(square(w[0])); };
  CHECK_THROWS_WITH_AS(Problem::gradient_descent(L, -1.0, L, {zeros({2})}), doctest::Contains("step size must be positive"),
                       ValueError);
  CHECK_THROWS_WITH_AS(Problem::heavy_ball(L, 0.1, 1.5, L, {zeros({2})}), doctest::Contains("momentum must be in [0, 1)"),
                       ValueError);
  CHECK_THROWS_WITH_AS(Problem::from_map(nullptr, L, {}), doctest::Contains("w0 is empty"), ValueError);
  Problem wrong = Problem::from_map(
      [](const TensorList& w, const TensorList&) { return TensorList{w[0], w[0]}; }, L,
      {zeros({2})});
  CHECK_THROWS_WITH_AS(wrong.phi({zeros({2})}, {}), doctest::Contains("returned 2 tensors for a state of 1"), ShapeError);
}

TEST_CASE("ITD through a checkpointed loop equals fully recorded ITD, in less tape memory") {
  Ridge r(40, 6, 4);
  Tensor lam = tensor({-1.0, 0.0, 0.5, -2.0, 1.0, -0.5});
  Problem p = r.problem(lam);
  Hypergradient full = ITD({.inner_steps = 400}).hypergradient(p, {lam});
  Hypergradient bin = ITD({.inner_steps = 400, .checkpoint = CheckpointPolicy::binomial(20)}).hypergradient(p, {lam});
  Hypergradient trunc = ITD({.inner_steps = 400, .reverse_steps = 100, .checkpoint = CheckpointPolicy::every_k(10)})
                            .hypergradient(p, {lam});
  Hypergradient trunc_full = ITD({.inner_steps = 400, .reverse_steps = 100}).hypergradient(p, {lam});
  CHECK(list::relative_error(bin.grad[0].to_vector(), full.grad[0].to_vector()) < 1e-12);
  CHECK(list::relative_error(trunc.grad[0].to_vector(), trunc_full.grad[0].to_vector()) < 1e-12);
  CHECK(bin.diagnostics.recomputed_steps > 0);
  CHECK(bin.diagnostics.peak_tape_bytes + bin.diagnostics.peak_stored_bytes < full.diagnostics.peak_tape_bytes / 4);
  // Step-norm diagnostics: ‖w_t − w_{t−1}‖ recorded, ‖Φ(w_t) − w_t‖ ≤ q·‖w_t − w_{t−1}‖ checkpointed.
  Hypergradient short_full = ITD({.inner_steps = 20}).hypergradient(p, {lam});
  Hypergradient short_cp = ITD({.inner_steps = 20, .checkpoint = CheckpointPolicy::store_all()}).hypergradient(p, {lam});
  CHECK(short_cp.diagnostics.inner_step_norm > 0);
  CHECK(short_cp.diagnostics.inner_step_norm < short_full.diagnostics.inner_step_norm);
}

TEST_CASE("evaluating a gradient-descent map without recording leaves nothing on the tape") {
  Ridge r(10, 3, 4);
  Tensor lam = zeros({3});
  Problem p = r.problem(lam);
  Tape& tape = Tape::current();
  const std::size_t before = tape.num_records();
  {
    NoGradGuard off;
    (void)p.phi(p.initial_state(), {lam});
  }
  (void)p.phi(p.initial_state(), {lam});  // recording on, but nothing requires gradients
  CHECK(tape.num_records() == before);
}
