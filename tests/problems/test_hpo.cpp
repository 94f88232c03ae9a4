// The hyperparameter-optimization problems (logreg, ridge, multinomial, kernel_ridge,
// text_hpo): on
// their small versions, AID-CG and ITD agree with the exact (dense) and finite-difference
// hypergradients; the stochastic versions give the same problem on full batches; short
// outer runs lower the validation objective; evaluate re-solves the inner problem; bad
// options, values and datasets are rejected with messages naming them.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "hyperad/bilevel.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using namespace hyperad::problems;

namespace {

double rel_error(const TensorList& a, const TensorList& b) {
  const std::vector<double> x = list::flatten(a), y = list::flatten(b);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num / den);
}

double l2(const TensorList& a) {
  double s = 0;
  for (double v : list::flatten(a)) s += v * v;
  return std::sqrt(s);
}

// λ0 moved by a seeded uniform offset in [lo, hi] per coordinate (a generic point: not the
// constant start, where symmetric mistakes could cancel).
TensorList perturbed(const TensorList& lambda0, double lo, double hi, std::uint64_t seed) {
  Generator gen(seed);
  TensorList out;
  for (const Tensor& l : lambda0) out.push_back(l + (lo + (hi - lo) * rand(l.shape(), gen)));
  return out;
}

struct Case {
  std::string name, dataset;
  std::map<std::string, std::string> options;
  double lo, hi;  // offsets of the test point from λ0
  int t;          // inner steps for AID and ITD (converged on the small version)
};

