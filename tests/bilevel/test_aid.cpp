// AID with every linear solver: accuracy against closed forms and the exact reference,
// linear convergence rates, identities between methods, non-symmetric maps, misuse.
#include <doctest/doctest.h>

#include <cmath>

#include "bilevel/ridge_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/reference.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using hyperad::testing::Ridge;

namespace {

std::vector<double> flat(const Hypergradient& h) { return list::flatten(h.grad); }

// Least-squares slope of log(err) against x.
double log_slope(const std::vector<double>& x, const std::vector<double>& err) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += std::log(err[i]);
  }
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(x.size());
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (std::log(err[i]) - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return sxy / sxx;
}

const AIDOptions converged_inner{.inner_steps = 100000, .inner_tolerance = Tolerance::absolute(1e-14)};

AIDOptions with(AIDOptions o, const linsolve::Solver& s, int k, double tol = 0.0) {
  o.solver = s;
  o.linear_steps = k;
  o.linear_tolerance = Tolerance::relative(tol);
  return o;
}

// Binary logistic regression with per-feature ℓ2 regularization e^λ (labels ±1).
struct Logistic {
  Tensor X, y, Xv, yv;
  Logistic(std::int64_t n, std::int64_t d, std::uint64_t seed) {
    Generator g(seed);
    Tensor w = randn({d}, g);
    X = randn({n, d}, g);
    Xv = randn({n, d}, g);
    y = sign(matmul(X, w) + 0.5 * randn({n}, g));
    yv = sign(matmul(Xv, w) + 0.5 * randn({n}, g));
  }
  Problem problem(double step) const {
    return Problem::gradient_descent(
        [this](const TensorList& w, const TensorList& l) {
          return mean(softplus(-y * matmul(X, w[0]))) + 0.5 * sum(exp(l[0]) * square(w[0]));
        },
        step, [this](const TensorList& w, const TensorList&) { return mean(softplus(-yv * matmul(Xv, w[0]))); },
        {zeros({X.size(1)})});
  }
};

// Equilibrium model z = tanh(W z + U x + b) with ‖W‖₂ ≤ 0.9; the readout c only in E.
struct Equilibrium {
  Tensor x, target, W, U, b, c;
  explicit Equilibrium(std::uint64_t seed) {
    Generator g(seed);
    const std::int64_t h = 6, in = 4;
    x = randn({in}, g);
    target = tensor({0.7});
    Tensor M = randn({h, h}, g);
    W = M * (0.9 / norm(M).item());  // ‖W‖₂ ≤ ‖W‖_F = 0.9
    U = randn({h, in}, g) * 0.5;
    b = randn({h}, g) * 0.1;
    c = randn({1, h}, g);
  }
  // λ = {W, b, c}; U fixed.
  Problem problem() const {
    return Problem::from_map(
        [this](const TensorList& z, const TensorList& l) { return TensorList{tanh(matmul(l[0], z[0]) + matmul(U, x) + l[1])}; },
        [this](const TensorList& z, const TensorList& l) { return 0.5 * sum(square(matmul(l[2], z[0]) - target)); },
        {zeros({6})});
  }
  TensorList lambda() const { return {W, b, c}; }
};

}  // namespace

TEST_CASE("AID-CG reaches the ridge closed form to 1e-9; FP and GMRES too") {
  Ridge r(40, 6, 3);
  Tensor lam = tensor({-1.0, 0.0, 0.5, -2.0, 1.0, -0.5});
  Problem p = r.problem(lam);
  std::vector<double> truth = r.hypergradient(lam);
  Hypergradient h = AID(with(converged_inner, linsolve::cg(), 200, 1e-14)).hypergradient(p, {lam});
  CHECK(list::relative_error(flat(h), truth) <= 1e-9);
  CHECK(h.diagnostics.linear.converged());
  CHECK(h.diagnostics.linear.residual < 1e-12);
  CHECK(h.diagnostics.method == "AID-CG");
  CHECK(h.diagnostics.warnings.empty());
  CHECK(list::relative_error(flat(AID(with(converged_inner, linsolve::gmres(), 200, 1e-14)).hypergradient(p, {lam})), truth) <= 1e-9);
  CHECK(list::relative_error(flat(AID(with(converged_inner, linsolve::richardson(), 5000, 1e-14)).hypergradient(p, {lam})),
                       truth) <= 1e-9);
  CHECK(list::relative_error(flat(AID(with(converged_inner, linsolve::normal_cg(), 200, 1e-14)).hypergradient(p, {lam})),
                       truth) <= 1e-8);
}

