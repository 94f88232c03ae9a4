// The `equilibrium` problem (deep-equilibrium classifier): every applicable hypergradient
// method against finite differences and the exact reference on the small instance, CG on
// the non-symmetric map, a short constrained outer run, the episodic version (minibatches of
// examples) and its convergence, options.
#include <doctest/doctest.h>

#include "skip.hpp"

#include <cmath>
#include <map>
#include <string>

#include "hyperad/autodiff/ops/conv.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using namespace hyperad::problems;

namespace {

double norm_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// ‖a − b‖ / ‖b‖ over all tensors.
double rel_error(const TensorList& a, const TensorList& b) {
  std::vector<double> x = list::flatten(a), y = list::flatten(b);
  REQUIRE(x.size() == y.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] -= y[i];
  return norm_of(x) / norm_of(y);
}

Instance small(std::map<std::string, std::string> options = {}) {
  return make_problem("equilibrium", {.seed = 3, .small = true, .options = std::move(options)});
}

double spectral_norm(const Tensor& a) { return singular_values(a).front(); }

const AIDOptions converged{.inner_steps = 20000, .inner_tolerance = Tolerance::absolute(1e-14), .linear_steps = 2000,
                           .linear_tolerance = Tolerance::relative(1e-13)};

}  // namespace

TEST_CASE("equilibrium: the small instance") {
  Instance inst = small();
  CHECK(inst.name == "equilibrium");
  REQUIRE(inst.lambda0.size() == 5);
  CHECK(inst.lambda0[0].shape() == Shape{4, 4});   // A
  CHECK(inst.lambda0[1].shape() == Shape{4, 4});   // B: digits pooled 4×4 → 2×2 pixels
  CHECK(inst.lambda0[2].shape() == Shape{4});      // c
  CHECK(inst.lambda0[3].shape() == Shape{10, 4});  // U
  CHECK(inst.lambda0[4].shape() == Shape{10});     // b
  CHECK(inst.problem.initial_state()[0].shape() == Shape{24, 4});
  CHECK_FALSE(inst.problem.symmetric_jacobian());
  CHECK(inst.projections.size() == 5);
  CHECK(inst.projections[0].name() != "none");
  CHECK(spectral_norm(inst.lambda0[0]) <= 0.9 + 1e-12);
  CHECK_FALSE(inst.stochastic.has_value());  // its minibatches are episodes of examples
  REQUIRE(inst.episodic.has_value());
  // Φ is a contraction: at most ‖A‖₂.
  const TensorList w = solve_inner(inst.problem, inst.lambda0, inst.problem.initial_state(), {.max_iterations = 300}).state;
  CHECK(estimate_contraction(inst.problem, w, inst.lambda0) <= spectral_norm(inst.lambda0[0]) + 1e-9);
  // The seed changes the initialization.
  Instance other = make_problem("equilibrium", {.seed = 4, .small = true});
  CHECK(rel_error(other.lambda0, inst.lambda0) > 0.1);
  const Metrics m = inst.evaluate(inst.lambda0);
  REQUIRE(m.size() >= 2);
  CHECK(m[0].first == "test_loss");
  CHECK(m[1].first == "test_accuracy");
  CHECK((m[1].second >= 0.0 && m[1].second <= 1.0));
  const double v = inst.validation({}, inst.lambda0);
  CHECK((v >= 0.0 && v <= 1.0));
}