std::string message_of(const std::string& name, const ProblemConfig& c) {
  try {
    make_problem(name, c);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "(no error)";
}

double metric(const Metrics& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  FAIL("no metric " << key);
  return 0.0;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("hpo: the family is registered") {
  for (const std::string name : {"logreg", "ridge", "multinomial", "kernel_ridge", "text_hpo"}) {
    const ProblemInfo& info = find_problem(name);
    CHECK(info.family == "hyperparameters");
    CHECK(!info.datasets.empty());
  }
  CHECK(find_problem("logreg").datasets.front() == "breast_cancer");
}

TEST_CASE("hpo: small problems' hypergradients agree with exact and finite differences") {
  const std::vector<Case> cases = {
      {"logreg", "breast_cancer", {}, 0.5, 2.5, 1500},  // λ0 = −2: test λ in [−1.5, 0.5]
      {"logreg", "synthetic", {}, 0.5, 2.5, 1500},
      {"ridge", "diabetes", {}, -1.5, 1.0, 1500},
      {"multinomial", "digits", {}, 2.0, 4.5, 3000},
      {"multinomial", "wine", {{"reg", "per-class"}}, 2.0, 4.5, 3000},
      {"kernel_ridge", "diabetes", {}, -0.5, 0.5, 1500},
      {"text_hpo", "zipf", {}, 2.0, 4.0, 3000},  // λ0 = −6: test λ in [−4, −2]
      {"text_hpo", "wordnet", {{"reg", "per-term-class"}}, 2.0, 4.0, 3000},  // small: zipf whatever the dataset
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CAPTURE(c.dataset);
    const Instance inst = make_problem(c.name, {.dataset = c.dataset, .seed = 3, .small = true, .options = c.options});
    const TensorList lambda = perturbed(inst.lambda0, c.lo, c.hi, 11);

    const Hypergradient exact = exact_hypergradient(inst.problem, lambda);
    const Hypergradient fd = finite_difference_hypergradient(inst.problem, lambda);
    AID aid({.inner_steps = c.t, .inner_tolerance = Tolerance::absolute(1e-13), .solver = linsolve::cg(), .linear_steps = 300,
             .linear_tolerance = Tolerance::relative(1e-12)});
    ITD itd({.inner_steps = c.t});
    const Hypergradient h_aid = aid.hypergradient(inst.problem, lambda);
    const Hypergradient h_itd = itd.hypergradient(inst.problem, lambda);

    const double e_fd = rel_error(exact.grad, fd.grad), e_aid = rel_error(h_aid.grad, exact.grad),
                 e_itd = rel_error(h_itd.grad, exact.grad);
    MESSAGE(c.name << "/" << c.dataset << ": |h| = " << l2(exact.grad) << ", exact vs FD " << e_fd << ", AID-CG "
                   << e_aid << ", ITD(t=" << c.t << ") " << e_itd);
    CHECK(l2(exact.grad) > 1e-4);  // a zero hypergradient would make the comparisons vacuous
    CHECK(e_fd < 1e-4);
    CHECK(e_aid < 1e-7);
    CHECK(e_itd < 1e-4);
    CHECK(std::abs(h_aid.objective - exact.objective) < 1e-9);
  }
}

TEST_CASE("hpo: the stochastic versions are the same problems on full batches") {
  for (const std::string name : {"logreg", "multinomial", "text_hpo"}) {
    CAPTURE(name);
    const Instance inst = make_problem(name, {.seed = 1, .small = true});
    REQUIRE(inst.stochastic.has_value());
    const StochasticProblem& sp = *inst.stochastic;
    const TensorList lambda = perturbed(inst.lambda0, 1.0, 2.5, 5);
    const Hypergradient a = exact_hypergradient(inst.problem, lambda);
    const Hypergradient b = exact_hypergradient(sp.full_batch(), lambda);
    CHECK(rel_error(b.grad, a.grad) < 1e-12);

    // Minibatch SID, averaged over calls, points along the exact hypergradient.
    SID sid(sp, {.inner_steps = 400, .linear_steps = 200, .inner_batch = sp.n_inner() / 2,
                 .linear_batch = sp.n_inner() / 2, .outer_batch = 0, .inner_step = StepSizeSchedule::inverse(1.0, 50.0),
                 .linear_step = StepSizeSchedule::inverse(1.0, 50.0), .seed = 9});
    std::vector<double> mean_h(list::flatten(a.grad).size(), 0.0);
    const int calls = 4;
    for (int k = 0; k < calls; ++k) {
      const std::vector<double> h = list::flatten(sid.hypergradient(inst.problem, lambda).grad);
      for (std::size_t i = 0; i < h.size(); ++i) mean_h[i] += h[i] / calls;
    }
    const std::vector<double> ex = list::flatten(a.grad);
    double dot = 0, nm = 0, ne = 0;
    for (std::size_t i = 0; i < ex.size(); ++i) {
      dot += mean_h[i] * ex[i];
      nm += mean_h[i] * mean_h[i];
      ne += ex[i] * ex[i];
    }
    const double cosine = dot / std::sqrt(nm * ne);
    MESSAGE(name << ": cosine(mean SID, exact) = " << cosine);
    CHECK(cosine > 0.9);
  }
}

TEST_CASE("hpo: a short outer run lowers the validation objective") {
  for (const std::string name : {"logreg", "ridge", "multinomial", "kernel_ridge", "text_hpo"}) {
    CAPTURE(name);
    const Instance inst = make_problem(name, {.seed = 2, .small = true});
    const Defaults& d = inst.defaults;
    AID aid({.inner_steps = d.inner_steps, .solver = linsolve::cg(), .linear_steps = d.linear_steps});
    OuterOptions o = outer_options(inst);
    o.outer_steps = 8;
    OuterOptimizer opt(inst.problem, aid, inst.lambda0, o, inst.projections);
    opt.run();
    const InnerOptions solve{.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-11)};
    const double before = outer_value(inst.problem, inst.lambda0, solve);
    const double after = outer_value(inst.problem, opt.lambda(), solve);
    MESSAGE(name << ": validation objective " << before << " -> " << after);
    CHECK(after < before - 1e-3 * std::abs(before));
    CHECK(std::isfinite(opt.history().back().validation));
  }
}

TEST_CASE("hpo: logreg's defaults improve the full breast_cancer problem") {
  const Instance inst = make_problem("logreg");
  CHECK(inst.stochastic.has_value());
  CHECK(inst.validation_name == "val_acc");
  const Defaults& d = inst.defaults;
  AID aid({.inner_steps = d.inner_steps, .solver = linsolve::cg(), .linear_steps = d.linear_steps});
  OuterOptions o = outer_options(inst);
  o.outer_steps = 15;
  OuterOptimizer opt(inst.problem, aid, inst.lambda0, o, inst.projections);
  opt.run();
  const Metrics m0 = inst.evaluate(inst.lambda0), m1 = inst.evaluate(opt.lambda());
  MESSAGE("val_loss " << metric(m0, "val_loss") << " -> " << metric(m1, "val_loss") << ", test_accuracy "
                      << metric(m0, "test_accuracy") << " -> " << metric(m1, "test_accuracy"));
  CHECK(metric(m1, "val_loss") < 0.8 * metric(m0, "val_loss"));
  CHECK(metric(m1, "test_accuracy") > 0.9);
  // Every λ of the run stayed in the box.
  for (double v : opt.lambda()[0].to_vector()) CHECK((v >= -8.0 && v <= 2.0));
}

TEST_CASE("hpo: evaluate reports finite metrics") {
  for (const std::string name : {"ridge", "multinomial", "kernel_ridge"}) {
    CAPTURE(name);
    const Instance inst = make_problem(name, {.small = true});
    const Metrics m = inst.evaluate(inst.lambda0);
    REQUIRE(!m.empty());
    for (const auto& [k, v] : m) {
      CAPTURE(k);
      CHECK(std::isfinite(v));
    }
    CHECK(!inst.summary.empty());
  }
}

TEST_CASE("hpo: evaluate re-solves the inner problem") {
  // Its validation loss is the outer objective at the inner solution (E is the mean loss).
  const InnerOptions solve{.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-12)};
  for (const std::string name : {"logreg", "multinomial", "text_hpo"}) {
    CAPTURE(name);
    const Instance inst = make_problem(name, {.small = true});
    const TensorList lambda = perturbed(inst.lambda0, 1.0, 2.0, 8);
    CHECK(metric(inst.evaluate(lambda), "val_loss") ==
          doctest::Approx(outer_value(inst.problem, lambda, solve)).epsilon(1e-8));
  }
  // ridge and kernel_ridge: E is half the mean squared error on the standardized target and
  // evaluate reports the MSE in the target's units, so their ratio (2·sd²) is the same at any
  // λ when evaluate re-solves correctly (kernel_ridge does it by LU, E's solve by descent).
  for (const std::string name : {"ridge", "kernel_ridge"}) {
    CAPTURE(name);
    const Instance inst = make_problem(name, {.small = true});
    const TensorList a = perturbed(inst.lambda0, -1.0, 0.0, 8), b = perturbed(inst.lambda0, 0.0, 1.0, 9);
    const double ra = metric(inst.evaluate(a), "val_mse") / outer_value(inst.problem, a, solve);
    const double rb = metric(inst.evaluate(b), "val_mse") / outer_value(inst.problem, b, solve);
    CHECK(ra == doctest::Approx(rb).epsilon(1e-8));
    CHECK(outer_value(inst.problem, a, solve) != doctest::Approx(outer_value(inst.problem, b, solve)));
  }
}

