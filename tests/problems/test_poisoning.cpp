// The `poisoning` problem on small digits instances: AID-CG and ITD hypergradients against
// finite differences and the exact one; the minibatch problem against the full batch; a
// short attack stays feasible (ball ∩ pixel range) and raises the validation loss; the
// evaluation's accuracies; option errors; and the default Fashion-MNIST instance when the
// data is installed.
#include <doctest/doctest.h>

#include "skip.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using namespace hyperad::problems;

namespace {

double rel_error(const TensorList& a, const TensorList& b) { return list::distance(a, b) / list::norm(b); }

ProblemConfig small(std::map<std::string, std::string> options = {}) {
  return {.seed = 3, .small = true, .options = std::move(options)};
}

// max_i ‖x_i − c_i‖₂, and the smallest / largest entry of x.
struct Extent {
  double max_dist = 0, lo = 1e300, hi = -1e300;
};
Extent extent(const Tensor& x, const Tensor& c) {
  Extent e;
  const std::vector<double> xv = x.to_vector(), cv = c.to_vector();
  const std::int64_t d = x.size(1);
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      const auto k = static_cast<std::size_t>(i * d + j);
      s += (xv[k] - cv[k]) * (xv[k] - cv[k]);
      e.lo = std::min(e.lo, xv[k]);
      e.hi = std::max(e.hi, xv[k]);
    }
    e.max_dist = std::max(e.max_dist, std::sqrt(s));
  }
  return e;
}

double metric(const Metrics& m, const std::string& name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  FAIL("metric " << name << " missing");
  return 0;
}

const InnerOptions kTight{.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-12)};

}  // namespace

TEST_CASE("poisoning: small instance, shapes and feasible start") {
  const Instance inst = make_problem("poisoning", small());
  CHECK(inst.name == "poisoning");
  CHECK(inst.dataset == "digits");  // the small instance's default, though fashion_mnist is listed first
  CHECK(inst.maximize);
  // A Fashion-MNIST directory for a run that reads none used to be ignored without a word.
  ProblemConfig with_dir = small();
  with_dir.data_dir = "/some/fashion";
  CHECK_THROWS_WITH_AS(make_problem("poisoning", with_dir),
                       doctest::Contains("a Fashion-MNIST directory ('/some/fashion') was given, but this instance uses "
                                         "the dataset 'digits'"),
                       ValueError);
  REQUIRE(inst.lambda0.size() == 1);
  CHECK(inst.lambda0[0].shape() == Shape{4, 16});  // 10% of 40 digits, 4×4 pixels
  REQUIRE(inst.projections.size() == 1);
  CHECK(inst.stochastic.has_value());
  CHECK(inst.problem.symmetric_jacobian());
  const TensorList w0 = inst.problem.initial_state();
  CHECK(w0[0].shape() == Shape{16, 10});
  // λ0 = the clean rows: the projection leaves them unchanged, all pixels in [0, 1].
  CHECK(list::distance({inst.projections[0](inst.lambda0[0])}, inst.lambda0) == 0.0);
  const Extent e = extent(inst.lambda0[0], inst.lambda0[0]);
  CHECK(e.lo >= 0.0);
  CHECK(e.hi <= 1.0);
  CHECK(estimate_contraction(inst.problem, w0, inst.lambda0) < 1.0);
}

