// The meta-learning problems (meta_biased, meta_hyperrep): hypergradients of the small
// instances against finite differences and the exact dense hypergradient, a short outer
// run that lowers the outer objective, seeded N-way K-shot task sampling and the class
// split, and the rejection of bad options.
#include <doctest/doctest.h>

#include "skip.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hyperad/problems/meta_tasks.hpp"
#include "hyperad/bilevel.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using namespace hyperad::problems;

namespace {

double rel_error(const TensorList& a, const TensorList& b) {
  NoGradGuard off;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += squared_norm(a[i] - b[i]).item();
    den += squared_norm(b[i]).item();
  }
  return std::sqrt(num / den);
}

double grad_norm(const TensorList& g) {
  NoGradGuard off;
  double s = 0;
  for (const Tensor& t : g) s += squared_norm(t).item();
  return std::sqrt(s);
}

// λ0 moved randomly (a point where nothing is special), kept inside any projection.
TensorList random_lambda(const Instance& inst, std::uint64_t seed) {
  Generator gen(seed);
  TensorList lam;
  for (std::size_t i = 0; i < inst.lambda0.size(); ++i) {
    Tensor l = inst.lambda0[i] + 0.3 * randn(inst.lambda0[i].shape(), gen);
    lam.push_back(inst.projections.empty() ? l : inst.projections[i](l));
  }
  return lam;
}

struct Case {
  std::string name;
  std::map<std::string, std::string> options;
};

const std::vector<Case> kCases = {
    {"meta_biased", {}},
    {"meta_biased", {{"head", "ridge"}}},
    {"meta_hyperrep", {}},
    {"meta_hyperrep", {{"map", "mlp"}, {"head", "ridge"}}},
    {"meta_hyperrep", {{"map", "cnn"}}},  // 4×4 images: 2 blocks of 4 channels
};

std::string describe(const Case& c) {
  std::string s = c.name;
  for (const auto& [k, v] : c.options) s += " " + k + "=" + v;
  return s;
}

