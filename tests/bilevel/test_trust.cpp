// The checks behind Diagnostics::concerns / trusted(): each case where a method used to
// return a wrong hypergradient without a word now says so (and throws in strict mode), and
// well-posed problems raise nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bilevel/ridge_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/reference.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using hyperad::testing::Ridge;

namespace {

bool has(const Diagnostics& d, Doubt doubt) {
  for (const Concern& c : d.concerns)
    if (c.doubt == doubt) return true;
  return false;
}

std::string concerns_of(const Diagnostics& d) {
  std::string s;
  for (const Concern& c : d.concerns) s += std::string(doubt_name(c.doubt)) + ": " + c.message + "\n";
  return s;
}

// The largest eigenvalue of a symmetric d × d matrix (power iteration).
double lambda_max(const std::vector<double>& h, std::int64_t d) {
  std::vector<double> v(static_cast<std::size_t>(d), 1.0), u(v.size());
  double l = 0;
  for (int it = 0; it < 2000; ++it) {
    double nu = 0;
    for (std::int64_t i = 0; i < d; ++i) {
      u[i] = 0;
      for (std::int64_t j = 0; j < d; ++j) u[i] += h[i * d + j] * v[j];
      nu += u[i] * u[i];
    }
    nu = std::sqrt(nu);
    for (std::int64_t i = 0; i < d; ++i) v[i] = u[i] / nu;
    l = nu;
  }
  return l;
}

// Φ(w) = a·w + λ, E(w) = ½w²: for a > 1 the iteration from 0 grows (no contraction), yet its
// fixed point w* = λ/(1 − a) exists and df/dλ = w*/(1 − a).
Problem affine(double a) {
  return Problem::from_map([a](const TensorList& w, const TensorList& l) { return TensorList{a * w[0] + l[0]}; },
                           [](const TensorList& w, const TensorList&) { return 0.5 * sum(square(w[0])); },
                           {zeros({1})}, linsolve::Symmetry::symmetric);
}

}  // namespace

TEST_CASE("a map that is not a contraction (Φ = 1.01 w + λ): every method says so; strict mode throws") {
  const Problem p = affine(1.01);
  const TensorList lam{ones({1})};
  ITD itd({.inner_steps = 100});
  AID fp({.inner_steps = 100, .solver = linsolve::richardson(), .linear_steps = 100});
  AID gmres({.inner_steps = 100, .solver = linsolve::gmres(), .linear_steps = 100});
  for (HypergradientMethod* m : std::initializer_list<HypergradientMethod*>{&itd, &fp, &gmres}) {
    CAPTURE(m->name());
    const Hypergradient h = m->hypergradient(p, lam);
    CAPTURE(concerns_of(h.diagnostics));
    CHECK_FALSE(h.diagnostics.trusted());
    CHECK(has(h.diagnostics, Doubt::inner_not_contracting));
    REQUIRE_FALSE(h.diagnostics.warnings.empty());
    CHECK(h.diagnostics.warnings.front().find("not contracting") != std::string::npos);
    m->set_strict(true);
    CHECK_THROWS_WITH_AS(m->hypergradient(p, lam), doctest::Contains("the hypergradient cannot be trusted"),
                         UntrustedError);
  }
  // AID-FP's linear iteration diverges too (v ← 1.01 v + g): its residual is worse than v = 0.
  fp.set_strict(false);
  CHECK(has(fp.hypergradient(p, lam).diagnostics, Doubt::linear_not_solved));
  // A contraction (a = 0.9) raises nothing, with or without strict mode.
  const Problem good = affine(0.9);
  for (HypergradientMethod* m : std::initializer_list<HypergradientMethod*>{&itd, &fp, &gmres}) {
    CAPTURE(m->name());
    m->set_strict(true);
    const Hypergradient h = m->hypergradient(good, lam);
    CHECK(h.diagnostics.trusted());
    CHECK(std::abs(h.grad[0].item() - 100.0) < 1e-2);  // w* = 10, df/dλ = w*/(1 − a) = 100
  }
}