TEST_CASE("poisoning: AID-CG and ITD agree with finite differences and the exact hypergradient") {
  // Two poisoned points (32 pixels): finite differences cost 64 inner solves, each of a few
  // hundred steps with l2 = 0.05 (contraction 1 − η·l2 ≈ 0.9).
  const Instance inst = make_problem("poisoning", small({{"fraction", "0.05"}, {"l2", "0.05"}}));
  REQUIRE(inst.lambda0[0].numel() == 32);
  // At the clean points the hypergradient is not zero: E's gradient in w is not.
  const Hypergradient at_clean = exact_hypergradient(inst.problem, inst.lambda0);
  CHECK(list::norm(at_clean.grad) > 1e-4);

  // A random feasible λ away from the clean points.
  Generator gen(11);
  const TensorList lam{inst.projections[0](inst.lambda0[0] + 0.2 * randn(inst.lambda0[0].shape(), gen))};
  const Hypergradient exact = exact_hypergradient(inst.problem, lam);
  // Step 1e-4: the O(h²) error is far below the inner solve's O(δ/h) at h = 1e-5.
  const Hypergradient fd = finite_difference_hypergradient(inst.problem, lam, {.step = 1e-4});
  AID aid({.inner_steps = 20000, .inner_tolerance = Tolerance::absolute(1e-12), .solver = linsolve::cg(), .linear_steps = 500,
           .linear_tolerance = Tolerance::relative(1e-12)});
  const Hypergradient h_aid = aid.hypergradient(inst.problem, lam);
  ITD itd({.inner_steps = 300});
  const Hypergradient h_itd = itd.hypergradient(inst.problem, lam);

  const double e_fd = rel_error(fd.grad, exact.grad), e_aid = rel_error(h_aid.grad, exact.grad),
               e_itd = rel_error(h_itd.grad, exact.grad), e_aid_fd = rel_error(h_aid.grad, fd.grad);
  MESSAGE("‖h‖ = " << list::norm(exact.grad) << "; rel. errors vs exact: FD " << e_fd << ", AID-CG " << e_aid
                   << ", ITD " << e_itd << "; AID-CG vs FD " << e_aid_fd);
  CHECK(e_fd < 1e-6);
  CHECK(e_aid < 1e-8);
  CHECK(e_aid_fd < 1e-6);
  CHECK(e_itd < 1e-5);
  CHECK(std::abs(h_aid.objective - exact.objective) < 1e-10);
}

TEST_CASE("poisoning: minibatch maps average to the full-batch map") {
  const Instance inst = make_problem("poisoning", small());
  const StochasticProblem& sp = *inst.stochastic;
  REQUIRE(sp.n_inner() == 40);
  REQUIRE(sp.n_outer() == 40);
  Generator gen(5);
  const TensorList lam{inst.projections[0](inst.lambda0[0] + 0.3 * randn(inst.lambda0[0].shape(), gen))};
  const TensorList w{inst.problem.initial_state()[0] + 0.1 * randn({16, 10}, gen),
                  inst.problem.initial_state()[1] + 0.1 * randn({10}, gen)};
  // Two halves of equal size, each mixing poisoned (indices < 4) and clean points, out of
  // order: Φ is w − η∇L with L a batch mean plus the ℓ2 term, so the halves average to Φ.
  BatchSampler sampler(40, Sampling::without_replacement, 9);
  const Batch a = sampler.next(20), b = sampler.next(20);
  const TensorList pa = sp.phi(w, lam, a), pb = sp.phi(w, lam, b), full = inst.problem.phi(w, lam);
  const TensorList avg{0.5 * (pa[0] + pb[0]), 0.5 * (pa[1] + pb[1])};
  CHECK(list::distance(avg, full) < 1e-12 * list::norm(full));
  CHECK(list::distance(pa, full) > 1e-6);  // the batches do differ
  const double ea = sp.outer(w, lam, a).item(), eb = sp.outer(w, lam, b).item();
  CHECK(0.5 * (ea + eb) == doctest::Approx(inst.problem.outer(w, lam).item()).epsilon(1e-12));
}

TEST_CASE("poisoning: a short attack stays feasible and raises the validation loss") {
  // radius 0.5 makes the ball bind (the 4×4 pixel cube alone has diameter 4).
  const Instance inst = make_problem("poisoning", small({{"radius", "0.5"}}));
  AID aid({.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 50});
  OuterOptions o = outer_options(inst);
  o.warm_start = WarmStart::inner;
  OuterOptimizer opt(inst.problem, aid, inst.lambda0, o, inst.projections);
  const Tensor& clean = inst.lambda0[0];
  double largest = 0;
  for (int s = 0; s < 8; ++s) {
    opt.step();
    const Extent e = extent(opt.lambda()[0], clean);
    CHECK(e.max_dist <= 0.5 + 1e-9);
    CHECK(e.lo >= 0.0);
    CHECK(e.hi <= 1.0);
    largest = std::max(largest, e.max_dist);
  }
  CHECK(largest > 0.49);  // some row reached its budget: the ball constraint was active
  const double before = outer_value(inst.problem, inst.lambda0, kTight);
  const double after = outer_value(inst.problem, opt.lambda(), kTight);
  MESSAGE("validation cross-entropy " << before << " -> " << after << " after 8 steps");
  CHECK(after > before + 0.01);
}

