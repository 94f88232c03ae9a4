// The data-poisoning comparison of JMLR 2023 (issue 21, item 5): each variant of the
// paper's comparison tuned by random search at one equal sample budget, then run with its
// best settings over several seeds and judged by the test accuracy of the model retrained on
// the poisoned training set, against the sample-gradients spent
// (bench/repro/poisoning_variants.hpp).
//
//   repro_poisoning [--mode quick|full] [--trials N] [--seeds N]
//     full (default): Fashion-MNIST (1000 training points, 200 poisoned, 14×14 pixels), a
//       budget of 2·10⁶ sample-gradients (the paper's), 20 trials per variant, 5 seeds;
//       written to bench/results/poisoning_variants.csv (every checkpoint of every run),
//       poisoning_variants_trials.csv (every trial of the search) and
//       docs/figures/poisoning_variants.svg;
//     quick: a budget of 5·10⁵, 6 trials, 2 seeds, the same files with "_quick" before the
//       extension (the published full results stay).
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "bench_util.hpp"
#include "repro/poisoning_variants.hpp"

using namespace hyperad;

int main(int argc, char** argv) {
  std::string mode = "full";
  int trials = 0, seeds = 0;
  bench::parse_flags(argc, argv, {{"--mode", &mode}, {"--trials", &trials}, {"--seeds", &seeds}});
  const bool quick = bench::quick_mode(mode, "repro_poisoning");
  const std::string suffix = quick ? "_quick" : "";
  repro::PoisoningComparisonConfig c;
  if (quick) c.budget = 500'000, c.trials = 6, c.seeds = 2;
  if (trials > 0) c.trials = trials;
  if (seeds > 0) c.seeds = seeds;

  const auto start = std::chrono::steady_clock::now();
  const repro::PoisoningComparison r = repro::run_poisoning_comparison(c);
  fmt::print("<!-- poisoning: {} -->\n", r.summary);
  fmt::print("budget {} sample-gradients, SID batches of {}, {} trials per variant (t, K, J in [1, {}]), {} seeds; "
             "f at λ0 {:.4f}\n",
             c.budget, c.batch, c.trials, c.max_count, c.seeds, r.initial_objective);
  const auto clean = problems::quartiles(r.clean_accuracy), random = problems::quartiles(r.random_accuracy);
  fmt::print("test accuracy, clean training set: {:.3f} [{:.3f}, {:.3f}]; random attack of the same size: {:.3f} "
             "[{:.3f}, {:.3f}] (medians [quartiles] over seeds)\n\n",
             clean.median, clean.q1, clean.q3, random.median, random.q1, random.q3);

  fmt::print("| variant | best settings | best f | f of the trials: median [Q1, Q3] | failed |");
  for (double f : c.checkpoints) fmt::print(" acc. at {:.3g}M |", f * double(c.budget) / 1e6);
  fmt::print(" final acc. [min, max] |\n|---|---|---|---|---|");
  for (std::size_t k = 0; k < c.checkpoints.size(); ++k) fmt::print("---|");
  fmt::print("---|\n");
  for (const auto& v : r.variants) {
    std::vector<double> scores, finals;
    for (const auto& t : v.trials) scores.push_back(t.score);
    for (const auto& run : v.runs)
      if (!run.empty()) finals.push_back(run.back().test_accuracy);
    const auto q = problems::quartiles(scores);
    fmt::print("| {} | {} | {} | {:.3f} [{:.3f}, {:.3f}] | {}/{} |", v.variant,
               v.best >= 0 ? v.trials[v.best].trial.describe() : "—",
               v.best >= 0 ? fmt::format("{:.3f}", v.trials[v.best].score) : "—", q.median, q.q1, q.q3,
               v.trials.size() - q.count, v.trials.size());
    for (std::size_t k = 0; k < c.checkpoints.size(); ++k) fmt::print(" {:.3f} |", repro::median_accuracy(v, k));
    if (finals.empty())
      fmt::print(" — |\n");
    else
      fmt::print(" {:.3f} [{:.3f}, {:.3f}] |\n", problems::quartiles(finals).median,
                 *std::min_element(finals.begin(), finals.end()), *std::max_element(finals.begin(), finals.end()));
    for (std::size_t s = 0; s < v.failures.size(); ++s)
      if (!v.failures[s].empty()) fmt::print("<!-- {} seed {} failed: {} -->\n", v.variant, s + 1, v.failures[s]);
  }
  fmt::print("\n{:.0f} s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

  std::vector<std::vector<std::string>> runs{{"variant", "seed", "samples", "test_acc_poisoned", "val_loss_poisoned"}};
  repro::append_run_rows(runs, r);
  std::vector<std::vector<std::string>> tr{{"variant", "trial", "settings", "score", "samples", "failure"}};
  repro::append_trial_rows(tr, r);
  bench::write_csv(bench::results_path("poisoning_variants" + suffix + ".csv"), runs);
  bench::write_csv(bench::results_path("poisoning_variants_trials" + suffix + ".csv"), tr);
  repro::plot_poisoning(r, c).write(bench::figure_path("poisoning_variants" + suffix + ".svg"));
  return 0;
}
