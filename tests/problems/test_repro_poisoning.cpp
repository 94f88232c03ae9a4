// The poisoning comparison (bench/repro/repro_poisoning.cpp, issue 21, item 5) in a small
// form, so that it cannot silently rot: every variant is tuned and compared at one equal
// budget (each run stops within one outer step of it), the search and the runs are
// reproducible, the tuned attacks lower the retrained model's test accuracy, and the CSV
// rows and figure the driver writes are made from these results.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "repro/poisoning_variants.hpp"  // bench/repro/, on the include path of these tests

using namespace hyperad;

TEST_CASE("Poisoning variants tuned and compared at one equal sample budget") {
  repro::PoisoningComparisonConfig c;
  c.problem = {.dataset = "digits", .small = true};
  c.variants = {"warm", "alset", "deterministic"};
  c.trials = 3;
  c.batch = 10;
  c.budget = 20000;
  c.seeds = 2;
  c.checkpoints = {0.5, 1.0};
  const repro::PoisoningComparison r = repro::run_poisoning_comparison(c);
  REQUIRE(r.variants.size() == 3);
  CHECK(r.clean_accuracy.size() == 2);
  // One step of a trial spends at most this many samples: the full batch of the
  // deterministic method ((t + K + 1)·n + n_val, t, K ≤ max_count), more than any SID step here.
  const problems::Instance small = problems::make_problem("poisoning", c.problem);
  const std::int64_t n = small.stochastic->n_inner(), n_val = small.stochastic->n_outer();
  const std::int64_t step_max = (2 * c.max_count + 1) * n + n_val;
  for (const auto& v : r.variants) {
    CAPTURE(v.variant);
    REQUIRE(v.best >= 0);
    for (const auto& t : v.trials) {
      CHECK(t.failure.empty());
      CHECK(t.samples >= c.budget);
      CHECK(t.samples < c.budget + step_max);
    }
    REQUIRE(v.runs.size() == 2);
    for (std::size_t s = 0; s < v.runs.size(); ++s) {
      CAPTURE(s);
      CHECK(v.failures[s].empty());
      REQUIRE(v.runs[s].size() == 2);
      CHECK(v.runs[s][0].samples >= c.budget / 2);
      CHECK(v.runs[s][0].samples < v.runs[s][1].samples);
      CHECK(v.runs[s][1].samples >= c.budget);
      CHECK(v.runs[s][1].samples < c.budget + step_max);
      // The tuned attack lowers the test accuracy of the retrained model.
      CHECK(v.runs[s][1].test_accuracy < r.clean_accuracy[s] - 0.02);
    }
  }
  // Reproducible, and no state leaks between the trials sharing the tuning instance: the best
  // trial of a variant run again alone scores what it scored in the search, bit for bit.
  for (const auto& v : r.variants) {
    CAPTURE(v.variant);
    TensorList last;
    repro::run_poisoning(small, v.trials[std::size_t(v.best)].trial, c.batch, c.tune_seed, c.budget, {c.budget},
                         [&](std::int64_t, const TensorList& lambda) { last = lambda; });
    CHECK(repro::metric(small.evaluate(last), "val_loss_poisoned") == v.trials[std::size_t(v.best)].score);
  }
  // The random attack of the same size (the first variant's) is recorded for every seed.
  REQUIRE(r.random_accuracy.size() == 2);
  for (double a : r.random_accuracy) CHECK(std::isfinite(a));
  CHECK(r.initial_objective < r.variants.front().trials[std::size_t(r.variants.front().best)].score);

  std::vector<std::vector<std::string>> trials, runs;
  repro::append_trial_rows(trials, r);
  repro::append_run_rows(runs, r);
  CHECK(trials.size() == 9);
  CHECK(runs.size() == 3 * 2 * 2);
  const std::string svg = repro::plot_poisoning(r, c).svg();
  for (const char* label : {"warm", "alset", "deterministic", "clean training set"}) {
    CAPTURE(label);
    CHECK(svg.find(label) != std::string::npos);
  }
}
