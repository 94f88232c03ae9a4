// Episodic problems (episodic.hpp): a meta-batch of ridge-regression tasks sharing per-feature
// regularization. The averaged hypergradient equals the mean of the per-task exact ones;
// batched = sequential = threaded to rounding (threaded = sequential bit for bit); the warm
// starts none / naive / full start where they say; sample counts; strict mode; bad input;
// bit-identical save/resume through OuterOptimizer with full buffers and the task sampler.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"
#include "bilevel/ridge_tasks.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

using testing::kD;
using testing::kN;
using testing::Tasks;

const TensorList kLambda{tensor({0.3, -0.5, 0.1})};

double max_abs_diff(const TensorList& a, const TensorList& b) {
  double m = 0;
  const auto x = list::flatten(a), y = list::flatten(b);
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// The mean over `units` of the exact per-task hypergradients (dense LU, to rounding).
TensorList mean_exact(const EpisodicProblem& p, const Batch& units) {
  TensorList acc = list::zeros_like(kLambda);
  for (std::int64_t u : units) list::axpy(1.0 / double(units.size()), exact_hypergradient(p.episode({u}).problem, kLambda).grad, acc);
  return acc;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("hyperad_test_episodic_" + name)).string();
}

}  // namespace

TEST_CASE("the averaged hypergradient is the mean of the per-task exact ones") {
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(10);
  for (Execution e : {Execution::batched, Execution::sequential, Execution::threaded}) {
    CAPTURE(execution_name(e));
    AID aid({.inner_steps = 4000,
             .inner_tolerance = Tolerance::absolute(1e-14),
             .solver = linsolve::cg(),
             .linear_steps = 200,
             .linear_tolerance = Tolerance::relative(1e-13)});
    EpisodicHypergradient eh(p, copies_of(aid), {.meta_batch = 4, .execution = e, .seed = 5});
    for (int step = 0; step < 2; ++step) {
      const Hypergradient h = eh.hypergradient(kLambda);
      REQUIRE(eh.last_units().size() == 4);
      const TensorList want = mean_exact(p, eh.last_units());
      CHECK(list::relative_error(h.grad, want) < 1e-10);
      // E is the mean of the tasks' E at their solutions.
      double e_mean = 0;
      for (std::int64_t u : eh.last_units()) {
        const Problem pu = p.episode({u}).problem;
        e_mean += outer_value(pu, kLambda, {.max_iterations = 100000, .tolerance = Tolerance::absolute(1e-14)}) / 4.0;
      }
      CHECK(h.objective == doctest::Approx(e_mean).epsilon(1e-10));
      CHECK(h.diagnostics.trusted());
    }
  }
}

TEST_CASE("batched = sequential = threaded: to rounding, and threaded = sequential bit for bit") {
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(0);  // unbounded: tasks 0, 1, 2, … in order
  const Batch units{4, 9, 2, 7, 11};
  auto run = [&](EpisodeMethodFactory f, Execution e) {
    EpisodicHypergradient eh(p, std::move(f), {.meta_batch = 5, .execution = e});
    return eh.hypergradient(units, kLambda);
  };
  const std::pair<const char*, EpisodeMethodFactory> methods[] = {
      {"ITD", copies_of(ITD({.inner_steps = 30}))},
      {"truncated ITD", copies_of(ITD({.inner_steps = 30, .reverse_steps = 7}))},
      {"AID-FP", copies_of(AID({.inner_steps = 25, .solver = linsolve::richardson(), .linear_steps = 40}))},
      {"AID-Neumann", copies_of(AID({.inner_steps = 25, .solver = linsolve::neumann(), .linear_steps = 40}))},
      {"SID (full batches)", sid_per_episode({.inner_steps = 25, .linear_steps = 40})},
  };
  runtime::set_num_threads(2);
  for (const auto& [name, factory] : methods) {
    CAPTURE(name);
    const Hypergradient b = run(factory, Execution::batched), s = run(factory, Execution::sequential),
                        t = run(factory, Execution::threaded);
    CHECK(max_abs_diff(b.grad, s.grad) < 1e-14);
    CHECK(b.objective == doctest::Approx(s.objective).epsilon(1e-14));
    CHECK(list::flatten(t.grad) == list::flatten(s.grad));  // same sums in the same order
    CHECK(t.objective == s.objective);
    CHECK(b.diagnostics.samples == s.diagnostics.samples);
    CHECK(t.diagnostics.samples == s.diagnostics.samples);
  }
  runtime::set_num_threads(0);

  // CG shares its scalars across a batch: the batched solve reaches the same solution by
  // another path, so the two agree to the solver's tolerance (not to rounding).
  AID cg({.inner_steps = 400, .inner_tolerance = Tolerance::absolute(1e-14), .solver = linsolve::cg(),
          .linear_steps = 100, .linear_tolerance = Tolerance::relative(1e-12)});
  const Hypergradient b = run(copies_of(cg), Execution::batched), s = run(copies_of(cg), Execution::sequential);
  CHECK(list::relative_error(b.grad, s.grad) < 1e-9);
  // With a fixed small K, batched CG is not per-task CG: the docs' caveat, made visible.
  AID cg3({.inner_steps = 400, .solver = linsolve::cg(), .linear_steps = 2});
  CHECK(list::relative_error(run(copies_of(cg3), Execution::batched).grad,
                             run(copies_of(cg3), Execution::sequential).grad) > 1e-8);
}