TEST_CASE("poisoning: evaluate reports poisoned, random and clean accuracies") {
  const Instance inst = make_problem("poisoning", small());
  const Metrics at_clean = inst.evaluate(inst.lambda0);
  const double clean = metric(at_clean, "test_acc_clean");
  CHECK(clean > 0.4);  // 10 classes from 40 blurred 4×4 digits: well above chance
  // Nothing poisoned: retraining gives the clean model back.
  CHECK(metric(at_clean, "test_acc_poisoned") == clean);
  CHECK(metric(at_clean, "test_acc_random") == clean);
  CHECK(metric(at_clean, "mean_perturbation") == 0.0);

  AID aid({.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 50});
  OuterOptions o = outer_options(inst);  // maximizing, as the instance does
  o.warm_start = WarmStart::inner;
  o.outer_steps = 15;
  OuterOptimizer opt(inst.problem, aid, inst.lambda0, o, inst.projections);
  opt.run();
  const Metrics m = inst.evaluate(opt.lambda());
  std::string line;
  for (const auto& [k, v] : m) line += k + " " + std::to_string(v) + "  ";
  MESSAGE(line);
  for (const char* k : {"test_acc_poisoned", "test_acc_random", "test_acc_clean"}) {
    CHECK(metric(m, k) >= 0.0);
    CHECK(metric(m, k) <= 1.0);
  }
  CHECK(metric(m, "test_acc_clean") == clean);
  CHECK(metric(m, "mean_perturbation") > 0.1);
  // The attack hurts more than random noise of the same size.
  CHECK(metric(m, "test_loss_poisoned") > metric(m, "test_loss_random"));
  CHECK(metric(m, "test_loss_poisoned") > metric(m, "test_loss_clean"));
}

TEST_CASE("poisoning: bad options are rejected with the problem and option named") {
  const auto fails = [](std::map<std::string, std::string> opts, const std::string& text) {
    CHECK_THROWS_WITH_AS(make_problem("poisoning", small(std::move(opts))), doctest::Contains(text.c_str()),
                         ValueError);
  };
  fails({{"fraction", "1.5"}}, "problem 'poisoning': option fraction=1.5 is outside [0, 1]");
  fails({{"fraction", "0.001"}}, "option fraction=0.001 poisons no point of train_size=40");
  fails({{"radius", "-1"}}, "option radius=-1 is outside");
  fails({{"train_size", "abc"}}, "option train_size='abc' is not a whole number");
  fails({{"l2", "0"}}, "option l2=0 is outside");
  fails({{"downsample", "3"}}, "option downsample=3 does not divide the 8×8 images of digits");
  fails({{"train_size", "1500"}, {"val_size", "300"}}, "the requested sizes need 1900 examples but digits has 1797");
  fails({{"epochs", "3"}}, "unknown option 'epochs'");
  CHECK_THROWS_WITH_AS(make_problem("poisoning", {.dataset = "wine"}), doctest::Contains("unknown dataset 'wine'"),
                       ValueError);
  CHECK_THROWS_WITH_AS(
      make_problem("poisoning", {.dataset = "fashion_mnist", .data_dir = "/nonexistent/fmnist", .small = true}),
      doctest::Contains("apt-get install dataset-fashion-mnist"), DataError);
}

TEST_CASE("poisoning: the default Fashion-MNIST instance") {
  try {
    (void)fashion_mnist_dir();
  } catch (const DataError&) {
    hyperad::testing::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
#if defined(__SANITIZE_ADDRESS__)
  // Sanitized builds run ~30× slower: the same code path on fewer images.
  const std::int64_t n = 200;
  const Instance inst =
      make_problem("poisoning", {.options = {{"train_size", "200"}, {"val_size", "200"}, {"test_size", "200"}}});
#else
  const std::int64_t n = 1000;
  const Instance inst = make_problem("poisoning");
#endif
  CHECK(inst.lambda0[0].shape() == Shape{n / 5, 196});  // 20% of the images, 14×14 pixels
  CHECK(inst.problem.initial_state()[0].shape() == Shape{196, 10});
  CHECK(inst.stochastic->n_inner() == n);
  CHECK(inst.stochastic->n_outer() == n);
  CHECK(inst.summary.find("fashion_mnist") != std::string::npos);
  const Metrics m = inst.evaluate(inst.lambda0);
  MESSAGE("clean test accuracy " << metric(m, "test_acc_clean"));
  CHECK(metric(m, "test_acc_clean") > 0.7);
  CHECK(metric(m, "test_acc_poisoned") == metric(m, "test_acc_clean"));
}
