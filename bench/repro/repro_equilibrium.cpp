// The equilibrium-model experiment of JMLR 2023 (issue 21, item 3): a deep-equilibrium
// classifier on Fashion-MNIST (state 64, radius 0.5, T = K = 3, outer SGD 0.5) trained on
// minibatches of a hundredth, a tenth and all of the training set, with and without warm
// start of the per-example states, over seeds; test accuracy and loss against sample-
// gradients, outer steps and seconds (bench/repro/equilibrium_protocol.hpp).
//
//   repro_equilibrium [--mode quick|full] [--seeds N]
//     full (default): 59 500 training images (500 more are the validation set), batches
//       600 / 6000 / 59 500, a budget of 2·10⁷ sample-gradients per run, 5 seeds; written to
//       bench/results/equilibrium_protocol.csv (every checkpoint of every run) and
//       docs/figures/equilibrium_protocol.svg;
//     quick: a budget of 2·10⁶ and 2 seeds, the same files with "_quick" before the
//       extension (the published full results stay).
#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "bench_util.hpp"
#include "repro/equilibrium_protocol.hpp"

using namespace hyperad;

int main(int argc, char** argv) {
  std::string mode = "full";
  int seeds = 0;
  bench::parse_flags(argc, argv, {{"--mode", &mode}, {"--seeds", &seeds}});
  const bool quick = bench::quick_mode(mode, "repro_equilibrium");
  const std::string suffix = quick ? "_quick" : "";
  repro::EquilibriumProtocolConfig c;
  if (quick) c.budget = 2'000'000, c.seeds = 2;
  if (seeds > 0) c.seeds = seeds;

  const auto start = std::chrono::steady_clock::now();
  const repro::EquilibriumProtocol r = repro::run_equilibrium_protocol(c);
  fmt::print("<!-- equilibrium: {} -->\n", r.summary);
  fmt::print("T = {}, K = {}, outer SGD step {:g}, budget {} sample-gradients per run, {} seeds; test accuracy at λ0 "
             "{:.3f}\n\n",
             c.T, c.K, c.step_size, c.budget, c.seeds, r.initial_test_accuracy);
  fmt::print("| batch | warm start | outer steps | seconds | test accuracy at 1/4 / 1/2 / all of the budget | final "
             "[min, max] | test loss | train accuracy |\n|---|---|---|---|---|---|---|---|\n");
  // The checkpoint nearest a fraction of the budget (the k-th is after (k + 1)/evaluations).
  auto at = [&](double f) { return std::size_t(std::max(0L, std::lround(f * c.evaluations) - 1)); };
  const std::size_t last = at(1.0), quarter = at(0.25), half = at(0.5);
  for (std::int64_t b : c.batches)
    for (bilevel::EpisodeWarmStart w : c.warm_starts) {
      auto med = [&](std::size_t k, double repro::EquilibriumCheckpoint::*f) {
        return repro::median_over_seeds(r, b, w, k, f);
      };
      std::vector<double> finals, steps;
      for (const auto& run : r.runs)
        if (run.batch == b && run.warm_start == w && !run.checkpoints.empty()) {
          finals.push_back(run.checkpoints.back().test_accuracy);
          steps.push_back(double(run.checkpoints.back().steps));
        }
      if (finals.empty()) continue;
      fmt::print("| {} | {} | {:g} | {:.1f} | {:.3f} / {:.3f} / {:.3f} | {:.3f} [{:.3f}, {:.3f}] | {:.3f} | {:.3f} |\n", b,
                 bilevel::episode_warm_start_name(w), problems::quartiles(steps).median,
                 med(last, &repro::EquilibriumCheckpoint::seconds),
                 med(quarter, &repro::EquilibriumCheckpoint::test_accuracy),
                 med(half, &repro::EquilibriumCheckpoint::test_accuracy),
                 med(last, &repro::EquilibriumCheckpoint::test_accuracy), problems::quartiles(finals).median,
                 *std::min_element(finals.begin(), finals.end()), *std::max_element(finals.begin(), finals.end()),
                 med(last, &repro::EquilibriumCheckpoint::test_loss),
                 med(last, &repro::EquilibriumCheckpoint::train_accuracy));
    }
  fmt::print("\n{:.0f} s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

  std::vector<std::vector<std::string>> csv{{"batch", "warm_start", "seed", "samples", "steps", "seconds",
                                             "test_accuracy", "test_loss", "train_accuracy"}};
  repro::append_rows(csv, r);
  bench::write_csv(bench::results_path("equilibrium_protocol" + suffix + ".csv"), csv);
  repro::plot_equilibrium(r, c).write(bench::figure_path("equilibrium_protocol" + suffix + ".svg"));
  return 0;
}