TEST_CASE("sample counts: per-unit examples times the units, summed over the meta-batch") {
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(0);
  EpisodicHypergradient itd(p, copies_of(ITD({.inner_steps = 10})), {.meta_batch = 3});
  const Diagnostics d = itd.hypergradient(kLambda).diagnostics;
  // ITD: t inner passes + t reversed ones over each task's kN examples, one gradient of E.
  CHECK(d.sample_counts.inner == 3 * kN * 10);
  CHECK(d.sample_counts.linear == 3 * kN * 10);
  CHECK(d.sample_counts.outer == 3 * kN);
  CHECK(d.samples == d.sample_counts.total());
  EpisodicHypergradient aid(p, copies_of(AID({.inner_steps = 10, .solver = linsolve::richardson(), .linear_steps = 5})),
                            {.meta_batch = 2, .execution = Execution::sequential});
  const Diagnostics a = aid.hypergradient(kLambda).diagnostics;
  CHECK(a.sample_counts.inner == 2 * kN * 10);
  CHECK(a.sample_counts.linear == 2 * kN * 5);
  CHECK(a.sample_counts.cross == 2 * kN);
  CHECK(a.inner_steps == 10);  // per unit, not summed
}

TEST_CASE("warm starts: none from w0, naive from the same position of the last meta-batch, full from the unit's own") {
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(6);
  const int t = 7;
  ITD itd({.inner_steps = t});
  auto solve = [&](std::int64_t u, const TensorList& start, int steps) {
    return solve_inner(p.episode({u}).problem, kLambda, start, {.max_iterations = steps}).state;
  };
  auto row = [](const TensorList& buffer, std::int64_t r) { return narrow(buffer[0], 0, r, 1).to_vector(); };
  const TensorList w0 = p.unit_state();
  for (Execution e : {Execution::batched, Execution::sequential, Execution::threaded}) {
    CAPTURE(execution_name(e));
    // full: unit 1's second solve continues from its first (2t steps in all, bit for bit).
    EpisodicHypergradient full(p, copies_of(itd), {.meta_batch = 2, .warm_start = EpisodeWarmStart::full, .execution = e});
    full.hypergradient({0, 1}, kLambda);
    full.hypergradient({1, 2}, kLambda);
    const TensorList buf = full.warm_state().inner;
    REQUIRE(buf.size() == 1);
    CHECK(buf[0].shape() == Shape{6, kD});
    CHECK(row(buf, 1) == solve(1, w0, 2 * t)[0].to_vector());
    CHECK(row(buf, 0) == solve(0, w0, t)[0].to_vector());
    CHECK(row(buf, 2) == solve(2, w0, t)[0].to_vector());
    CHECK(row(buf, 4) == std::vector<double>(kD, 0.0));  // never solved
    // naive: unit 3 at position 0 starts from unit 0's solution of the last meta-batch.
    EpisodicHypergradient naive(p, copies_of(itd), {.meta_batch = 2, .warm_start = EpisodeWarmStart::naive, .execution = e});
    naive.hypergradient({0, 1}, kLambda);
    naive.hypergradient({3, 5}, kLambda);
    const TensorList nb = naive.warm_state().inner;
    CHECK(nb[0].shape() == Shape{2, kD});
    CHECK(row(nb, 0) == solve(3, solve(0, w0, t), t)[0].to_vector());
    CHECK(row(nb, 1) == solve(5, solve(1, w0, t), t)[0].to_vector());
    // none keeps nothing.
    EpisodicHypergradient none(p, copies_of(itd), {.meta_batch = 2, .execution = e});
    none.hypergradient({0, 1}, kLambda);
    CHECK(none.warm_state().inner.empty());
  }
  // AID keeps v per unit too: a full warm start on a revisit needs fewer linear iterations.
  AID aid({.inner_steps = 300, .inner_tolerance = Tolerance::absolute(1e-12), .solver = linsolve::cg(),
           .linear_steps = 100, .linear_tolerance = Tolerance::relative(1e-8)});
  EpisodicHypergradient warm(p, copies_of(aid), {.meta_batch = 1, .warm_start = EpisodeWarmStart::full});
  const int cold = warm.hypergradient({2}, kLambda).diagnostics.linear.iterations;
  CHECK(warm.warm_state().linear.size() == 1);
  const Diagnostics again = warm.hypergradient({2}, kLambda).diagnostics;
  CHECK(again.linear.iterations < cold);
  CHECK(again.inner_steps < 10);  // already at its solution
}