TEST_CASE("gradient descent with a step above 2/L: AID-CG's answer is flagged") {
  Ridge r(40, 6, 3);
  const Tensor lam = full({6}, -1.0);
  const double L = lambda_max(r.hessian(lam), 6);
  const Problem p = Problem::gradient_descent([&](const TensorList& w, const TensorList& l) { return r.inner_loss(w, l); },
                                              2.05 / L, [&](const TensorList& w, const TensorList& l) { return r.outer(w, l); },
                                              {zeros({6})});
  const Hypergradient h = AID({.inner_steps = 100, .solver = linsolve::cg(), .linear_steps = 30}).hypergradient(p, {lam});
  CAPTURE(concerns_of(h.diagnostics));
  CHECK(has(h.diagnostics, Doubt::inner_not_contracting));
  // At 1/L the same method is trusted and right.
  const Problem ok = r.problem(lam);
  const Hypergradient g = AID({.inner_steps = 2000, .inner_tolerance = Tolerance::absolute(1e-13),
                               .solver = linsolve::cg(), .linear_steps = 30, .linear_tolerance = Tolerance::relative(1e-12)})
                              .hypergradient(ok, {lam});
  CHECK(g.diagnostics.trusted());
  CHECK(list::relative_error(g.grad[0].to_vector(), r.hypergradient(lam)) < 1e-8);
}

TEST_CASE("a singular linear system (no regularization, more features than rows) is flagged by every solver") {
  Ridge r(5, 12, 8);  // XᵀX/n has rank 5 of 12, and ∇E (from other rows) is not in its range
  // L(w, λ) = ½ mean((Xw − y)²) + ½ λ ‖w‖² at λ = 0: no regularization.
  const Problem p = Problem::gradient_descent(
      [&](const TensorList& w, const TensorList& l) {
        return 0.5 * mean(square(matmul(r.X, w[0]) - r.y)) + 0.5 * l[0] * sum(square(w[0]));
      },
      1.0 / r.smoothness(zeros({12})), [&](const TensorList& w, const TensorList& l) { return r.outer(w, l); },
      {zeros({12})});
  const Tensor lam = zeros({});
  const TensorList w =
      solve_inner(p, {lam}, p.initial_state(), {.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-14)}).state;
  for (const linsolve::Solver& s : {linsolve::cg(), linsolve::gmres(), linsolve::normal_cg()}) {
    CAPTURE(s.name());
    AID aid({.solver = s, .linear_steps = 200, .linear_tolerance = Tolerance::relative(1e-10)});
    Hypergradient h;
    // CG's residual may grow past the divergence guard (1e8-fold; it depends on rounding, so
    // on the build): a ConvergenceError also tells the user.
    try {
      h = aid.hypergradient_at(p, {lam}, w);
    } catch (const ConvergenceError& e) {
      CHECK(std::string(e.what()).find("diverged") != std::string::npos);
      continue;
    }
    CAPTURE(concerns_of(h.diagnostics));
    CAPTURE(h.diagnostics.linear.reason);
    CHECK_FALSE(h.diagnostics.trusted());
    // normal-CG's recursive residual (of the normal equations) reaches its tolerance; the
    // true one does not: the drift check turns that "converged" into a breakdown.
    if (s.name() == "normal-CG") CHECK(has(h.diagnostics, Doubt::linear_breakdown));
  }
}

TEST_CASE("a CG breakdown (indefinite system) is a concern, with the solver's reason") {
  // Φ(w) = M w + λ with M = diag(0.5, 1.5): I − M = diag(0.5, −0.5) is indefinite, and CG
  // meets pᵀAp = 0 at once for the cotangent (1, 1).
  const Problem p = Problem::from_map(
      [](const TensorList& w, const TensorList& l) { return TensorList{w[0] * tensor({0.5, 1.5}) + l[0]}; },
      [](const TensorList& w, const TensorList&) { return sum(w[0]); }, {zeros({2})}, linsolve::Symmetry::symmetric);
  const Hypergradient h = AID({.solver = linsolve::cg(), .linear_steps = 10}).hypergradient_at(p, {zeros({2})}, {zeros({2})});
  CAPTURE(concerns_of(h.diagnostics));
  CHECK(has(h.diagnostics, Doubt::linear_breakdown));
  CHECK(h.diagnostics.concerns.front().message.find("broke down") != std::string::npos);
  // GMRES solves the same system: trusted, and exact (v = (2, −2), df/dλ = v).
  const Hypergradient g = AID({.solver = linsolve::gmres(), .linear_steps = 10}).hypergradient_at(p, {zeros({2})}, {zeros({2})});
  CHECK(g.diagnostics.trusted());
  CHECK(std::abs(g.grad[0].at({0}) - 2.0) < 1e-12);
  CHECK(std::abs(g.grad[0].at({1}) + 2.0) < 1e-12);
}