template <class F>
void expect_error(F&& f, const std::string& fragment) {
  try {
    f();
    FAIL("no exception; expected one containing: " << fragment);
  } catch (const Error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("meta problems are registered in the meta-learning family") {
  for (const char* name : {"meta_biased", "meta_hyperrep"}) {
    const ProblemInfo& info = find_problem(name);
    CHECK(info.family == "meta-learning");
    CHECK(info.datasets == std::vector<std::string>{"digits", "fashion_mnist"});
  }
}

TEST_CASE("small meta problems: AID-CG and ITD agree with finite differences and the exact hypergradient") {
  for (const Case& c : kCases) {
    INFO(describe(c));
    Instance inst = make_problem(c.name, {.seed = 3, .small = true, .options = c.options});
    const TensorList lam = random_lambda(inst, 11);
    Hypergradient exact = exact_hypergradient(inst.problem, lam);
    Hypergradient fd = finite_difference_hypergradient(inst.problem, lam);
    // The inner step is bounded over 256 calibration tasks, not just these two: more steps.
    AID aid({.inner_steps = 2000, .solver = linsolve::cg(), .linear_steps = 100, .linear_tolerance = Tolerance::relative(1e-13)});
    ITD itd({.inner_steps = 2000});
    Hypergradient h_aid = aid.hypergradient(inst.problem, lam);
    Hypergradient h_itd = itd.hypergradient(inst.problem, lam);
    REQUIRE(grad_norm(exact.grad) > 1e-4);  // a meaningful comparison
    const double e_fd = rel_error(fd.grad, exact.grad), e_aid = rel_error(h_aid.grad, exact.grad),
                 e_itd = rel_error(h_itd.grad, exact.grad), e_aid_fd = rel_error(h_aid.grad, fd.grad);
    MESSAGE(describe(c) << ": |h| " << grad_norm(exact.grad) << ", FD vs exact " << e_fd << ", AID-CG " << e_aid
                        << ", ITD " << e_itd << ", AID vs FD " << e_aid_fd);
    CHECK(e_fd < 1e-5);
    CHECK(e_aid < 1e-8);
    CHECK(e_itd < 1e-8);
    CHECK(e_aid_fd < 1e-5);
  }
}

TEST_CASE("a short outer run lowers the outer objective") {
  for (const Case& c : kCases) {
    INFO(describe(c));
    Instance inst = make_problem(c.name, {.seed = 5, .small = true, .options = c.options});
    AID aid({.inner_steps = 100, .solver = linsolve::cg(), .linear_steps = 30});
    OuterOptions options;
    options.outer_steps = 15;
    options.step_size = StepSizeSchedule::constant(0.05);
    options.update = OuterUpdate::adam;
    OuterOptimizer opt(inst.problem, aid, inst.lambda0, options, inst.projections);
    opt.run();
    const InnerOptions tight{.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-12)};
    const double before = outer_value(inst.problem, inst.lambda0, tight);
    const double after = outer_value(inst.problem, opt.lambda(), tight);
    MESSAGE(describe(c) << ": outer objective " << before << " -> " << after);
    CHECK(after < before - 1e-3);
    // The meta-test metrics exist and are accuracies.
    const Metrics m = inst.evaluate(opt.lambda());
    REQUIRE(m.size() == 5);
    CHECK(m[0].first == "test_accuracy");
    CHECK(m[1].first == "test_accuracy_ci95");
    CHECK((m[1].second > 0 && m[1].second < 0.5));  // 1.96·sd/√20 of per-task accuracies
    for (const auto& [key, value] : m)
      if (key.find("accuracy") != std::string::npos) CHECK((value >= 0 && value <= 1));
    const InnerResult r = solve_inner(inst.problem, opt.lambda(), inst.problem.initial_state(), tight);
    const double acc = inst.validation(r.state, opt.lambda());
    CHECK((acc >= 0 && acc <= 1));
  }
}

TEST_CASE("task sampling: N-way K-shot counts, class split, reproducible from the seed") {
  using namespace hyperad::problems::meta;
  for (bool on_classes : {true, false}) {
    INFO("meta_test on classes: " << on_classes);
    ProblemConfig config{.seed = 7, .options = {{"meta_test", on_classes ? "classes" : "examples"}}};
    const MetaOptions o = parse_meta_options(config, "meta_biased", MetaOptions{.ways = 3, .train_classes = 6});
    const MetaPools pools = load_meta_pools(config, "meta_biased", "digits", o);
    // Class split: [0, 6) meta-train; [6, 10) meta-test, or held-out halves of [0, 6).
    CHECK(pools.train_classes == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
    for (std::int64_t l : pools.train.labels) CHECK(l < 6);
    for (std::int64_t l : pools.test.labels) CHECK((on_classes ? l >= 6 : l < 6));
    CHECK(pools.test_classes.size() == (on_classes ? 4u : 6u));
    if (!on_classes) {
      const auto n = static_cast<std::size_t>(pools.train.size() + pools.test.size());
      const std::vector<std::int64_t> labels = load_builtin("digits").labels;
      CHECK(n == static_cast<std::size_t>(
                     std::count_if(labels.begin(), labels.end(), [](std::int64_t l) { return l < 6; })));
    }

    const std::int64_t T = 6, N = 3, K = 4, Q = 2;
    Generator g1(42), g2(42), g3(43);
    const TaskSet a = sample_tasks(pools.train, pools.train_classes, T, N, K, Q, g1);
    const TaskSet b = sample_tasks(pools.train, pools.train_classes, T, N, K, Q, g2);
    const TaskSet c = sample_tasks(pools.train, pools.train_classes, T, N, K, Q, g3);
    CHECK(a.support_rows == b.support_rows);
    CHECK(a.query_rows == b.query_rows);
    CHECK(a.classes == b.classes);
    CHECK(a.support.to_vector() == b.support.to_vector());
    CHECK(a.support_rows != c.support_rows);
    CHECK(a.support.shape() == Shape{T, N * K, 64});
    CHECK(a.query.shape() == Shape{T, N * Q, 64});
    REQUIRE(a.support_labels.size() == static_cast<std::size_t>(T * N * K));
    REQUIRE(a.query_labels.size() == static_cast<std::size_t>(T * N * Q));
    std::set<std::int64_t> seen;
    for (std::int64_t t = 0; t < T; ++t) {
      const auto& cls = a.classes[static_cast<std::size_t>(t)];
      REQUIRE(cls.size() == static_cast<std::size_t>(N));
      CHECK(std::is_sorted(cls.begin(), cls.end()));
      CHECK(std::set<std::int64_t>(cls.begin(), cls.end()).size() == cls.size());
      seen.insert(cls.begin(), cls.end());
      const auto& s = a.support_rows[static_cast<std::size_t>(t)];
      const auto& q = a.query_rows[static_cast<std::size_t>(t)];
      std::set<std::int64_t> rows(s.begin(), s.end());
      rows.insert(q.begin(), q.end());
      CHECK(rows.size() == static_cast<std::size_t>(N * (K + Q)));  // no example used twice
      for (std::int64_t i = 0; i < N * K; ++i) {  // row i has label i / K, of class cls[i / K]
        const std::int64_t label = a.support_labels[static_cast<std::size_t>(t * N * K + i)];
        CHECK(label == i / K);
        CHECK(pools.train.labels[static_cast<std::size_t>(s[static_cast<std::size_t>(i)])] ==
              cls[static_cast<std::size_t>(label)]);
      }
      for (std::int64_t i = 0; i < N * Q; ++i) {
        const std::int64_t label = a.query_labels[static_cast<std::size_t>(t * N * Q + i)];
        CHECK(label == i / Q);
        CHECK(pools.train.labels[static_cast<std::size_t>(q[static_cast<std::size_t>(i)])] ==
              cls[static_cast<std::size_t>(label)]);
      }
    }
    for (std::int64_t cl : seen) CHECK(cl < 6);
    CHECK(seen.size() > static_cast<std::size_t>(N));  // tasks differ in their classes

    // The tasks of an instance follow config.seed.
    Instance i1 = make_problem("meta_biased", {.seed = 1, .small = true});
    Instance i2 = make_problem("meta_biased", {.seed = 1, .small = true});
    Instance i3 = make_problem("meta_biased", {.seed = 2, .small = true});
    const TensorList lam = random_lambda(i1, 1);
    const InnerOptions few{.max_iterations = 5};
    CHECK(outer_value(i1.problem, lam, few) == outer_value(i2.problem, lam, few));
    CHECK(outer_value(i1.problem, lam, few) != outer_value(i3.problem, lam, few));
  }
}

TEST_CASE("tasks by id: any grouping gives the same tasks; meta-test tasks never share a class with meta-train ones") {
  using namespace hyperad::problems::meta;
  ProblemConfig config{.seed = 4};
  const MetaOptions o = parse_meta_options(config, "meta_hyperrep", MetaOptions{.ways = 3, .shots = 2, .queries = 2});
  const MetaPools pools = load_meta_pools(config, "meta_hyperrep", "digits", o);
  const std::uint64_t train = task_stream(4, TaskStream::train), test = task_stream(4, TaskStream::test);
  CHECK(train != test);
  const TaskSet both = sample_tasks_by_id(pools.train, pools.train_classes, {3, 8}, train, 3, 2, 2);
  const TaskSet three = sample_tasks_by_id(pools.train, pools.train_classes, {3}, train, 3, 2, 2);
  const TaskSet eight = sample_tasks_by_id(pools.train, pools.train_classes, {8}, train, 3, 2, 2);
  CHECK(both.classes[0] == three.classes[0]);
  CHECK(both.classes[1] == eight.classes[0]);
  CHECK(both.support_rows[1] == eight.support_rows[0]);
  CHECK(narrow(both.support, 0, 1, 1).to_vector() == eight.support.to_vector());
  // The classes of 300 meta-train tasks and 600 meta-test tasks are disjoint.
  std::set<std::int64_t> seen_train, seen_test;
  const TaskSet tr = sample_tasks_by_id(pools.train, pools.train_classes, full_batch(300), train, 3, 2, 2);
  const TaskSet te = sample_tasks_by_id(pools.test, pools.test_classes, full_batch(600), test, 3, 2, 2);
  for (const auto& c : tr.classes) seen_train.insert(c.begin(), c.end());
  for (const auto& c : te.classes) seen_test.insert(c.begin(), c.end());
  CHECK(seen_train == std::set<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(seen_test == std::set<std::int64_t>{5, 6, 7, 8, 9});
  for (std::int64_t c : seen_test) CHECK(seen_train.count(c) == 0);
  // ... and the examples of the two sides are different images.
  for (std::int64_t l : pools.test.labels) CHECK(l >= 5);
  CHECK_THROWS_WITH_AS(sample_tasks_by_id(pools.train, pools.train_classes, {-1}, train, 3, 2, 2),
                       doctest::Contains("task id -1 is negative"), ValueError);
}

TEST_CASE("episodic meta-learning: the fixed problem is the episode of tasks 0 … T−1; batched = sequential") {
  for (const Case& c : kCases) {
    INFO(describe(c));
    Instance inst = make_problem(c.name, {.seed = 2, .small = true, .options = c.options});
    REQUIRE(inst.episodic.has_value());
    const EpisodicProblem& ep = inst.episodic->problem;
    CHECK(ep.unit() == "task");
    CHECK_FALSE(ep.bounded());  // fresh tasks every draw by default
    const TensorList lam = random_lambda(inst, 3);
    const InnerOptions few{.max_iterations = 30};
    CHECK(outer_value(ep.episode({0, 1}).problem, lam, few) == outer_value(inst.problem, lam, few));
    // Per task exactness: a meta-batch's AID-FP / ITD hypergradient is the same batched or task by task.
    for (const char* method : {"aid-fp", "itd"}) {
      CAPTURE(method);
      const MethodConfig mc{.name = method, .inner_steps = 40, .linear_steps = 30};
      auto batched = make_episodic(mc, inst, {.meta_batch = 3, .execution = Execution::batched});
      auto seq = make_episodic(mc, inst, {.meta_batch = 3, .execution = Execution::sequential});
      const Hypergradient b = batched->hypergradient(lam), s = seq->hypergradient(lam);
      CHECK(batched->last_units() == Batch{0, 1, 2});
      CHECK(rel_error(b.grad, s.grad) < 1e-13);
      CHECK(b.diagnostics.samples == s.diagnostics.samples);
      CHECK(b.diagnostics.samples > 0);
    }
    // SID inside a task: minibatches of support positions; a seeded run is reproducible.
    const MethodConfig sid{.name = "sid", .inner_steps = 50, .linear_steps = 30, .batch_size = 2};
    auto s1 = make_episodic(sid, inst, {.meta_batch = 2, .execution = Execution::sequential, .seed = 7});
    auto s2 = make_episodic(sid, inst, {.meta_batch = 2, .execution = Execution::threaded, .seed = 7});
    CHECK(list::flatten(s1->hypergradient(lam).grad) == list::flatten(s2->hypergradient(lam).grad));
  }
  // A warm start of the fixed problem does not apply, nor does full without a task pool.
  Instance inst = make_problem("meta_biased", {.small = true});
  CHECK_THROWS_WITH_AS(make_episodic({.name = "aid-cg", .warm_start = WarmStart::inner}, inst, {}),
                       doctest::Contains("warm start 'inner' is for a fixed problem"), ValueError);
  CHECK_THROWS_WITH_AS(make_episodic({.name = "aid-cg"}, inst, {.warm_start = EpisodeWarmStart::full}),
                       doctest::Contains("needs a bounded population"), ValueError);
  // A pool smaller than the fixed problem's T tasks: the fixed problem still has tasks 0 … T−1.
  Instance tiny = make_problem("meta_biased", {.small = true, .options = {{"task_pool", "1"}, {"tasks", "3"}}});
  CHECK(tiny.problem.initial_state()[0].size(0) == 3);
  CHECK(tiny.episodic->problem.population() == 1);
  Instance pooled = make_problem("meta_biased", {.small = true, .options = {{"task_pool", "5"}}});
  CHECK(pooled.episodic->problem.population() == 5);
  auto full = make_episodic({.name = "aid-cg"}, pooled, {.meta_batch = 2, .warm_start = EpisodeWarmStart::full});
  for (int k = 0; k < 3; ++k) full->hypergradient(pooled.lambda0);
  CHECK(full->warm_state().inner[0].size(0) == 5);
}

TEST_CASE("an episodic outer run learns: fresh meta-batches lower the outer objective over held-out tasks") {
  Instance inst = make_problem("meta_biased", {.seed = 5, .small = true});
  auto method = make_episodic({.name = "aid-cg", .inner_steps = 300, .linear_steps = 30}, inst, {.meta_batch = 2});
  OuterOptions o = outer_options(inst, true);
  o.outer_steps = 60;
  o.step_size = StepSizeSchedule::constant(0.2);
  OuterOptimizer opt(*method, inst.lambda0, o, inst.projections);
  const auto& hist = opt.run();
  CHECK(std::isnan(hist[1].validation));  // every 10 steps
  CHECK(!std::isnan(hist[10].validation));
  const InnerOptions tight{.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-12)};
  // f on 16 tasks never drawn by the run (ids 1000…): a fair estimate of the task expectation.
  const Problem held_out = inst.episodic->problem.episode(Batch{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008,
                                                                1009, 1010, 1011, 1012, 1013, 1014, 1015})
                               .problem;
  const double before = outer_value(held_out, inst.lambda0, tight), after = outer_value(held_out, opt.lambda(), tight);
  MESSAGE("f over 16 unseen tasks " << before << " -> " << after);
  CHECK(after < before - 0.01);
}

TEST_CASE("meta problems reject bad options with a message naming the problem and option") {
  auto make = [](const char* name, std::map<std::string, std::string> options, std::string dataset = "") {
    return [=] { (void)make_problem(name, {.dataset = dataset, .small = true, .options = options}); };
  };
  expect_error(make("meta_biased", {{"ways", "1"}}), "problem 'meta_biased': option ways=1 is outside [2, 9]");
  expect_error(make("meta_biased", {{"head", "svm"}}), "option head='svm' is not one of softmax, ridge");
  expect_error(make("meta_biased", {{"rho", "abc"}}), "option rho='abc' is not a number");
  expect_error(make("meta_biased", {{"meta_test", "tasks"}}), "option meta_test='tasks' is not one of");
  expect_error(make("meta_biased", {{"ways", "6"}}), "ways=6 needs 6 classes on the meta-train side");
  expect_error(make("meta_hyperrep", {{"ways", "5"}, {"train_classes", "7"}}),
               "ways=5 needs 5 classes on the meta-test side, but train_classes=7 gives it 3 (classes 7-9)");
  expect_error(make("meta_hyperrep", {{"map", "rnn"}}),
               "problem 'meta_hyperrep': option map='rnn' is not one of linear, mlp, cnn");
  expect_error(make("meta_hyperrep", {{"map", "cnn"}, {"blocks", "3"}}),
               "option blocks=3 halves the 4×4 images more than 2 times");
  expect_error(make("meta_hyperrep", {{"map", "cnn"}, {"dim", "8"}}),
               "problem 'meta_hyperrep': option dim is for map=linear or mlp, not map=cnn");
  expect_error(make("meta_hyperrep", {{"channels", "8"}}), "problem 'meta_hyperrep': option channels is for map=cnn");
  expect_error(make("meta_hyperrep", {{"pool", "3"}}), "option pool=3 does not divide the image side 8 of digits");
  expect_error(make("meta_hyperrep", {{"shots", "100"}, {"queries", "100"}}),
               "shots + queries = 200 exceeds the");
  expect_error(make("meta_hyperrep", {{"inner_lr", "1"}}), "unknown option 'inner_lr'");
  expect_error(make("meta_hyperrep", {{"task_pool", "-2"}}), "option task_pool=-2 is outside");
  expect_error(make("meta_biased", {}, "wine"), "unknown dataset 'wine'");
  const std::string missing = "/nonexistent/hyperad-fashion";
  expect_error([&] { (void)make_problem("meta_biased", {.dataset = "fashion_mnist", .data_dir = missing, .small = true}); },
               "apt-get install dataset-fashion-mnist");
  expect_error([&] { (void)make_problem("meta_biased", {.dataset = "fashion_mnist", .data_dir = missing, .small = true}); },
               "data_dir");
}

TEST_CASE("fashion_mnist meta problems build from the Debian files when installed") {
  std::error_code ec;
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-labels-idx1-ubyte.gz", ec)) {
    hyperad::testing::skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  for (const char* name : {"meta_biased", "meta_hyperrep"}) {
    Instance inst = make_problem(name, {.dataset = "fashion_mnist", .seed = 1, .small = true,
                                        .options = {{"examples", "600"}}});
    Hypergradient exact = exact_hypergradient(inst.problem, inst.lambda0);
    AID aid({.inner_steps = 400, .solver = linsolve::cg(), .linear_steps = 100, .linear_tolerance = Tolerance::relative(1e-13)});
    CHECK(rel_error(aid.hypergradient(inst.problem, inst.lambda0).grad, exact.grad) < 1e-8);
  }
}

TEST_CASE("ITD on meta_hyperrep records the features once, not once per inner step") {
  // The features z = [h_λ(x), 1] of the support set go through a Memo: each further inner
  // step adds only the head's records to the tape (measured: 57 KB, 1.1 times the bytes of
  // z) where recording z again at every step added 112 KB (2.15 times).
  Instance inst = make_problem("meta_hyperrep", {.seed = 1, .options = {{"tasks", "4"}}});
  const TensorList lam = random_lambda(inst, 5);
  auto peak = [&](int t) {
    ITD itd({.inner_steps = t});
    const Hypergradient h = itd.hypergradient(inst.problem, lam);
    return double(h.diagnostics.peak_tape_bytes);
  };
  const double per_step = (peak(12) - peak(4)) / 8.0;
  const double z_bytes = 4.0 * 25 * 65 * 8;  // 4 tasks, 5-way 5-shot, p = 64 plus the intercept, float64
  MESSAGE("tape bytes per inner step: " << per_step << ", one copy of z: " << z_bytes);
  CHECK(per_step > 0);
  CHECK(per_step < 1.6 * z_bytes);
  // And the hypergradient is the one of the unmemoized computation (finite differences of
  // the small instances above check its value; here the checkpointed sweep, which records
  // the features at every step, must agree).
  ITD plain({.inner_steps = 12}), checkpointed({.inner_steps = 12, .checkpoint = CheckpointPolicy::every_k(4)});
  CHECK(rel_error(plain.hypergradient(inst.problem, lam).grad, checkpointed.hypergradient(inst.problem, lam).grad) <
        1e-13);
}