TEST_CASE("the kept v is each task's own, whatever the episode's size: warm starts fit any batching") {
  // An episode's E is the mean over its c tasks, so its v is 1/c of each task's own; the
  // buffer keeps the task's own (before, batched runs kept v/c, and a later episode of
  // another size started from a v off by the ratio of sizes).
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(10);
  const AID aid({.inner_steps = 60, .solver = linsolve::richardson(), .linear_steps = 60});
  TensorList kept[2];
  int k = 0;
  for (Execution e : {Execution::batched, Execution::sequential}) {
    EpisodicHypergradient eh(p, copies_of(aid), {.meta_batch = 3, .warm_start = EpisodeWarmStart::full, .execution = e});
    eh.hypergradient({1, 4, 7}, kLambda);
    kept[k++] = eh.warm_state().linear;
  }
  CHECK(max_abs_diff(kept[0], kept[1]) < 1e-12);
  CHECK(list::norm(kept[1]) > 1e-2);
  // A batched meta-batch of 3 then one of 2 tasks starts the second from the first's v:
  // with few linear steps the warm start shows, and it equals the sequential run's.
  const AID short_solve({.inner_steps = 60, .solver = linsolve::richardson(), .linear_steps = 2});
  TensorList second[2];
  k = 0;
  for (Execution e : {Execution::batched, Execution::sequential}) {
    EpisodicHypergradient eh(p, copies_of(short_solve),
                             {.meta_batch = 3, .warm_start = EpisodeWarmStart::full, .execution = e});
    eh.hypergradient({1, 4, 7}, kLambda);
    second[k++] = eh.hypergradient({4, 7}, kLambda).grad;
  }
  CHECK(max_abs_diff(second[0], second[1]) < 1e-12);
}

TEST_CASE("a random state from before v was kept per unit is refused for batched warm-started runs only") {
  const EpisodicProblem p = Tasks().problem(10);
  const AID aid({.inner_steps = 10, .solver = linsolve::richardson(), .linear_steps = 5});
  EpisodicHypergradient source(p, copies_of(aid), {.meta_batch = 3, .warm_start = EpisodeWarmStart::full});
  source.hypergradient(kLambda);
  std::vector<std::uint64_t> words = source.export_random_state();
  words[0] = 0x4550495344450001ULL;  // format version 1
  EpisodicHypergradient batched(p, copies_of(aid), {.meta_batch = 3, .warm_start = EpisodeWarmStart::full});
  CHECK_THROWS_WITH_AS(batched.restore(source.warm_state(), words),
                       "EpisodicHypergradient: the state was saved by an older hyperad, whose batched warm start kept "
                       "each episode's v divided by its size; resume it with sequential execution, or start afresh",
                       ValueError);
  EpisodicHypergradient sequential(p, copies_of(aid), {.meta_batch = 3, .warm_start = EpisodeWarmStart::full,
                                                      .execution = Execution::sequential});
  CHECK_NOTHROW(sequential.restore(source.warm_state(), words));
  CHECK(sequential.draws() == 1);
}