TEST_CASE("hpo: the synthetic dataset is seeded") {
  const ProblemConfig a{.dataset = "synthetic", .seed = 4, .small = true};
  ProblemConfig b = a;
  b.seed = 5;
  const InnerOptions solve{.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-10)};
  const Instance i1 = make_problem("logreg", a), i2 = make_problem("logreg", a), i3 = make_problem("logreg", b);
  const double f1 = outer_value(i1.problem, i1.lambda0, solve), f2 = outer_value(i2.problem, i2.lambda0, solve),
               f3 = outer_value(i3.problem, i3.lambda0, solve);
  CHECK(f1 == f2);
  CHECK(f1 != f3);
  const Instance big = make_problem("logreg", {.dataset = "synthetic", .options = {{"n", "200"}, {"d", "12"}}});
  CHECK(big.lambda0[0].numel() == 12);
}

TEST_CASE("hpo: multinomial's λ has one entry per feature or per class") {
  const Instance f = make_problem("multinomial", {.dataset = "wine", .small = true});
  const Instance c = make_problem("multinomial", {.dataset = "wine", .small = true, .options = {{"reg", "per-class"}}});
  CHECK(f.lambda0[0].numel() == 6);
  CHECK(c.lambda0[0].numel() == 3);
}

TEST_CASE("text_hpo: λ per term or per term and class; sparse data of the asked size") {
  const Instance t = make_problem("text_hpo", {.dataset = "zipf", .small = true});
  const Instance tc = make_problem("text_hpo", {.dataset = "zipf", .small = true, .options = {{"reg", "per-term-class"}}});
  CHECK(t.lambda0[0].shape() == Shape{12});
  CHECK(tc.lambda0[0].shape() == Shape{12, 3});
  const Instance big = make_problem("text_hpo", {.dataset = "zipf", .options = {{"terms", "3000"}, {"documents", "500"}}});
  CHECK(big.lambda0[0].numel() == 3000);
  CHECK(contains(big.summary, "documents, 3000 terms"));
  // 60 % of about 500 documents (stratified: each of the 20 classes rounded on its own).
  CHECK(std::abs(big.stochastic->n_inner() - 300) <= 20);
  CHECK(contains(message_of("text_hpo", {.dataset = "wordnet", .options = {{"terms", "10"}}}),
                 "option terms applies to dataset zipf only"));
  CHECK(contains(message_of("text_hpo", {.small = true, .options = {{"reg", "dense"}}}),
                 "option reg='dense' is not one of: per-term, per-term-class"));
  CHECK(contains(message_of("text_hpo", {.small = true, .options = {{"lambda0", "1"}}}), "lambda0"));
  CHECK(contains(message_of("text_hpo", {.dataset = "zipf", .options = {{"documents", "5"}}}),
                 "option documents=5 leaves"));
  CHECK(contains(message_of("text_hpo", {.dataset = "zipf", .options = {{"terms", "10"}}}), "terms"));
}