TEST_CASE("ITD through an overflowing iteration: non-finite, not contracting") {
  const Problem p = Problem::from_map([](const TensorList& w, const TensorList& l) { return TensorList{square(w[0]) + l[0]}; },
                                      [](const TensorList& w, const TensorList&) { return sum(w[0]); }, {full({1}, 2.0)});
  ITD itd({.inner_steps = 20});
  const Hypergradient h = itd.hypergradient(p, {zeros({1})});
  CAPTURE(concerns_of(h.diagnostics));
  CHECK(has(h.diagnostics, Doubt::non_finite));
  CHECK(has(h.diagnostics, Doubt::inner_not_contracting));
  itd.set_strict(true);
  CHECK_THROWS_AS(itd.hypergradient(p, {zeros({1})}), UntrustedError);
}

TEST_CASE("well-posed problems raise nothing: ridge by every solver, heavy ball, short ITD") {
  Ridge r(30, 5, 11);
  const Tensor lam = tensor({0.1, -0.3, 0.5, -1.0, 0.0});
  const Problem p = r.problem(lam);
  for (const linsolve::Solver& s : {linsolve::richardson(), linsolve::neumann(), linsolve::cg(), linsolve::gmres(),
                                    linsolve::bicgstab(), linsolve::normal_cg(), linsolve::dense_lu()}) {
    CAPTURE(s.name());
    for (int K : {0, 3, 100}) {
      CAPTURE(K);
      AID aid({.inner_steps = 300, .solver = s, .linear_steps = K});
      aid.set_strict(true);
      CHECK_NOTHROW(aid.hypergradient(p, {lam}));
    }
  }
  for (int t : {1, 3, 8, 50, 500}) {
    CAPTURE(t);
    ITD itd({.inner_steps = t});
    itd.set_strict(true);
    CHECK_NOTHROW(itd.hypergradient(p, {lam}));
  }
  // Heavy ball oscillates; its steps' envelope still shrinks.
  const Problem hb = Problem::heavy_ball([&](const TensorList& w, const TensorList& l) { return r.inner_loss(w, l); },
                                         1.0 / r.smoothness(lam), 0.9,
                                         [&](const TensorList& w, const TensorList& l) { return r.outer(w, l); }, {zeros({5})});
  for (int t : {10, 37, 200, 2000}) {
    CAPTURE(t);
    AID gm({.inner_steps = t, .solver = linsolve::gmres(), .linear_steps = 30});
    gm.set_strict(true);
    CHECK_NOTHROW(gm.hypergradient(hb, {lam}));
    ITD itd({.inner_steps = t});
    itd.set_strict(true);
    CHECK_NOTHROW(itd.hypergradient(hb, {lam}));
  }
}

TEST_CASE("contraction_estimate says when its power iteration has not settled") {
  // Φ(w) = M w + λ, M = diag(0.900 … 0.998): q = 0.998, the next eigenvalue close by.
  std::vector<double> m(40);
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = 0.9 + 0.098 * static_cast<double>(i) / 39.0;
  const Tensor M = tensor(m, {40});
  const Problem p = Problem::from_map([M](const TensorList& w, const TensorList& l) { return TensorList{M * w[0] + l[0]}; },
                                      [](const TensorList& w, const TensorList&) { return sum(w[0]); }, {zeros({40})},
                                      linsolve::Symmetry::symmetric);
  const TensorList w{zeros({40})}, lam{zeros({40})};
  const ContractionEstimate quick = contraction_estimate(p, w, lam, 50);
  CHECK(quick.q < 0.998);
  CHECK_FALSE(quick.settled());  // and says so
  CHECK(quick.q == estimate_contraction(p, w, lam, 50));
  const ContractionEstimate longer = contraction_estimate(p, w, lam, 20000);
  CHECK(longer.settled());
  CHECK(std::abs(longer.q - 0.998) < 1e-4);
  CHECK_THROWS_AS(contraction_estimate(p, w, lam, 0), ValueError);
}