TEST_CASE("strict mode and failures name the unit, in unit order whatever the thread count") {
  // Task 2 the stiffest of 0–3: a step of 2.2/L₂ makes its iteration grow by 1.2 a step (not
  // contracting, but not the 10⁶-fold growth that throws), the others contract.
  const Tasks base;
  double top = 0;
  std::int64_t stiff = 0;
  for (std::int64_t u = 0; u < 4; ++u)
    if (base.curvature(u, kLambda) > top) top = base.curvature(u, kLambda), stiff = u;
  const Tasks unstable(3, 1.0, 2.2 / top);
  const EpisodicProblem p = unstable.problem(0);
  for (Execution e : {Execution::sequential, Execution::threaded, Execution::batched}) {
    CAPTURE(execution_name(e));
    EpisodicHypergradient eh(p, copies_of(AID({.inner_steps = 60, .solver = linsolve::richardson(), .linear_steps = 5})),
                             {.meta_batch = 4, .execution = e});
    const Hypergradient h = eh.hypergradient({0, 1, 2, 3}, kLambda);
    CHECK_FALSE(h.diagnostics.trusted());
    REQUIRE_FALSE(h.diagnostics.concerns.empty());
    const std::string& why = h.diagnostics.concerns.front().message;
    CHECK(why.find("not contracting") != std::string::npos);
    // Per unit, the concern names the stiff task alone; batched, the whole batch.
    CHECK(why.find(e == Execution::batched ? std::string("tasks 0, 1, 2, 3: ") : fmt::format("task {}: ", stiff)) == 0);
    eh.set_strict(true);
    CHECK_THROWS_WITH_AS(eh.hypergradient({0, 1, 2, 3}, kLambda), doctest::Contains("cannot be trusted"), UntrustedError);
  }
  // A failure inside one episode (ITD overflowing) is rethrown with its unit, the first in order.
  const Tasks wild(3, 40.0);
  EpisodicHypergradient eh(wild.problem(0), copies_of(AID({.inner_steps = 400})), {.meta_batch = 3, .execution = Execution::threaded});
  CHECK_THROWS_WITH_AS(eh.hypergradient({5, 6, 7}, kLambda), doctest::Contains("task 5: "), ConvergenceError);
}