TEST_CASE("AID errors decay linearly in K at the rate the contraction predicts; ITD's in t") {
  Ridge r(60, 5, 8);
  Tensor lam = tensor({-1.0, -0.5, 0.0, 0.5, -1.5});
  Problem p = r.problem(lam);
  std::vector<double> truth = r.hypergradient(lam);
  InnerResult w = solve_inner(p, {lam}, p.initial_state(), {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-14)});
  const double q = estimate_contraction(p, w.state, {lam}, 500);
  REQUIRE(q < 1.0);
  std::vector<double> ks, fp, cg;
  for (int k = 10; k <= 60; k += 10) {
    ks.push_back(k);
    fp.push_back(list::relative_error(flat(AID(with(converged_inner, linsolve::richardson(), k)).hypergradient(p, {lam})), truth));
  }
  // Fixed point: error ~ C q^K, so the slope of log(error) is log q (within 5%).
  const double s_fp = log_slope(ks, fp);
  CHECK(s_fp == doctest::Approx(std::log(q)).epsilon(0.05));
  // CG converges at least at the Chebyshev rate (√κ − 1)/(√κ + 1) of I − Jᵀ = ηH,
  // κ = (1 − q_min)/(1 − q) ≤ 1/(1 − q) (the eigenvalues of J lie in [q_min, q] ⊂ [0, q]).
  std::vector<double> kc;
  for (int k = 1; k <= 4; ++k) {
    kc.push_back(k);
    cg.push_back(list::relative_error(flat(AID(with(converged_inner, linsolve::cg(), k)).hypergradient(p, {lam})), truth));
  }
  const double kappa = 1.0 / (1.0 - q);
  CHECK(log_slope(kc, cg) <= std::log((std::sqrt(kappa) - 1) / (std::sqrt(kappa) + 1)) + 1e-9);
  CHECK(cg.back() < fp.front());
  // ITD: error ~ (a + b t) q^t, so the slope is log q + O(1/t) (within 15% here).
  std::vector<double> ts, itd;
  for (int t = 40; t <= 100; t += 20) {
    ts.push_back(t);
    itd.push_back(list::relative_error(flat(ITD({.inner_steps = t}).hypergradient(p, {lam})), truth));
  }
  CHECK(log_slope(ts, itd) == doctest::Approx(std::log(q)).epsilon(0.15));
}

TEST_CASE("identities: Neumann(K) = FP(K+1); converged truncated ITD(T) = AID-FP(K=T)") {
  Ridge r(30, 4, 9);
  Tensor lam = tensor({0.1, -0.3, 0.4, -1.0});
  Problem p = r.problem(lam);
  for (int k : {0, 3, 10}) {
    std::vector<double> a = flat(AID(with(converged_inner, linsolve::neumann(), k)).hypergradient(p, {lam}));
    std::vector<double> b = flat(AID(with(converged_inner, linsolve::richardson(), k + 1)).hypergradient(p, {lam}));
    CHECK(list::relative_error(a, b) < 1e-13);
  }
  for (int T : {1, 5, 20}) {
    std::vector<double> itd = flat(ITD({.inner_steps = 5000, .reverse_steps = T}).hypergradient(p, {lam}));
    std::vector<double> fp = flat(AID(with(converged_inner, linsolve::richardson(), T)).hypergradient(p, {lam}));
    CHECK(list::relative_error(itd, fp) < 1e-10);
  }
}

