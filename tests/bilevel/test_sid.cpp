// SID against closed forms: with full batches it is AID-FP; its mean-square error falls as
// t, K and J grow (J at the variance rate 1/J); step-size rules and momentum follow their
// recursions; sample accounting; reproducibility; divergence and the K = 0 fallback.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "bilevel/ridge_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "hyperad/bilevel/stochastic.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using hyperad::testing::Ridge;

namespace {

// Ridge with a data-dependent per-feature penalty, one term per example:
//   ℓ_i(w, λ) = ½(x_iᵀw − y_i)² + ½ Σ_j e^{λ_j} x_ij² w_j²,   E(w; ζ) = ½ mean_ζ (x_vᵀw − y_v)².
// On the full data the penalty is e^{λ_j} s_j with s_j = mean_i x_ij², i.e. the Ridge
// fixture at λ' = λ + log s, whose closed forms give w*, v* and ∇f. Unlike plain ridge, the
// cross term ∂_λΦ(w; ξ)ᵀv depends on the batch (through s_ξ), so every part of SID is random.
struct ScaledRidge {
  Ridge r;
  Tensor s;
  double alpha;
  StochasticProblem sp;

  ScaledRidge(std::int64_t n, std::int64_t d, const Tensor& lam)
      : r(n, d, 5), s(mean(square(r.X), {0})), alpha(1.0 / r.smoothness(lam + log(s))), sp(make()) {}