TEST_CASE("bad episodic input is refused with the reason") {
  const Tasks tasks;
  ITD itd({.inner_steps = 3});
  CHECK_THROWS_WITH_AS(EpisodicHypergradient(tasks.problem(0), copies_of(itd), {.warm_start = EpisodeWarmStart::full}),
                       doctest::Contains("needs a bounded population"), ValueError);
  CHECK_THROWS_WITH_AS(EpisodicHypergradient(tasks.problem(3), copies_of(itd), {.meta_batch = 4}),
                       doctest::Contains("meta-batch 4 exceeds the population of 3 tasks"), ValueError);
  CHECK_THROWS_WITH_AS(EpisodicHypergradient(tasks.problem(3), copies_of(itd), {.meta_batch = 0}),
                       doctest::Contains("meta-batch must be >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(tasks.problem(3).episode({1, 3}), doctest::Contains("task id 3 is outside [0, 3)"), ValueError);
  CHECK_THROWS_WITH_AS(tasks.problem(3).episode({}), doctest::Contains("at least one task"), ValueError);
  // A builder that does not put the units on the leading axis.
  auto flat = [](const Batch&) {
    return Episode{.problem = Problem::from_map([](const TensorList& w, const TensorList&) { return w; },
                                                [](const TensorList& w, const TensorList&) { return sum(w[0]); },
                                                {zeros({5})})};
  };
  CHECK_THROWS_WITH_AS(EpisodicProblem(0, flat, "task"),
                       doctest::Contains("leading axis must hold one row per task (1)"), ShapeError);
  // Units whose states differ in shape cannot share a batch.
  auto ragged = [](const Batch& u) {
    const std::int64_t n = static_cast<std::int64_t>(u.size()), width = u[0] == 0 ? 2 : 3;
    return Episode{.problem = Problem::from_map([](const TensorList& w, const TensorList&) { return w; },
                                                [](const TensorList& w, const TensorList&) { return sum(w[0]); },
                                                {zeros({n, width})})};
  };
  CHECK_THROWS_WITH_AS(EpisodicProblem(0, ragged, "example").episode({1}),
                       doctest::Contains("every example must have the same state shapes"), ShapeError);
  // Buffers of the wrong shape.
  EpisodicHypergradient full(tasks.problem(5), copies_of(itd), {.meta_batch = 2, .warm_start = EpisodeWarmStart::full});
  CHECK_THROWS_WITH_AS(full.set_warm_state({{zeros({4, kD})}, {}}), doctest::Contains("expected 5 rows"), ValueError);
  CHECK_THROWS_WITH_AS(full.import_random_state({1, 2, 3}), doctest::Contains("not an episodic one"), ValueError);
  // A fixed problem's warm start does not apply to an episodic one.
  EpisodicHypergradient eh(tasks.problem(5), copies_of(itd), {.meta_batch = 2});
  CHECK_THROWS_WITH_AS(OuterOptimizer(eh, kLambda, {.warm_start = WarmStart::inner}),
                       doctest::Contains("warm start 'inner' is for a fixed problem"), ValueError);
  // ITD takes no K: refused when set, not in the middle of a run.
  CHECK_THROWS_AS(eh.set_iterations({.linear_steps = 3}), ValueError);
  // Sampling with replacement needs ids to draw from.
  CHECK_THROWS_WITH_AS(
      EpisodicHypergradient(tasks.problem(0), copies_of(itd), {.sampling = Sampling::with_replacement}),
      doctest::Contains("sampling with replacement needs a bounded population"), ValueError);
  // A restore that fails leaves the driver as it was.
  full.hypergradient({1, 3}, kLambda);
  const auto before = list::flatten(full.warm_state().inner);
  const auto words = full.export_random_state();
  CHECK_THROWS_AS(full.restore({{zeros({5, kD})}, {}}, {7}), ValueError);
  CHECK(list::flatten(full.warm_state().inner) == before);
  CHECK(full.export_random_state() == words);
  // warm_state() is a copy: changing it changes nothing inside.
  TensorList copy = full.warm_state().inner;
  copy[0].mutable_data<double>()[0] = 123.0;
  CHECK(list::flatten(full.warm_state().inner) == before);
  // A sample budget that nothing counts would never end a run: refused at the first step.
  struct Uncounted final : HypergradientMethod {
    AID aid{AIDOptions{.inner_steps = 5, .linear_steps = 2}};
    std::string name() const override { return "uncounted"; }
    Hypergradient hypergradient(const Problem& p, const TensorList& l) override {
      Hypergradient h = aid.hypergradient(p, l);
      h.diagnostics.method = name();  // neither ITD nor AID to full_batch_samples
      return h;
    }
    Hypergradient hypergradient_at(const Problem& p, const TensorList& l, const TensorList& w) override {
      return aid.hypergradient_at(p, l, w);
    }
  };
  EpisodicHypergradient uncounted(tasks.problem(0), [](const Episode&, std::uint64_t) { return std::make_unique<Uncounted>(); },
                                  {.meta_batch = 2});
  OuterOptions budget;
  budget.budget_samples = 1000;
  CHECK_THROWS_WITH_AS(OuterOptimizer(uncounted, kLambda, budget).run(),
                       doctest::Contains("a budget of 1000 samples cannot end this run"), ValueError);
}

TEST_CASE("a unit whose method returns no v gets a cold v next time, not an older one") {
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(3);
  // The factory gives AID (which keeps v) on its first call for the driver, ITD (no v) after.
  auto calls = std::make_shared<int>(0);
  EpisodeMethodFactory alternating = [calls](const Episode&, std::uint64_t) -> std::unique_ptr<HypergradientMethod> {
    if ((*calls)++ < 2) return std::make_unique<AID>(AIDOptions{.inner_steps = 20, .linear_steps = 5});  // probe + call 1
    return std::make_unique<ITD>(ITDOptions{.inner_steps = 20});
  };
  EpisodicHypergradient eh(p, alternating, {.meta_batch = 1, .warm_start = EpisodeWarmStart::full});
  eh.hypergradient({1}, kLambda);
  const TensorList v1 = eh.warm_state().linear;
  REQUIRE(v1.size() == 1);
  CHECK(list::norm({narrow(v1[0], 0, 1, 1)}) > 0);
  eh.hypergradient({1}, kLambda);
  CHECK(list::norm({narrow(eh.warm_state().linear[0], 0, 1, 1)}) == 0.0);
}

TEST_CASE("strict: an untrusted meta-batch throws before its states are kept") {
  // The stiffest of tasks 0–7 with a step of 2.2/L grows 1.2× a step; a task with L below
  // L/1.1 still contracts.
  const Tasks base;
  std::int64_t stiff = 0, calm = -1;
  for (std::int64_t u = 1; u < 8; ++u)
    if (base.curvature(u, kLambda) > base.curvature(stiff, kLambda)) stiff = u;
  const double top = base.curvature(stiff, kLambda);
  for (std::int64_t u = 0; u < 8; ++u)
    if (base.curvature(u, kLambda) < top / 1.2) calm = u;
  REQUIRE(calm >= 0);
  const Tasks wild(3, 1.0, 2.2 / top);
  EpisodicHypergradient eh(wild.problem(8), copies_of(ITD({.inner_steps = 40})),
                           {.meta_batch = 1, .warm_start = EpisodeWarmStart::full});
  eh.set_strict(true);
  eh.hypergradient({calm}, kLambda);  // trusted: kept
  const auto kept = list::flatten(eh.warm_state().inner);
  CHECK(list::norm({narrow(eh.warm_state().inner[0], 0, calm, 1)}) > 0);
  CHECK_THROWS_AS(eh.hypergradient({stiff}, kLambda), UntrustedError);
  CHECK(list::flatten(eh.warm_state().inner) == kept);  // the untrusted state was not kept
}

TEST_CASE("an outer run on an episodic problem: it learns, and save/resume is bit-identical with full buffers") {
  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(7);
  const std::string state = temp_path("run.state"), csv_full = temp_path("full.csv"), csv_cut = temp_path("cut.csv");
  for (const auto& f : {state, csv_full, csv_cut}) std::filesystem::remove(f);
  const AID aid({.inner_steps = 30, .solver = linsolve::cg(), .linear_steps = 10});
  const EpisodicOptions eo{.meta_batch = 3, .warm_start = EpisodeWarmStart::full, .execution = Execution::sequential,
                           .seed = 11};
  OuterOptions o{.outer_steps = 12, .step_size = StepSizeSchedule::constant(0.2), .update = OuterUpdate::adam};
  o.csv_path = csv_full;
  EpisodicHypergradient straight(p, copies_of(aid), eo);
  OuterOptimizer full(straight, kLambda, o, {Projection::box(-1.0, 1.0)});
  full.run();
  // E over all 7 tasks at the end is below its start: the run learned something.
  auto f_all = [&](const TensorList& l) {
    double s = 0;
    for (std::int64_t u = 0; u < 7; ++u) s += outer_value(p.episode({u}).problem, l, {.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-12)});
    return s / 7;
  };
  CHECK(f_all(full.lambda()) < f_all(kLambda));

  // 5 steps, saved; then a fresh driver (another seed: the saved sampler must take over).
  o.csv_path = csv_cut;
  o.state_path = state;
  o.outer_steps = 5;
  {
    EpisodicHypergradient first(p, copies_of(aid), eo);
    OuterOptimizer a(first, kLambda, o, {Projection::box(-1.0, 1.0)});
    a.run();
  }
  o.outer_steps = 12;
  o.resume = true;
  EpisodicOptions other = eo;
  other.seed = 12;
  EpisodicHypergradient second(p, copies_of(aid), other);
  // Another seed is another run: refused by the identity check...
  CHECK_THROWS_WITH_AS(OuterOptimizer(second, kLambda, o, {Projection::box(-1.0, 1.0)}).run(),
                       doctest::Contains("episode seed"), StateFileError);
  EpisodicHypergradient same(p, copies_of(aid), eo);
  OuterOptimizer b(same, kLambda, o, {Projection::box(-1.0, 1.0)});
  b.run();
  CHECK(list::flatten(b.lambda()) == list::flatten(full.lambda()));
  CHECK(list::flatten(same.warm_state().inner) == list::flatten(straight.warm_state().inner));
  CHECK(list::flatten(same.warm_state().linear) == list::flatten(straight.warm_state().linear));
  CHECK(same.last_units() == straight.last_units());
  // The logs agree in every column but the wall times.
  auto strip = [](const std::string& path) {
    std::ifstream in(path);
    std::string line, out;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
      f[12] = f[13] = "";
      for (const auto& x : f) out += x + ",";
      out += "\n";
    }
    return out;
  };
  CHECK(strip(csv_cut) == strip(csv_full));
  // ... and so is a state of another warm start (buffers of another shape).
  EpisodicHypergradient naive(p, copies_of(aid), {.meta_batch = 3, .warm_start = EpisodeWarmStart::naive, .seed = 11});
  CHECK_THROWS_AS(OuterOptimizer(naive, kLambda, o, {Projection::box(-1.0, 1.0)}).run(), StateFileError);
  for (const auto& f : {state, csv_full, csv_cut}) std::filesystem::remove(f);
}