TEST_CASE("text_hpo: the fused softmax_model op and the composition give one hypergradient") {
  // Per term and per term and class, on a 400-term corpus: AID-CG and ITD from each model.
  for (const std::string reg : {"per-term", "per-term-class"}) {
    std::vector<std::vector<double>> got;
    for (const std::string model : {"fused", "composed"}) {
      const Instance inst = make_problem(
          "text_hpo", {.dataset = "zipf", .seed = 3,
                       .options = {{"terms", "400"}, {"documents", "300"}, {"reg", reg}, {"model", model}}});
      CHECK(contains(inst.summary, model + " cross-entropy"));
      const TensorList lambda = perturbed(inst.lambda0, 2.0, 4.0, 8);
      AID aid({.inner_steps = 300, .solver = linsolve::cg(), .linear_steps = 40});
      ITD itd({.inner_steps = 30});
      std::vector<double> h = list::flatten(aid.hypergradient(inst.problem, lambda).grad);
      const std::vector<double> hi = list::flatten(itd.hypergradient(inst.problem, lambda).grad);
      h.insert(h.end(), hi.begin(), hi.end());
      got.push_back(h);
    }
    INFO(reg);
    REQUIRE(got[0].size() == got[1].size());
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < got[0].size(); ++i) {
      err = std::max(err, std::abs(got[0][i] - got[1][i]));
      scale = std::max(scale, std::abs(got[1][i]));
    }
    CHECK(scale > 1e-6);
    CHECK(err <= 1e-11 * scale);
  }
  CHECK(contains(message_of("text_hpo", {.small = true, .options = {{"model", "dense"}}}),
                 "option model='dense' is not one of: fused, composed"));
}

TEST_CASE("text_hpo: 3000 terms, AID-CG against a directional finite difference on a random subset of terms") {
  // The check at a size where the exact hypergradient (a dense 60,000-square
  // system) is out of reach: h·v against (f(λ + εv) − f(λ − εv)) / 2ε for v a random unit
  // direction over 20 random terms, f from inner solves to a step of 1e-13.
  const Instance inst =
      make_problem("text_hpo", {.dataset = "zipf", .seed = 4, .options = {{"terms", "3000"}, {"documents", "500"}}});
  const TensorList lambda = perturbed(inst.lambda0, 2.0, 4.0, 6);
  AID aid({.inner_steps = 20000, .inner_tolerance = Tolerance::absolute(1e-13), .solver = linsolve::cg(),
           .linear_steps = 2000, .linear_tolerance = Tolerance::relative(1e-12)});
  const Hypergradient h = aid.hypergradient(inst.problem, lambda);
  const std::vector<double> g = list::flatten(h.grad);
  Generator gen(21);
  std::vector<double> v(g.size(), 0.0);
  double norm = 0;
  for (int k = 0; k < 20; ++k) {
    const auto j = static_cast<std::size_t>(gen.below(g.size()));
    v[j] = gen.normal();
  }
  for (double x : v) norm += x * x;
  for (double& x : v) x /= std::sqrt(norm);
  double hv = 0;
  for (std::size_t j = 0; j < g.size(); ++j) hv += g[j] * v[j];
  const InnerOptions solve{.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-13)};
  const double eps = 1e-3;
  const TensorList vl = list::unflatten(v, lambda);
  TensorList plus = list::clone(lambda), minus = list::clone(lambda);
  list::axpy(eps, vl, plus);
  list::axpy(-eps, vl, minus);
  const double fd = (outer_value(inst.problem, plus, solve) - outer_value(inst.problem, minus, solve)) / (2 * eps);
  MESSAGE("text_hpo, 3000 terms: h·v = " << hv << ", directional FD = " << fd << ", |h| = " << l2(h.grad));
  CHECK(std::abs(hv) > 1e-5);  // a vanishing derivative would make the comparison vacuous
  CHECK(std::abs(hv - fd) <= 1e-5 * std::abs(fd));  // relative: Approx's default scale of 1 would allow 10 %
}