TEST_CASE("logistic regression: every method against the exact hypergradient and finite differences") {
  Logistic lg(50, 5, 12);
  Problem p = lg.problem(0.5);
  Tensor lam = tensor({-1.0, 0.0, -2.0, 0.5, -0.5});
  Hypergradient exact = exact_hypergradient(p, {lam});
  Hypergradient fd = finite_difference_hypergradient(p, {lam});
  CHECK(list::relative_error(flat(fd), flat(exact)) < 1e-5);  // FD: inner tol 1e-12 / step 1e-5
  const std::vector<double> e = flat(exact);
  CHECK(list::relative_error(flat(ITD({.inner_steps = 2000}).hypergradient(p, {lam})), e) < 1e-8);
  for (const linsolve::Solver& s : {linsolve::cg(), linsolve::gmres(), linsolve::normal_cg()}) {
    INFO(s.name());
    CHECK(list::relative_error(flat(AID(with(converged_inner, s, 500, 1e-13)).hypergradient(p, {lam})), e) < 1e-8);
  }
  CHECK(list::relative_error(flat(AID(with(converged_inner, linsolve::richardson(), 3000, 1e-13)).hypergradient(p, {lam})), e) <
        1e-8);
  CHECK(list::relative_error(flat(AID(with(converged_inner, linsolve::neumann(), 3000)).hypergradient(p, {lam})), e) < 1e-8);
}

TEST_CASE("the gradient map of a fused loss computes no inner loss value: inner solves, ITD, AID") {
  Logistic lg(50, 5, 12);
  const Problem plain = lg.problem(0.5);
  const Problem fused = Problem::gradient_descent(
      [&lg](const TensorList& w, const TensorList& l) {
        return linear_model_loss(lg.X, w[0], lg.y, LinearLoss::logistic) + 0.5 * sum(exp(l[0]) * square(w[0]));
      },
      0.5, [&lg](const TensorList& w, const TensorList&) { return mean(softplus(-lg.yv * matmul(lg.Xv, w[0]))); },
      {zeros({lg.X.size(1)})});
  const Tensor lam = tensor({-1.0, 0.0, -2.0, 0.5, -0.5});
  const std::uint64_t before = linear_loss_values();
  ITD itd({.inner_steps = 200});
  AID aid(with(converged_inner, linsolve::cg(), 200, 1e-13));
  for (HypergradientMethod* m : {static_cast<HypergradientMethod*>(&itd), static_cast<HypergradientMethod*>(&aid)}) {
    INFO(m->name());
    CHECK(list::relative_error(flat(m->hypergradient(fused, {lam})), flat(m->hypergradient(plain, {lam}))) < 1e-12);
  }
  CHECK(linear_loss_values() == before);
}

TEST_CASE("equilibrium model (non-symmetric map): FP, GMRES, normal-CG converge; CG is refused") {
  Equilibrium eq(21);
  Problem p = eq.problem();
  TensorList lam = eq.lambda();
  Hypergradient exact = exact_hypergradient(p, lam);
  Hypergradient fd = finite_difference_hypergradient(p, lam);
  CHECK(list::relative_error(flat(fd), flat(exact)) < 1e-5);  // FD: inner tol 1e-12 / step 1e-5
  for (const linsolve::Solver& s : {linsolve::richardson(), linsolve::gmres(), linsolve::normal_cg()}) {
    INFO(s.name());
    Hypergradient h = AID(with(converged_inner, s, 2000, 1e-13)).hypergradient(p, lam);
    CHECK(list::relative_error(flat(h), flat(exact)) < 1e-8);
    CHECK(h.grad.size() == 3);
    CHECK(h.grad[0].shape() == Shape{6, 6});
  }
  AIDOptions o = with(converged_inner, linsolve::cg(), 50);
  CHECK_THROWS_WITH_AS(AID(o).hypergradient(p, lam), doctest::Contains("is not symmetric"), ValueError);  // refused
  o.probe_symmetry = false;
  CHECK_FALSE(AID(o).hypergradient(p, lam).diagnostics.warnings.empty());  // probe off: only flagged
  CHECK(estimate_contraction(p, solve_inner(p, lam, p.initial_state(), {.max_iterations = 500}).state, lam) < 0.9);
}