  StochasticProblem make() const {
    const Tensor X = r.X, y = r.y, Xv = r.Xv, yv = r.yv;
    return StochasticProblem::gradient_descent(
        [X, y](const TensorList& w, const TensorList& l, const Batch& xi) {
          Tensor Xb = rows(X, xi);
          return 0.5 * mean(square(matmul(Xb, w[0]) - rows(y, xi))) +
                 0.5 * sum(exp(l[0]) * mean(square(Xb), {0}) * square(w[0]));
        },
        alpha, r.n,
        [Xv, yv](const TensorList& w, const TensorList&, const Batch& z) {
          return 0.5 * mean(square(matmul(rows(Xv, z), w[0]) - rows(yv, z)));
        },
        r.n, {zeros({r.d})});
  }
  Tensor shifted(const Tensor& lam) const { return lam + log(s); }
  std::vector<double> exact(const Tensor& lam) const { return r.hypergradient(shifted(lam)); }
  Tensor w_star(const Tensor& lam) const { return tensor(r.w_star(shifted(lam)), Shape{r.d}); }
  // v* = (I − ∂_wΦᵀ)⁻¹ ∇_wE = (αH)⁻¹ g
  Tensor v_star(const Tensor& lam) const {
    Tensor w = w_star(lam);
    std::vector<double> g = (matmul(transpose(r.Xv), matmul(r.Xv, w) - r.yv) / static_cast<double>(r.n)).to_vector();
    std::vector<double> v = linsolve::DenseLU(r.hessian(shifted(lam)), static_cast<std::size_t>(r.d)).solve(g);
    for (double& x : v) x /= alpha;
    return tensor(v, Shape{r.d});
  }
};

Tensor test_lambda(std::int64_t d) {
  std::vector<double> l;
  for (std::int64_t j = 0; j < d; ++j) l.push_back(std::log(0.3) + 0.2 * static_cast<double>(j));
  return tensor(l, Shape{d});
}

double sq_error(const Hypergradient& h, const std::vector<double>& exact) {
  std::vector<double> g = list::flatten(h.grad);
  double e = 0;
  for (std::size_t i = 0; i < g.size(); ++i) e += (g[i] - exact[i]) * (g[i] - exact[i]);
  return e;
}

// Mean over `calls` calls of one SID (its samplers go on, so the calls are independent draws).
double mse(SID& sid, const Tensor& lam, const std::vector<double>& exact, int calls) {
  double total = 0;
  for (int c = 0; c < calls; ++c) total += sq_error(sid.hypergradient({lam}), exact);
  return total / calls;
}

double max_abs_diff(const TensorList& a, const TensorList& b) {
  std::vector<double> x = list::flatten(a), y = list::flatten(b);
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

TEST_CASE("with full batches and unit steps SID is AID-FP, including its sample count") {
  const std::int64_t d = 5;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(200, d, lam);
  const Problem full = f.sp.full_batch();
  for (WarmStart warm : {WarmStart::none, WarmStart::inner_and_linear}) {
    CAPTURE(warm_start_name(warm));
    auto aid = std::make_shared<AID>(
        AIDOptions{.inner_steps = 40, .solver = linsolve::richardson(), .linear_steps = 25, .warm_start = warm});
    FullBatchCounted counted(aid, f.r.n, f.r.n);
    SID sid(f.sp, {.inner_steps = 40, .linear_steps = 25, .warm_start = warm});
    // Two calls at different λ: the second one starts warm when asked to.
    for (const Tensor& l : {lam, lam + 0.3}) {
      Hypergradient a = counted.hypergradient(full, {l}), s = sid.hypergradient(full, {l});
      const double scale = std::sqrt(list::flatten(a.grad)[0] * list::flatten(a.grad)[0]) + 1e-3;
      CHECK(max_abs_diff(a.grad, s.grad) <= 1e-12 * scale);
      CHECK(a.objective == doctest::Approx(s.objective).epsilon(1e-13));
      CHECK(s.diagnostics.linear.residual == doctest::Approx(a.diagnostics.linear.residual).epsilon(1e-8));
      CHECK(s.diagnostics.inner_steps == 40);
      CHECK(s.diagnostics.linear.iterations == 25);
      // n per full pass: 40 inner steps, 25 linear iterations, the cross term, one ∇E.
      CHECK(s.diagnostics.samples == a.diagnostics.samples);
      CHECK(s.diagnostics.samples == 200 * (40 + 25 + 1) + 200);
      CHECK(s.diagnostics.sample_counts.linear == 200 * 25);
      CHECK(s.diagnostics.warnings.empty());
    }
  }
  // ITD counts its forward and reverse passes.
  ITDOptions io;
  io.inner_steps = 30;
  FullBatchCounted itd(std::make_shared<ITD>(io), 200, 100);
  Hypergradient hi = itd.hypergradient(full, {lam});
  CHECK(hi.diagnostics.sample_counts.inner == 200 * 30);
  CHECK(hi.diagnostics.sample_counts.linear == 200 * 30);
  CHECK(hi.diagnostics.samples == 200 * 60 + 100);
  // Truncated ITD reverses only T of its t steps.
  io.reverse_steps = 10;
  FullBatchCounted titd(std::make_shared<ITD>(io), 200, 100);
  Hypergradient ht = titd.hypergradient(full, {lam});
  CHECK(ht.diagnostics.sample_counts.inner == 200 * 30);
  CHECK(ht.diagnostics.sample_counts.linear == 200 * 10);
}

TEST_CASE("cross term: doubling J halves the mean-square error (variance regime)") {
  // Property: at the exact w* and v* (set as warm state, t = K = 0), h is the average of
  // J iid unbiased estimates ∂_λΦ(w*; ξ_j)ᵀv* of ∇f (batches with replacement), so
  // MSE(J) = σ²/J exactly; over 400 calls per J, MSE(2J)/MSE(J) must lie in [0.35, 0.65]
  // (measured: 0.54, 0.47, 0.51 for J = 1 → 2 → 4 → 8).
  const std::int64_t d = 5;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(200, d, lam);
  const std::vector<double> exact = f.exact(lam);
  std::vector<double> errs;
  for (int J : {1, 2, 4, 8}) {
    SID sid(f.sp, {.inner_steps = 0, .linear_steps = 0, .cross_batches = J, .cross_batch = 5,
                   .sampling = Sampling::with_replacement, .seed = static_cast<std::uint64_t>(J),
                   .warm_start = WarmStart::inner_and_linear});
    sid.set_warm_state({{f.w_star(lam)}, {f.v_star(lam)}});
    errs.push_back(mse(sid, lam, exact, 400));
    CHECK(sid.hypergradient({lam}).diagnostics.samples == 5 * J + 200);  // J cross batches + full ∇E
  }
  for (std::size_t i = 1; i < errs.size(); ++i) {
    CAPTURE(i);
    CHECK(errs[i] / errs[i - 1] >= 0.35);
    CHECK(errs[i] / errs[i - 1] <= 0.65);
  }
}

TEST_CASE("linear system: the error falls with K (decreasing steps)") {
  // Property: at w = w* (warm, t = 0), v from 0, minibatch pullbacks with
  // η_k = γ/(γ + k), cross term and ∇E on the full data: the MSE over 60 calls decreases
  // with K ∈ {5, 20, 80, 320} and falls at least 4× from K = 20 to K = 320. (With these
  // steps the contraction error decays polynomially in K and the noise like η_K ~ 1/K;
  // measured: 1.2e-3, 2.3e-4, 1.3e-5, 3.0e-7.)
  const std::int64_t d = 5;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(200, d, lam);
  const std::vector<double> exact = f.exact(lam);
  std::vector<double> errs;
  for (int K : {5, 20, 80, 320}) {
    SID sid(f.sp, {.inner_steps = 0, .linear_steps = K, .linear_batch = 5,
                   .linear_step = StepSizeSchedule::inverse(1.0, 10.0), .seed = 3, .warm_start = WarmStart::inner});
    sid.set_warm_state({{f.w_star(lam)}, {}});
    errs.push_back(mse(sid, lam, exact, 60));
  }
  for (std::size_t i = 1; i < errs.size(); ++i) CHECK(errs[i] < errs[i - 1]);
  CHECK(errs[3] < 0.25 * errs[1]);
}

TEST_CASE("inner problem: the error falls with t (SGD with decreasing steps)") {
  // Property: from w0 = 0, t SGD steps on batches of 5 with η_s = γ/(γ + s), then the exact
  // v* (warm, K = 0) and the full cross term: the MSE over 60 calls decreases with
  // t ∈ {10, 40, 160, 640} and falls at least 4× from t = 40 to t = 640 (measured: 3.7e-4,
  // 4.8e-6, 1.2e-7, 4.3e-9).
  const std::int64_t d = 5;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(200, d, lam);
  const std::vector<double> exact = f.exact(lam);
  std::vector<double> errs;
  for (int t : {10, 40, 160, 640}) {
    SID sid(f.sp, {.inner_steps = t, .linear_steps = 0, .inner_batch = 5,
                   .inner_step = StepSizeSchedule::inverse(1.0, 10.0), .seed = 4, .warm_start = WarmStart::linear});
    sid.set_warm_state({{}, {f.v_star(lam)}});
    errs.push_back(mse(sid, lam, exact, 60));
  }
  for (std::size_t i = 1; i < errs.size(); ++i) CHECK(errs[i] < errs[i - 1]);
  CHECK(errs[3] < 0.25 * errs[1]);
}

TEST_CASE("all parts stochastic: the error falls as t, K and J grow together") {
  // Property: every batch sampled (inner, linear, cross, outer; without replacement), cold
  // start, (t, K, J) = (10, 10, 1) · 4^i for i = 0, 1, 2: MSE over 40 calls decreases, by
  // at least 3× per step (measured: 2.6e-3, 4.6e-4, 5.2e-5); sample counts are exact.
  const std::int64_t d = 5;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(200, d, lam);
  const std::vector<double> exact = f.exact(lam);
  std::vector<double> errs;
  for (int m : {1, 4, 16}) {
    SID sid(f.sp, {.inner_steps = 10 * m, .linear_steps = 10 * m, .cross_batches = m, .inner_batch = 10,
                   .linear_batch = 10, .cross_batch = 10, .outer_batch = 20,
                   .inner_step = StepSizeSchedule::inverse(1.0, 10.0), .linear_step = StepSizeSchedule::inverse(1.0, 10.0),
                   .seed = 9});
    errs.push_back(mse(sid, lam, exact, 40));
    const Diagnostics dg = sid.hypergradient({lam}).diagnostics;
    CHECK(dg.sample_counts.inner == 10 * 10 * m);
    CHECK(dg.sample_counts.linear == 10 * m * (10 + 20));  // a fresh ξ_k and ζ_k per iteration
    CHECK(dg.sample_counts.cross == 10 * m);
    CHECK(dg.sample_counts.outer == 20);
    CHECK(dg.samples == dg.sample_counts.total());
    CHECK(std::isnan(dg.linear.residual));  // not computable from sampled parts
  }
  CHECK(errs[1] < errs[0] / 3);
  CHECK(errs[2] < errs[1] / 3);
}

TEST_CASE("step-size rules and momentum follow their recursions") {
  const StepSizeSchedule c = StepSizeSchedule::constant(0.4), dec = StepSizeSchedule::inverse(0.5, 10.0);
  CHECK(c.at(0) == 0.4);
  CHECK(c.at(1000) == 0.4);
  CHECK(dec.at(0) == 0.5);
  CHECK(dec.at(10) == doctest::Approx(0.25));
  CHECK(dec.at(30) == doctest::Approx(0.125));
  CHECK_THROWS_WITH_AS(validate_damping(StepSizeSchedule::constant(1.5), "test"),
                       doctest::Contains("test: the step size η₀ must be in (0, 1], got 1.5"), ValueError);
  CHECK_THROWS_WITH_AS(validate_damping(StepSizeSchedule::inverse(0.5, 0.0), "test"),
                       doctest::Contains("γ of a decreasing step size must be finite and > 0, got 0"), ValueError);

  // Φ(w; ξ) = the mean of the batch's rows of a data matrix A [n, 2]: with η_s = 1/(1 + s)
  // (η₀ = γ = 1) the iterate is the running average of the batch means; with η = 1 it is
  // the last batch mean.
  Generator g(1);
  const Tensor A = randn({30, 2}, g);
  StochasticProblem p = StochasticProblem::from_map(
      [A](const TensorList&, const TensorList&, const Batch& xi) { return TensorList{mean(rows(A, xi), {0})}; }, 30,
      [](const TensorList& w, const TensorList&, const Batch&) { return sum(w[0]); }, 1, {zeros({2})});
  for (bool averaging : {true, false}) {
    BatchSampler run(30, Sampling::with_replacement, 2), replay(30, Sampling::with_replacement, 2);
    StochasticInnerOptions o{.max_iterations = 12, .batch_size = 4};
    if (averaging) o.step_size = StepSizeSchedule::inverse(1.0, 1.0);
    StochasticInnerResult r = solve_inner_stochastic(p, {}, {zeros({2})}, o, run);
    Tensor expect = zeros({2}), last;
    for (int s = 0; s < 12; ++s) {
      last = mean(rows(A, replay.next(4)), {0});
      expect = expect + last;
    }
    expect = averaging ? expect / 12.0 : last;
    CHECK(max_abs_diff(r.state, {expect}) < 1e-14);
    CHECK(r.samples == 48);
    CHECK(r.steps == 12);
  }
  // Momentum on the full batch: Φ ≡ c, so w_{s+1} = w_s + η(c − w_s) + μ(w_s − w_{s−1}).
  BatchSampler unused(30, Sampling::with_replacement, 2);
  StochasticInnerResult m = solve_inner_stochastic(
      p, {}, {zeros({2})}, {.max_iterations = 7, .step_size = StepSizeSchedule::constant(0.3), .momentum = 0.6}, unused);
  const std::vector<double> cv = mean(A, {0}).to_vector();
  for (std::size_t i = 0; i < 2; ++i) {
    double w = 0, prev = 0;
    for (int s = 0; s < 7; ++s) {
      const double next = w + 0.3 * (cv[i] - w) + (s > 0 ? 0.6 * (w - prev) : 0.0);
      prev = w;
      w = next;
    }
    CHECK(m.state[0].to_vector()[i] == doctest::Approx(w).epsilon(1e-13));
  }
  CHECK(m.samples == 7 * 30);
  CHECK(unused.drawn() == 0);  // the full batch draws nothing
}

TEST_CASE("same seed, same hypergradient; a restored random and warm state continues the run") {
  const std::int64_t d = 4;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(120, d, lam);
  const SIDOptions o{.inner_steps = 20, .linear_steps = 20, .cross_batches = 3, .inner_batch = 8, .linear_batch = 8,
                     .cross_batch = 8, .outer_batch = 16, .seed = 21, .warm_start = WarmStart::inner_and_linear};
  SID a(f.sp, o), b(f.sp, o);
  CHECK(list::flatten(a.hypergradient({lam}).grad) == list::flatten(b.hypergradient({lam}).grad));
  const std::vector<std::uint64_t> rs = a.export_random_state();
  const WarmState ws = a.warm_state();
  REQUIRE(!ws.inner.empty());
  REQUIRE(!ws.linear.empty());
  const std::vector<double> next = list::flatten(a.hypergradient({lam}).grad);
  SIDOptions other = o;
  other.seed = 1234;
  other.warm_start = WarmStart::none;
  SID c(f.sp, other);
  c.import_random_state(rs);
  c.set_warm_state(ws);
  c.set_warm_start(WarmStart::inner_and_linear);  // as OuterOptimizer does
  CHECK(list::flatten(c.hypergradient({lam}).grad) == next);
  // The typed state round-trips as well.
  SID e(f.sp, other);
  e.set_random_state(a.random_state());
  CHECK(e.export_random_state() == a.export_random_state());
  // A state from a SID over other data sizes is refused, and so is a truncated one.
  ScaledRidge g(60, d, lam);
  SID small(g.sp, o);
  CHECK_THROWS_WITH_AS(c.import_random_state(small.export_random_state()), doctest::Contains("n = 120"), ValueError);
  std::vector<std::uint64_t> cut = rs;
  cut.pop_back();
  CHECK_THROWS_WITH_AS(c.import_random_state(cut), doctest::Contains("but only 119 words remain"), ValueError);
  cut.resize(3);
  CHECK_THROWS_WITH_AS(c.import_random_state(cut), doctest::Contains("ends early (3 words)"), ValueError);
  cut = rs;
  cut.push_back(0);
  CHECK_THROWS_WITH_AS(c.import_random_state(cut), doctest::Contains("expected"), ValueError);
  // Schedules: t, K, J changed between calls.
  c.set_iterations({3, 4, 2});
  const Diagnostics dg = c.hypergradient({lam}).diagnostics;
  CHECK(dg.inner_steps == 3);
  CHECK(dg.linear.iterations == 4);
  CHECK(dg.sample_counts.cross == 16);
  c.set_iterations({.linear_steps = 7});  // unset: unchanged
  CHECK(c.options().inner_steps == 3);
  CHECK(c.options().linear_steps == 7);
  CHECK(c.options().cross_batches == 2);
  c.reset();
  CHECK(c.warm_state().inner.empty());
  CHECK(c.warm_state().linear.empty());
}

TEST_CASE("a diverging linear system throws, or falls back to K = 0 with a warning") {
  // Φ(w, λ) = 2w + λ: ∂_wΦᵀ = 2I is no contraction, v ← 2v + ∇_wE explodes. E = Σw + Σλ².
  StochasticProblem p = StochasticProblem::from_map(
      [](const TensorList& w, const TensorList& l, const Batch&) { return TensorList{2.0 * w[0] + l[0]}; }, 10,
      [](const TensorList& w, const TensorList& l, const Batch&) { return sum(w[0]) + sum(square(l[0])); }, 10,
      {zeros({3})});
  const Tensor lam = tensor({0.5, -1.0, 2.0});
  SID strict(p, {.inner_steps = 0, .linear_steps = 40});
  CHECK_THROWS_WITH_AS(strict.hypergradient({lam}), doctest::Contains("linear system diverged at iteration"),
                       ConvergenceError);
  // With a huge limit the iterate overflows instead: reported as non-finite.
  SID overflow(p, {.inner_steps = 0, .linear_steps = 1100, .divergence_factor = 1e300});
  CHECK_THROWS_WITH_AS(overflow.hypergradient({lam}), doctest::Contains("‖v‖ = inf"), ConvergenceError);

  SID lenient(p, {.inner_steps = 0, .linear_steps = 40, .warm_start = WarmStart::linear, .fallback_on_divergence = true});
  Hypergradient h = lenient.hypergradient({lam});
  REQUIRE(h.diagnostics.warnings.size() == 1);
  CHECK(h.diagnostics.warnings[0].find("fell back to K = 0") != std::string::npos);
  CHECK(h.grad[0].to_vector() == std::vector<double>{1.0, -2.0, 4.0});  // h = ∇_λE = 2λ
  CHECK(lenient.warm_state().linear.empty());  // the diverged v is not kept for the next call
  CHECK(h.diagnostics.sample_counts.cross == 0);
  CHECK(h.diagnostics.sample_counts.linear > 0);  // the iterations that ran are counted
}

TEST_CASE("invalid options and mismatched problems are refused with the numbers") {
  const Tensor lam = test_lambda(3);
  ScaledRidge f(50, 3, lam);
  CHECK_THROWS_WITH_AS(SID(f.sp, {.cross_batches = 0}), doctest::Contains("cross_batches (J) must be >= 1, got 0"),
                       ValueError);
  CHECK_THROWS_WITH_AS(SID(f.sp, {.inner_batch = 51}), doctest::Contains("inner_batch must be in [0, 50]"), ValueError);
  CHECK_THROWS_WITH_AS(SID(f.sp, {.linear_step = StepSizeSchedule::constant(0.0)}), doctest::Contains("SID linear step"),
                       ValueError);
  CHECK_THROWS_WITH_AS(SID(f.sp, {.inner_momentum = 1.0}), doctest::Contains("inner_momentum must be in [0, 1)"),
                       ValueError);
  SID sid(f.sp);
  CHECK_THROWS_WITH_AS(sid.set_iterations({.cross_batches = 0}), doctest::Contains("cross_batches (J) must be >= 1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(sid.set_warm_state({{zeros({4})}, {}}), doctest::Contains("SID: the warm w: tensor 0 has shape [4], expected [3]"),
                       ShapeError);
  ScaledRidge other(50, 4, test_lambda(4));
  CHECK_THROWS_WITH_AS(sid.hypergradient(other.sp.full_batch(), {lam}),
                       doctest::Contains("SID: the problem's initial state: tensor 0 has shape [4], expected [3]"), ShapeError);
  CHECK_THROWS_WITH_AS(f.sp.at({}, {0}), doctest::Contains("empty batch"), ValueError);
  Diagnostics unknown;
  unknown.method = "magic";
  CHECK_THROWS_WITH_AS(full_batch_samples(unknown, 1, 1), doctest::Contains("\"magic\""), ValueError);
}

TEST_CASE("OuterOptimizer drives SID: schedules, warm modes, bit-identical save and resume") {
  // Both runs use this process's thread count; results are deterministic for a given count.
  const std::int64_t d = 3;
  const Tensor lam = test_lambda(d);
  ScaledRidge f(60, d, lam);
  const SIDOptions so{.inner_steps = 10, .linear_steps = 10, .inner_batch = 6, .linear_batch = 6, .cross_batch = 6,
                      .outer_batch = 12, .seed = 5};
  auto options = [](WarmStart warm) {
    OuterOptions o;
    o.step_size = StepSizeSchedule::constant(2.0);
    o.warm_start = warm;
    o.inner_steps = IterationSchedule::linear(4, 2.0);
    o.cross_batches = IterationSchedule::constant(3);
    return o;
  };
  const std::vector<Projection> box{Projection::box(-3.0, 1.0)};
  for (WarmStart warm : {WarmStart::none, WarmStart::inner, WarmStart::inner_and_linear}) {
    CAPTURE(warm_start_name(warm));
    SID a(f.sp, so);
    OuterOptimizer full(f.sp.full_batch(), a, {lam}, options(warm), box);
    for (int s = 0; s < 6; ++s) {
      const OuterRecord& r = full.step();
      CHECK(r.inner_steps == 4 + 2 * s);  // t scheduled
      CHECK(r.samples == 6 * (4 + 2 * s) + 10 * (6 + 12) + 3 * 6 + 12);
    }
    CHECK(a.options().warm_start == warm);
    const std::string path = (std::filesystem::temp_directory_path() / "hyperad_sid_resume.state").string();
    {
      SID b(f.sp, so);
      OuterOptimizer part(f.sp.full_batch(), b, {lam}, options(warm), box);
      for (int s = 0; s < 3; ++s) part.step();
      part.save(path);
    }
    SIDOptions other = so;
    other.seed = 777;  // the saved random state takes over
    SID c(f.sp, other);
    OuterOptimizer resumed(f.sp.full_batch(), c, {lam}, options(warm), box);
    resumed.load(path);
    for (int s = 3; s < 6; ++s) resumed.step();
    const auto x = full.lambda()[0].to_vector(), y = resumed.lambda()[0].to_vector();
    CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0);
    CHECK(resumed.total_samples() == full.total_samples());
    std::filesystem::remove(path);
  }
}