TEST_CASE("equilibrium: AID (FP, GMRES, normal-CG) and ITD agree with finite differences and the exact reference") {
  Instance inst = small({{"weight_decay", "0.01"}});  // covers the decay term too
  const Problem& p = inst.problem;
  const TensorList& lam = inst.lambda0;
  const Hypergradient exact = exact_hypergradient(p, lam);
  const Hypergradient fd = finite_difference_hypergradient(p, lam);
  // Every block of λ (A, B, c in Φ; U, b in E) has a gradient: none agrees trivially at 0.
  for (const Tensor& g : exact.grad) CHECK(norm_of(g.to_vector()) > 1e-4);
  const double fd_err = rel_error(fd.grad, exact.grad);
  MESSAGE("FD vs exact: " << fd_err);
  CHECK(fd_err < 1e-6);

  for (const linsolve::Solver& s : {linsolve::richardson(), linsolve::gmres(), linsolve::bicgstab(), linsolve::normal_cg()}) {
    AIDOptions o = converged;
    o.solver = s;
    const Hypergradient h = AID(o).hypergradient(p, lam);
    const double e = rel_error(h.grad, exact.grad), e_fd = rel_error(h.grad, fd.grad);
    MESSAGE("AID-" << std::string(s.name()) << ": vs exact " << e << ", vs FD " << e_fd);
    CHECK(h.diagnostics.warnings.empty());
    CHECK(e < 1e-9);
    CHECK(e_fd < 1e-6);
  }
  const Hypergradient itd = ITD({.inner_steps = 400}).hypergradient(p, lam);
  MESSAGE("ITD(400): vs exact " << rel_error(itd.grad, exact.grad) << ", vs FD " << rel_error(itd.grad, fd.grad));
  CHECK(rel_error(itd.grad, exact.grad) < 1e-9);
  CHECK(rel_error(itd.grad, fd.grad) < 1e-6);

  // The instance's suggested t and K are enough for a usable hypergradient.
  const Hypergradient def = AID({.inner_steps = inst.defaults.inner_steps, .solver = linsolve::gmres(),
                                 .linear_steps = inst.defaults.linear_steps})
                                .hypergradient(p, lam);
  MESSAGE("AID-GMRES at the defaults (t = " << inst.defaults.inner_steps << ", K = " << inst.defaults.linear_steps
                                             << "): vs exact " << rel_error(def.grad, exact.grad));
  CHECK(rel_error(def.grad, exact.grad) < 1e-4);
}

TEST_CASE("equilibrium, map=conv: AID and ITD agree with finite differences and the exact reference") {
  Instance inst = small({{"map", "conv"}});
  const Problem& p = inst.problem;
  REQUIRE(p.initial_state()[0].rank() == 4);  // image states [n, h, side, side]
  const TensorList& lam = inst.lambda0;
  const Hypergradient exact = exact_hypergradient(p, lam);
  const Hypergradient fd = finite_difference_hypergradient(p, lam);
  for (const Tensor& g : exact.grad) CHECK(norm_of(g.to_vector()) > 1e-5);
  MESSAGE("conv: FD vs exact " << rel_error(fd.grad, exact.grad));
  CHECK(rel_error(fd.grad, exact.grad) < 1e-6);
  for (const linsolve::Solver& s : {linsolve::richardson(), linsolve::gmres()}) {
    AIDOptions o = converged;
    o.solver = s;
    CHECK(rel_error(AID(o).hypergradient(p, lam).grad, exact.grad) < 1e-9);
  }
  CHECK(rel_error(ITD({.inner_steps = 400}).hypergradient(p, lam).grad, exact.grad) < 1e-9);
}

TEST_CASE("equilibrium, map=conv: 3‖W‖_F bounds the convolution's norm, and the projection keeps it within the radius") {
  // The operator norm of z ↦ conv(z, W) by power iteration on its normal map, for random
  // kernels (with and without padding effects), against the bound the projection enforces.
  Generator gen(9);
  for (std::int64_t side : {2, 5, 8}) {
    const Tensor w = randn({3, 3, 3, 3}, gen);
    Tensor z = randn({1, 3, side, side}, gen);
    double norm = 0;
    for (int it = 0; it < 200; ++it) {
      const Tensor k = conv2d(z, w, {}, {.padding = {1, 1}});
      norm = std::sqrt(squared_norm(k).item() / squared_norm(z).item());
      z = conv_transpose2d(k, w, {}, {.padding = {1, 1}});
      z = z * (1.0 / std::sqrt(squared_norm(z).item()));
    }
    const double bound = 3.0 * std::sqrt(squared_norm(w).item());
    INFO("side " << side << ": ‖K‖₂ ≈ " << norm << ", 3‖W‖_F = " << bound);
    CHECK(norm <= bound);
    CHECK(norm > 0.1 * bound);  // a real estimate, not a collapsed iteration
  }
  // Training: the Frobenius-ball projection keeps the bound at most the radius.
  Instance inst = small({{"map", "conv"}, {"radius", "0.5"}});
  AID aid({.inner_steps = 60, .solver = linsolve::gmres(), .linear_steps = 30});
  OuterOptions o;
  o.outer_steps = 10;
  o.step_size = StepSizeSchedule::constant(0.1);
  o.update = OuterUpdate::adam;
  OuterOptimizer opt(inst.problem, aid, inst.lambda0, o, inst.projections);
  const auto& hist = opt.run();
  MESSAGE("conv: training loss " << hist.front().objective << " -> " << hist.back().objective);
  CHECK(hist.back().objective < hist.front().objective);
  const Metrics m = inst.evaluate(opt.lambda());
  double bound = -1;
  for (const auto& [k, v] : m)
    if (k == "contraction_bound") bound = v;
  CHECK(bound > 0);
  CHECK(bound <= 0.5 + 1e-9);
}