TEST_CASE("heavy-ball inner map works with the non-symmetric solvers") {
  Ridge r(30, 4, 13);
  Tensor lam = tensor({0.2, -0.4, -1.0, 0.3});
  Problem hb = Problem::heavy_ball([&](const TensorList& w, const TensorList& l) { return r.inner_loss(w, l); },
                                   0.5 / r.smoothness(lam), 0.5,
                                   [&](const TensorList& w, const TensorList& l) { return r.outer(w, l); }, {zeros({4})});
  std::vector<double> truth = r.hypergradient(lam);
  for (const linsolve::Solver& s : {linsolve::gmres(), linsolve::normal_cg(), linsolve::richardson()}) {
    INFO(s.name());
    CHECK(list::relative_error(flat(AID(with(converged_inner, s, 3000, 1e-13)).hypergradient(hb, {lam})), truth) < 1e-7);
  }
  CHECK(list::relative_error(flat(ITD({.inner_steps = 3000}).hypergradient(hb, {lam})), truth) < 1e-7);
  CHECK_THROWS_WITH_AS(AID(with(converged_inner, linsolve::cg(), 10)).hypergradient(hb, {lam}),
                       doctest::Contains("AID-CG: linsolve::CG: the operator is declared non-symmetric"), ValueError);
}

TEST_CASE("a user's gradient-step map written with gradient_of works in every solve; plain grad is refused with the cause") {
  Ridge r(30, 4, 17);
  const Tensor lam = tensor({0.2, -0.4, -1.0, 0.3});
  const double eta = 1.0 / r.smoothness(lam);
  auto outer = [&](const TensorList& w, const TensorList& l) { return r.outer(w, l); };
  // Φ(w, λ) = w − η∇_w L(w, λ), written by hand instead of Problem::gradient_descent.
  Problem mine = Problem::from_map(
      [&](const TensorList& w, const TensorList& l) {
        return TensorList{w[0] - eta * gradient_of([&](const TensorList& ws) { return r.inner_loss(ws, l); }, w, l)[0]};
      },
      outer, {zeros({4})}, linsolve::Symmetry::symmetric);
  const std::vector<double> truth = r.hypergradient(lam);
  // Before gradient_of the unrecorded inner solve saw Φ = identity ("converged in 1 step")
  // and finite differences were zero, while ITD and AID returned other numbers.
  InnerResult solved = solve_inner(mine, {lam}, mine.initial_state(), {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-14)});
  CHECK(solved.steps > 10);
  CHECK(list::relative_error(solved.state[0].to_vector(), r.w_star(lam)) < 1e-10);
  CHECK(list::relative_error(flat(AID(with(converged_inner, linsolve::cg(), 200, 1e-14)).hypergradient(mine, {lam})), truth) < 1e-9);
  CHECK(list::relative_error(flat(ITD({.inner_steps = 3000}).hypergradient(mine, {lam})), truth) < 1e-9);
  CHECK(list::relative_error(flat(exact_hypergradient(mine, {lam})), truth) < 1e-10);
  CHECK(list::relative_error(flat(finite_difference_hypergradient(mine, {lam})), truth) < 1e-6);
  // The same map with grad() called directly: the unrecorded solve is refused, naming the cause and the fix.
  Problem plain = Problem::from_map(
      [&](const TensorList& w, const TensorList& l) {
        Tensor wl = w[0].requires_grad() ? w[0] : w[0].detach().requires_grad_();
        GradOptions o;
        o.create_graph = true;
        o.allow_unused = true;
        return TensorList{wl - eta * grad(r.inner_loss({wl}, l), {wl}, o)[0]};
      },
      outer, {zeros({4})}, linsolve::Symmetry::symmetric);
  CHECK_THROWS_WITH_AS(solve_inner(plain, {lam}, plain.initial_state(), {.max_iterations = 10}),
                       doctest::Contains("recording is off here"), TapeError);
  CHECK_THROWS_WITH_AS(finite_difference_hypergradient(plain, {lam}), doctest::Contains("use gradient_of(f, w)"), TapeError);
}