TEST_CASE("hpo: bad options, values and datasets are rejected") {
  std::string m = message_of("logreg", {.options = {{"alpha", "1"}}});
  CHECK(contains(m, "problem 'logreg': unknown option 'alpha'"));
  CHECK(contains(m, "lambda0"));

  m = message_of("logreg", {.dataset = "digits"});
  CHECK(contains(m, "unknown dataset 'digits'"));
  CHECK(contains(m, "breast_cancer, synthetic"));

  m = message_of("logreg", {.options = {{"lambda0", "abc"}}});
  CHECK(contains(m, "option lambda0='abc' is not a number"));

  m = message_of("ridge", {.options = {{"lambda0", "5"}}});
  CHECK(contains(m, "problem 'ridge': option lambda0=5 is outside [-8, 2]"));

  m = message_of("logreg", {.options = {{"n", "100"}}});
  CHECK(contains(m, "option n applies to dataset synthetic only"));

  m = message_of("logreg", {.dataset = "synthetic", .options = {{"noise", "0.9"}}});
  CHECK(contains(m, "option noise=0.9 is outside [0, 0.5]"));

  m = message_of("multinomial", {.options = {{"reg", "per-sample"}}});
  CHECK(contains(m, "problem 'multinomial': option reg='per-sample' is not one of: per-feature, per-class"));

  m = message_of("kernel_ridge", {.options = {{"log_reg0", "9"}}});
  CHECK(contains(m, "problem 'kernel_ridge': option log_reg0=9 is outside [-6, 2]"));
}

TEST_CASE("kernel_ridge: AID-CG with tolerance 0 and K far past convergence stays at the solution") {
  // Regression: CG used to keep iterating on a rounding-level residual and blew the
  // hypergradient up to a relative error of 1e32 (t = 34) and 1e37 (t = 200) with K = 1000.
  // It now stops at eps·‖b‖; what remains is the error of the inner solve alone.
  const Instance inst = make_problem("kernel_ridge", {.small = true, .options = {{"log_reg0", "1"}}});
  const Hypergradient exact = exact_hypergradient(inst.problem, inst.lambda0);
  double previous = 1e300;
  for (int t : {34, 200}) {
    AID aid({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = 1000, .linear_tolerance = Tolerance::relative(0.0)});
    const Hypergradient h = aid.hypergradient(inst.problem, inst.lambda0);
    INFO("t = " << t);
    CHECK(h.diagnostics.linear.converged());
    CHECK(h.diagnostics.linear.iterations < 1000);
    const double err = rel_error(h.grad, exact.grad);
    CHECK(err < 1e-2);
    CHECK(err < previous);  // more inner steps, smaller error
    previous = err;
  }
  CHECK(previous < 1e-8);
}

TEST_CASE("degenerate data is refused by cause, not run to a meaningless result") {
  // Stand-ins for the bundled CSVs, through HYPERAD_DATA_DIR.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "hyperad_test_hpo_degenerate";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& header, auto row, int rows) {
    std::ofstream f(dir / name);
    f << header << "\n";
    for (int i = 0; i < rows; ++i) f << row(i) << "\n";
  };
  auto make = [&](const char* problem) { return [problem] { (void)make_problem(problem, {}); }; };
  ::setenv("HYPERAD_DATA_DIR", dir.c_str(), 1);
  // One class only: accuracy would be 1 whatever λ is.
  write("breast_cancer.csv", "a,b,label", [](int i) { return std::to_string(i % 7) + "," + std::to_string(i % 3) + ",1"; }, 60);
  CHECK_THROWS_WITH_AS(make("logreg")(), doctest::Contains("hold 1 class; classification needs at least 2"), ValueError);
  // A constant target: R² undefined.
  write("diabetes.csv", "a,b,y", [](int i) { return std::to_string(i % 7) + "," + std::to_string(i % 5) + ",3"; }, 60);
  CHECK_THROWS_WITH_AS(make("ridge")(), doctest::Contains("the training targets are constant"), ValueError);
  // Values near the float range: standardizing overflows.
  write("diabetes.csv", "a,b,y", [](int i) { return (i < 2 ? std::string("1e308") : std::to_string(i)) + ",1," + std::to_string(i); }, 60);
  CHECK_THROWS_WITH_AS(make("ridge")(), doctest::Contains("the features' squares overflow"), ValueError);
  // Too few rows to split.
  for (int rows : {1, 3}) {
    CAPTURE(rows);
    write("diabetes.csv", "a,b,y", [](int i) { return std::to_string(i) + "," + std::to_string(i * i) + "," + std::to_string(i); }, rows);
    CHECK_THROWS_WITH_AS(make("ridge")(), doctest::Contains("the problem needs at least 2 training, 1 validation and 1 test"),
                         ValueError);
  }
  ::unsetenv("HYPERAD_DATA_DIR");
  std::filesystem::remove_all(dir);
}