TEST_CASE("equilibrium: CG on the non-symmetric map is refused by the symmetry probe, or flagged with it off") {
  Instance inst = small();
  AIDOptions o{.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 20};
  CHECK_THROWS_WITH_AS(AID(o).hypergradient(inst.problem, inst.lambda0), doctest::Contains("is not symmetric"),
                       ValueError);
  o.probe_symmetry = false;
  const Hypergradient h = AID(o).hypergradient(inst.problem, inst.lambda0);
  REQUIRE_FALSE(h.diagnostics.warnings.empty());
  CHECK(h.diagnostics.warnings[0].find("symmetric") != std::string::npos);
}

TEST_CASE("equilibrium: a short outer run lowers the training loss and keeps ‖A‖₂ within the radius") {
  const double radius = 0.3;  // below ‖A₀‖₂ ≈ 0.5: the projection is active from the start
  Instance inst = small({{"radius", "0.3"}});
  CHECK(std::abs(spectral_norm(inst.lambda0[0]) - radius) < 1e-9);
  AID aid({.inner_steps = 60, .solver = linsolve::gmres(), .linear_steps = 30});
  OuterOptions o;
  o.outer_steps = 15;
  o.step_size = StepSizeSchedule::constant(0.05);
  o.update = OuterUpdate::adam;
  o.warm_start = WarmStart::inner;
  OuterOptimizer opt(inst.problem, aid, inst.lambda0, o, inst.projections);
  const auto& hist = opt.run();
  REQUIRE(hist.size() == 15);
  MESSAGE("training loss " << hist.front().objective << " -> " << hist.back().objective);
  CHECK(hist.back().objective < 0.8 * hist.front().objective);
  CHECK(spectral_norm(opt.lambda()[0]) <= radius + 1e-9);
  CHECK(rel_error({opt.lambda()[0]}, {inst.lambda0[0]}) > 1e-3);  // A was trained, not frozen
  // The loss E at the final λ, re-solved from scratch, agrees with the run's progress.
  CHECK(outer_value(inst.problem, opt.lambda(), {.max_iterations = 2000, .tolerance = Tolerance::absolute(1e-12)}) < hist.front().objective);
}

TEST_CASE("equilibrium: the episodic version — each example its own state; the full batch is the fixed problem") {
  Instance inst = small();
  REQUIRE(inst.episodic.has_value());
  const EpisodicProblem& ep = inst.episodic->problem;
  CHECK(ep.population() == 24);
  CHECK(ep.unit() == "example");
  Generator gen(5);
  const TensorList w{randn({24, 4}, gen) * 0.5};
  const Tensor full = inst.problem.phi(w, inst.lambda0)[0];
  CHECK(rel_error({ep.episode(full_batch(24)).problem.phi(w, inst.lambda0)[0]}, {full}) < 1e-15);
  // The episode of examples {3, 17} maps their rows as the full map does: the states are independent.
  const Tensor rows2 = ep.episode({3, 17}).problem.phi({index_select(w[0], 0, {3, 17})}, inst.lambda0)[0];
  CHECK(rel_error({rows2}, {index_select(full, 0, {3, 17})}) < 1e-15);
  // ∇f of the full batch is the mean of the 24 examples' exact hypergradients.
  TensorList mean = list::zeros_like(inst.lambda0);
  for (std::int64_t i = 0; i < 24; ++i)
    list::axpy(1.0 / 24, exact_hypergradient(ep.episode({i}).problem, inst.lambda0).grad, mean);
  CHECK(rel_error(mean, exact_hypergradient(inst.problem, inst.lambda0).grad) < 1e-10);
  // The whole population as one meta-batch is the fixed problem (AID-FP to rounding, batched;
  // SID with η = 1 is AID-FP).
  const AIDOptions fp{.inner_steps = 80, .solver = linsolve::richardson(), .linear_steps = 60};
  const Hypergradient det = AID(fp).hypergradient(inst.problem, inst.lambda0);
  EpisodicHypergradient all(ep, copies_of(AID(fp)), {.meta_batch = 24});
  CHECK(rel_error(all.hypergradient(full_batch(24), inst.lambda0).grad, det.grad) < 1e-13);
  EpisodicHypergradient sid(ep, sid_per_episode({.inner_steps = 80, .linear_steps = 60}), {.meta_batch = 24});
  CHECK(rel_error(sid.hypergradient(full_batch(24), inst.lambda0).grad, det.grad) < 1e-12);
}