TEST_CASE("outer variables in E only, in Phi only, and in both") {
  Ridge r(30, 3, 14);
  // λ = {reg (Φ only), shift (E only), scale (both)}
  auto L = [&](const TensorList& w, const TensorList& l) {
    return 0.5 * mean(square(matmul(r.X, w[0]) * l[2] - r.y)) + 0.5 * sum(exp(l[0]) * square(w[0]));
  };
  auto E = [&](const TensorList& w, const TensorList& l) {
    return 0.5 * mean(square(matmul(r.Xv, w[0]) * l[2] + l[1] - r.yv)) + 0.1 * sum(square(l[2]));
  };
  Problem p = Problem::gradient_descent(L, 0.05, E, {zeros({3})});
  TensorList lam{tensor({-0.5, 0.0, 0.3}), scalar(0.2), scalar(1.1)};
  Hypergradient exact = exact_hypergradient(p, lam);
  CHECK(list::relative_error(flat(finite_difference_hypergradient(p, lam)), flat(exact)) < 1e-5);
  CHECK(std::abs(exact.grad[1].item()) > 0);
  for (const linsolve::Solver& s : {linsolve::cg(), linsolve::richardson(), linsolve::gmres()}) {
    INFO(s.name());
    CHECK(list::relative_error(flat(AID(with(converged_inner, s, 5000, 1e-13)).hypergradient(p, lam)), flat(exact)) < 1e-8);
  }
  CHECK(list::relative_error(flat(ITD({.inner_steps = 6000}).hypergradient(p, lam)), flat(exact)) < 1e-8);
  // An outer variable in neither Φ nor E gets a zero hypergradient.
  TensorList lam4 = lam;
  lam4.push_back(ones({2}));
  Hypergradient h4 = AID(with(converged_inner, linsolve::cg(), 100, 1e-13)).hypergradient(p, lam4);
  CHECK(h4.grad[3].to_vector() == std::vector<double>{0, 0});
}

TEST_CASE("warm start, memory independent of t, and the failure modes") {
  Ridge r(30, 4, 15);
  Tensor lam = tensor({0.0, -1.0, 0.5, -0.5});
  Problem p = r.problem(lam);
  // Warm start: the second call at the same λ starts at the solution; the inner solve
  // stops at once and the linear solve needs (almost) no iteration.
  AID warm({.inner_steps = 100000, .inner_tolerance = Tolerance::absolute(1e-12), .solver = linsolve::cg(), .linear_steps = 100,
            .linear_tolerance = Tolerance::relative(1e-10), .warm_start = WarmStart::inner_and_linear});
  Hypergradient a = warm.hypergradient(p, {lam});
  Hypergradient b = warm.hypergradient(p, {lam});
  CHECK(b.diagnostics.inner_steps <= 1);
  CHECK(b.diagnostics.linear.iterations < a.diagnostics.linear.iterations);
  CHECK(list::relative_error(flat(a), flat(b)) < 1e-9);
  warm.reset();
  CHECK(warm.hypergradient(p, {lam}).diagnostics.inner_steps == a.diagnostics.inner_steps);

  // AID's tape memory does not depend on the number of inner steps.
  auto peak = [&](int t) {
    return AID({.inner_steps = t, .solver = linsolve::richardson(), .linear_steps = 20}).hypergradient(p, {lam}).diagnostics.peak_tape_bytes;
  };
  const double m100 = static_cast<double>(peak(100)), m2000 = static_cast<double>(peak(2000));
  CHECK(m100 > 0);
  CHECK(m2000 == doctest::Approx(m100).epsilon(0.10));
  // ITD's grows with t.
  CHECK(ITD({.inner_steps = 200}).hypergradient(p, {lam}).diagnostics.peak_tape_bytes >
        5 * ITD({.inner_steps = 20}).hypergradient(p, {lam}).diagnostics.peak_tape_bytes);

  // CG with tolerance 0 after exact convergence: no NaN, the converged iterate.
  Ridge tiny(10, 2, 16);
  Tensor lt = tensor({0.0, 0.0});
  Hypergradient c = AID(with(converged_inner, linsolve::cg(), 50, 0.0)).hypergradient(tiny.problem(lt), {lt});
  CHECK(list::relative_error(flat(c), tiny.hypergradient(lt)) < 1e-10);

  // A linear system that diverges is reported, not returned.
  Problem expanding = Problem::from_map(
      [](const TensorList& w, const TensorList& l) { return TensorList{w[0] * 1.5 - l[0]}; },
      [](const TensorList& w, const TensorList&) { return sum(square(w[0])); }, {ones({3})});
  CHECK_THROWS_WITH_AS(AID({.inner_steps = 0, .solver = linsolve::richardson(), .linear_steps = 200})
                           .hypergradient(expanding, {ones({3})}),
                       doctest::Contains("AID-FP: the linear solve diverged"), ConvergenceError);
  CHECK_THROWS_WITH_AS(AID({.linear_steps = -1}), doctest::Contains("linear_steps must be >= 0"), ValueError);
}