TEST_CASE("protocol tooling: budgets stop the run, the gradient mapping measures stationarity") {
  // The gradient mapping: ‖∇f‖ without constraints; 0 at a constrained optimum.
  const TensorList l{tensor({0.5, 1.0})}, g{tensor({3.0, -4.0})};
  CHECK(gradient_mapping_norm(l, g, 0.1, {}) == doctest::Approx(5.0));
  // Box [0, 1]: λ − αg = (0.2, 1.4) is clipped to (0.2, 1.0): only the first coordinate moves.
  CHECK(gradient_mapping_norm(l, g, 0.1, {Projection::box(0.0, 1.0)}) == doctest::Approx(3.0));
  // Maximizing moves along +g: (0.8, 0.6), inside the box.
  CHECK(gradient_mapping_norm(l, g, 0.1, {Projection::box(0.0, 1.0)}, true) == doctest::Approx(5.0));
  CHECK_THROWS_WITH_AS(gradient_mapping_norm(l, g, 0.0, {}), doctest::Contains("α must be finite and > 0"), ValueError);
  CHECK_THROWS_AS(gradient_mapping_norm(l, {tensor({1.0})}, 0.1, {}), ShapeError);

  const Tasks tasks;
  const EpisodicProblem p = tasks.problem(0);
  const AID aid({.inner_steps = 30, .solver = linsolve::richardson(), .linear_steps = 10});
  // ∇f estimated on a fixed set of 12 tasks by exact hypergradients.
  const Batch reference_tasks = full_batch(12);
  auto reference = [&](const TensorList& lam) {
    TensorList acc = list::zeros_like(lam);
    for (std::int64_t u : reference_tasks)
      list::axpy(1.0 / 12, exact_hypergradient(p.episode({u}).problem, lam).grad, acc);
    return acc;
  };
  EpisodicHypergradient eh(p, copies_of(aid), {.meta_batch = 4});
  OuterOptions o{.outer_steps = 1000, .step_size = StepSizeSchedule::constant(0.3)};
  o.budget_samples = 4 * (30 + 10 + 1 + 1) * kN * 6 - 1;  // six steps' worth, minus one
  o.reference_gradient = reference;
  o.stationarity_every = 2;
  OuterOptimizer opt(eh, kLambda, o);
  const auto& h = opt.run();
  CHECK(opt.steps_done() == 6);
  CHECK(opt.budget_spent());
  CHECK(std::isnan(h[1].stationarity));
  CHECK(h[0].stationarity == doctest::Approx(list::norm(reference(kLambda))).epsilon(1e-12));
  CHECK(h[4].stationarity < h[0].stationarity);
  CHECK(opt.stationarity() == doctest::Approx(list::norm(reference(opt.lambda()))).epsilon(1e-12));
  OuterOptions bad;
  bad.stationarity_every = 3;
  CHECK_THROWS_WITH_AS(OuterOptimizer(eh, kLambda, bad), doctest::Contains("needs a reference_gradient"), ValueError);
  bad = {};
  bad.budget_seconds = -1;
  CHECK_THROWS_AS(OuterOptimizer(eh, kLambda, bad), ValueError);
}