TEST_CASE("equilibrium: bad options are rejected with the problem, the option and the value") {
  const auto make = [](std::map<std::string, std::string> o, std::string dataset = "") {
    return make_problem("equilibrium", {.dataset = std::move(dataset), .small = true, .options = std::move(o)});
  };
  CHECK_THROWS_WITH_AS(make({{"radius", "1"}}), doctest::Contains("radius=1 must lie strictly between 0 and 1"),
                       ValueError);
  CHECK_THROWS_WITH_AS(make({{"radius", "0"}}), doctest::Contains("radius=0 must lie strictly"), ValueError);
  CHECK_THROWS_WITH_AS(make({{"radius", "big"}}), doctest::Contains("option radius='big' is not a number"),
                       ValueError);
  CHECK_THROWS_WITH_AS(make({{"hidden", "0"}}), doctest::Contains("problem 'equilibrium': option hidden=0 is outside"),
                       ValueError);
  CHECK_THROWS_WITH_AS(make({{"pool", "3"}}), doctest::Contains("pool=3 must divide the image side 8 of digits"),
                       ValueError);
  CHECK_THROWS_WITH_AS(make({{"train_size", "1760"}}), doctest::Contains("exceeds the 1797 examples of digits"),
                       ValueError);
  CHECK_THROWS_WITH_AS(make({{"depth", "2"}}), doctest::Contains("unknown option 'depth'"), ValueError);
  CHECK_THROWS_WITH_AS(make({}, "mnist"), doctest::Contains("unknown dataset 'mnist'"), ValueError);
  CHECK_THROWS_WITH_AS(make_problem("equilibrium", {.dataset = "fashion_mnist",
                                                    .data_dir = "/nonexistent/fashion",
                                                    .small = true}),
                       doctest::Contains("apt-get install dataset-fashion-mnist"), DataError);
}

TEST_CASE("equilibrium: Fashion-MNIST, pooled") {
  try {
    fashion_mnist_dir();
  } catch (const DataError&) {
    hyperad::testing::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  Instance inst = make_problem("equilibrium", {.dataset = "fashion_mnist", .small = true});
  CHECK(inst.lambda0[1].shape() == Shape{4, 16});  // 28×28 pooled 7×7 → 4×4 pixels
  CHECK(inst.problem.initial_state()[0].shape() == Shape{24, 4});
  const Hypergradient exact = exact_hypergradient(inst.problem, inst.lambda0);
  const Hypergradient h = AID({.inner_steps = 200, .solver = linsolve::gmres(), .linear_steps = 50})
                              .hypergradient(inst.problem, inst.lambda0);
  CHECK(rel_error(h.grad, exact.grad) < 1e-8);
}

TEST_CASE("equilibrium: SID on minibatches of examples converges on digits (JMLR 2023 protocol, T = K = 3)") {
  // Regression: SID as a block-coordinate iteration over the whole state matrix diverged at
  // outer step 35 of `hyperad run equilibrium --method sid --batch-size 100`. Episodes of 100
  // examples, each state from 0 by 3 fixed-point steps, converge.
  Instance inst = make_problem("equilibrium", {.seed = 0, .options = {{"radius", "0.5"}}});
  auto method = make_episodic({.name = "sid", .inner_steps = 3, .linear_steps = 3}, inst, {.meta_batch = 100, .seed = 1});
  OuterOptions o = outer_options(inst, true);
  o.outer_steps = 150;
  o.validation = {};
  OuterOptimizer opt(*method, inst.lambda0, o, inst.projections);
  const auto& hist = opt.run();
  for (const OuterRecord& r : hist) REQUIRE(std::isfinite(r.objective));
  const Metrics m = inst.evaluate(opt.lambda());
  const auto get = [&](const std::string& k) {
    for (const auto& [key, v] : m)
      if (key == k) return v;
    FAIL("no metric " << k);
    return 0.0;
  };
  MESSAGE("train accuracy " << get("train_accuracy") << ", test " << get("test_accuracy") << ", loss "
                            << hist.front().objective << " -> " << hist.back().objective);
  CHECK(get("train_accuracy") > 0.9);
  CHECK(get("test_accuracy") > 0.85);
  CHECK(get("spectral_norm_A") <= 0.5 + 1e-9);
  CHECK(hist.back().objective < 0.3 * hist.front().objective);
  CHECK(opt.total_samples() == 150 * 100 * (3 + 3 + 1 + 1));  // t + K + cross + outer per example
}
