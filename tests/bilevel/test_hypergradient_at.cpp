// Hypergradients at a given inner state (hypergradient_at), problems solved by another
// solver (solved_by: heavy ball solves, the gradient-descent map is differentiated) and
// step sizes that are functions of λ (ScalarParameter), against the ridge closed form and
// finite differences.
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
ScalarFn inner_of(const Ridge& r) {
  return [&r](const TensorList& w, const TensorList& l) { return r.inner_loss(w, {l[0]}); };
}
ScalarFn outer_of(const Ridge& r) {
  return [&r](const TensorList& w, const TensorList& l) { return r.outer(w, l); };
}

std::vector<double> flat(const Hypergradient& h) { return list::flatten(h.grad); }

const AIDOptions kPreciseCG{.inner_steps = 0,
                            .solver = linsolve::cg(),
                            .linear_steps = 200,
                            .linear_tolerance = Tolerance::relative(1e-13)};
}  // namespace

TEST_CASE("hypergradient_at: AID and ITD at a w of the caller's, with no inner solve") {
  Ridge r(40, 6, 3);
  const Tensor lam = tensor({-1.0, 0.0, 0.5, -2.0, 1.0, -0.5});
  const Problem p = r.problem(lam);
  const std::vector<double> truth = r.hypergradient(lam);
  // The caller's own solve of the inner problem (here: many steps of the problem's map).
  const InnerResult solved =
      solve_inner(p, {lam}, p.initial_state(), {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-14)});
  REQUIRE(solved.converged);

  AID aid(kPreciseCG);
  const Hypergradient h = aid.hypergradient_at(p, {lam}, solved.state);
  CHECK(list::relative_error(flat(h), truth) < 1e-9);
  CHECK(h.diagnostics.inner_steps == 0);  // no inner solve
  CHECK(h.diagnostics.linear.converged());
  // The same as AID with its own converged inner solve, to rounding.
  AIDOptions own = kPreciseCG;
  own.inner_steps = 100000;
  own.inner_tolerance = Tolerance::absolute(1e-14);
  CHECK(list::relative_error(flat(h), flat(AID(own).hypergradient(p, {lam}))) < 1e-10);

  // At a w far from the solution the hypergradient is wrong, as it must be: the method
  // differentiates where it is told to.
  const Hypergradient at_zero = aid.hypergradient_at(p, {lam}, p.initial_state());
  CHECK(list::relative_error(flat(at_zero), truth) > 1e-3);

  // ITD at w reverses T steps taken from w: the derivative of E(Φ^T(w, λ), λ) with w fixed,
  // checked against central differences of that function.
  const int T = 7;
  ITD itd({.inner_steps = T});
  const Hypergradient hi = itd.hypergradient_at(p, {lam}, p.initial_state());
  auto f = [&](const Tensor& l) {
    NoGradGuard off;
    TensorList w = p.initial_state();
    for (int k = 0; k < T; ++k) w = list::detach(p.phi(w, {l}));
    return p.outer(w, {l}).item();
  };
  const std::vector<double> l0 = lam.to_vector(), g = flat(hi);
  for (std::size_t j = 0; j < l0.size(); ++j) {
    std::vector<double> lp = l0, lm = l0;
    lp[j] += 1e-5;
    lm[j] -= 1e-5;
    const double fd = (f(tensor(lp, lam.shape())) - f(tensor(lm, lam.shape()))) / 2e-5;
    CHECK(g[j] == doctest::Approx(fd).epsilon(1e-6));
  }

  CHECK_THROWS_WITH_AS(aid.hypergradient_at(p, {lam}, {zeros({5})}),
                       doctest::Contains("AID-CG: the inner state w: tensor 0 has shape [5], expected [6]"), ShapeError);
}

TEST_CASE("solved_by: heavy ball solves, the gradient-descent map is differentiated") {
  Ridge r(40, 6, 3);
  const Tensor lam = tensor({-1.0, 0.0, 0.5, -2.0, 1.0, -0.5});
  const Problem gd = r.problem(lam);
  const std::vector<double> truth = r.hypergradient(lam);
  // Heavy ball on the same inner loss, its step size and a momentum of 0.5.
  const Problem hb = Problem::heavy_ball(inner_of(r), gd.step_size(), 0.5, outer_of(r), gd.initial_state());
  const Problem mixed = gd.solved_by(hb);
  CHECK(mixed.initial_state().size() == 1);  // the gradient-descent problem's state
  CHECK(mixed.symmetric_jacobian());         // and its map: CG applies
  AIDOptions o = kPreciseCG;
  o.inner_steps = 5000;
  o.inner_tolerance = Tolerance::absolute(1e-14);
  const Hypergradient h = AID(o).hypergradient(mixed, {lam});
  CHECK(list::relative_error(flat(h), truth) < 1e-9);
  // Heavy ball converges in fewer steps than gradient descent on this problem.
  const Hypergradient plain = AID(o).hypergradient(gd, {lam});
  CHECK(h.diagnostics.inner_steps < plain.diagnostics.inner_steps);
  // A solver of the user's own: it is handed λ, the start and the options.
  int calls = 0;
  const Problem own = gd.solved_by([&](const TensorList& l, const TensorList& start, const InnerOptions& io) {
    ++calls;
    CHECK(io.max_iterations == 5000);
    InnerResult res = solve_inner(hb, l, hb.state_of(start), io);
    res.state = hb.weights(res.state);
    return res;
  });
  CHECK(list::relative_error(flat(AID(o).hypergradient(own, {lam})), truth) < 1e-9);
  CHECK(calls == 1);
}

TEST_CASE("a step size that is a function of λ: ITD learns it, AID gives it a zero hypergradient") {
  Ridge r(30, 4, 5);
  const Tensor reg = tensor({-1.0, 0.0, 0.5, -0.5});
  const Problem base = r.problem(reg);
  const double eta0 = base.step_size().value();
  // λ = (regularization, log η): η = η₀·e^{λ₁}, a learnable step size.
  const Problem p = Problem::gradient_descent(
      inner_of(r), ScalarParameter([eta0](const TensorList& l) { return eta0 * exp(l[1]); }), outer_of(r),
      base.initial_state());
  CHECK(p.step_size().describe() == "a function of λ");
  const TensorList lam{reg, tensor({-0.3})};

  // ITD through t steps: the step size's hypergradient is the derivative of E after t
  // steps, checked by central differences of the t-step objective.
  const int t = 12;
  const Hypergradient hi = ITD({.inner_steps = t}).hypergradient(p, lam);
  auto f = [&](double log_eta) {
    NoGradGuard off;
    const TensorList l{reg, tensor({log_eta})};
    TensorList w = p.initial_state();
    for (int k = 0; k < t; ++k) w = list::detach(p.phi(w, l));
    return p.outer(w, l).item();
  };
  const double fd = (f(-0.3 + 1e-6) - f(-0.3 - 1e-6)) / 2e-6;
  REQUIRE(hi.grad.size() == 2);
  CHECK(std::abs(fd) > 1e-4);  // the step size matters after t steps
  CHECK(hi.grad[1].item() == doctest::Approx(fd).epsilon(1e-6));

  // AID differentiates the fixed point, which does not depend on η: ≈ 0 (up to the inner
  // residual), while the regularization's part matches the closed form.
  AIDOptions o = kPreciseCG;
  o.inner_steps = 100000;
  o.inner_tolerance = Tolerance::absolute(1e-14);
  const Hypergradient ha = AID(o).hypergradient(p, lam);
  CHECK(std::abs(ha.grad[1].item()) < 1e-9);
  CHECK(list::relative_error(ha.grad[0].to_vector(), r.hypergradient(reg)) < 1e-8);
}
