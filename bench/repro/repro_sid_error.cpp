// The stochastic hypergradient's error terms (issue 21, item 2): the mean-square error of
// SID against t, K and J, each varied with the other two exact (bench/repro/sid_error.hpp),
// with decreasing (η₀γ/(γ + s)) and constant steps, on logistic regression (`logreg`,
// synthetic data: λ enters only the ℓ2 penalty) and on the poisoning attack (multinomial
// logistic regression on digits; λ = poisoned training points, so λ enters the data
// terms); and, for the equilibrium model, where nothing is sampled inside an episode, the
// minibatch error against the batch size B beside its exact law σ²/B·(n − B)/(n − 1), and
// the truncation error against T = K.
//
//   repro_sid_error [--mode quick|full] [--calls N]
//     full (default): 200 calls per point, t, K ≤ 10⁴ (5 minutes on one core), written to
//       bench/results/repro_sid_error.csv (every point), repro_sid_error_fits.csv (the
//       fitted slopes with 95 % intervals, beside the predicted ones) and
//       docs/figures/sid_error_{logreg,poisoning,equilibrium,equilibrium_T}.svg;
//     quick: 40 calls per point, t, K ≤ 3000 (19 s), the same files with "_quick" before
//       the extension (the published full results stay).
#include <cmath>

#include <fmt/format.h>

#include "bench_util.hpp"
#include "repro/sid_error.hpp"

using namespace hyperad;
using repro::g4;

int main(int argc, char** argv) {
  std::string mode = "full";
  int calls = 0;
  bench::parse_flags(argc, argv, {{"--mode", &mode}, {"--calls", &calls}});
  const bool quick = bench::quick_mode(mode, "repro_sid_error");
  if (calls == 0) calls = quick ? 40 : 200;
  const std::string suffix = quick ? "_quick" : "";

  std::vector<std::vector<std::string>> csv{{"problem", "term", "steps", "count", "mse", "predicted", "calls"}};
  std::vector<std::vector<std::string>> fits{
      {"problem", "term", "steps", "slope", "lo95", "hi95", "predicted", "fitted_counts"}};
  fmt::print("| problem | term | steps | fitted slope [95 % interval] | predicted | MSE at the counts |\n"
             "|---|---|---|---|---|---|\n");

  repro::SidErrorConfig logreg;
  logreg.calls = calls;
  if (!quick) logreg.counts.push_back(10000);
  repro::SidErrorConfig poisoning = logreg;
  poisoning.name = "poisoning";
  poisoning.problem = {.dataset = "digits", .seed = 1,
                       .options = {{"train_size", "200"}, {"val_size", "100"}, {"test_size", "100"},
                                   {"downsample", "2"}, {"l2", "0.05"}}};
  for (const repro::SidErrorConfig& config : {logreg, poisoning}) {
    const repro::SidErrorResult r = repro::run_sid_error(config);
    fmt::print("<!-- {}: {} -->\n", config.name, r.summary);
    for (const repro::SidErrorSeries& s : r.series) {
      repro::append_rows(csv, config.name, s);
      const bool none = repro::vanishes(s);
      const std::string predicted = none                            ? "0 (no variance)"
                                    : s.term == repro::Term::cross ? "-1 (exact law)"
                                    : s.decreasing                  ? "-1"
                                                                    : "0 (plateau)";
      const std::string window =
          fmt::format("{}–{}", s.points[s.points.size() - s.fitted].count, s.points.back().count);
      fits.push_back({config.name, repro::term_name(s.term), repro::steps_name(s), none ? "" : g4(s.slope),
                      none ? "" : g4(s.lo), none ? "" : g4(s.hi), predicted, window});
      std::string pts;
      for (std::size_t i = 0; i < s.points.size(); ++i)
        pts += fmt::format(" {}: {:.2g}{};", s.points[i].count, s.points[i].mse(),
                           i < s.predicted.size() ? fmt::format(" (law {:.2g})", s.predicted[i]) : "");
      fmt::print("| {} | {} | {} | {} | {} |{} |\n", config.name, repro::term_name(s.term), repro::steps_name(s),
                 none ? std::string("— (every MSE < 1e-20)")
                      : fmt::format("{:.2f} [{:.2f}, {:.2f}] over {}", s.slope, s.lo, s.hi, window),
                 predicted, pts);
    }
    repro::plot_terms(r).write(bench::figure_path(fmt::format("sid_error_{}{}.svg", config.name, suffix)));
  }

  repro::EquilibriumErrorConfig eq;
  eq.calls = calls;
  const repro::EquilibriumErrorResult e = repro::run_equilibrium_error(eq);
  fmt::print("\n<!-- equilibrium: {} -->\nσ² = {:.4g} (relative to ‖h*‖²), n = {}\n\n", e.summary, e.sigma2, e.n);
  fmt::print("| B | MSE | σ²/B·(n − B)/(n − 1) | ratio |\n|---|---|---|---|\n");
  for (std::size_t i = 0; i < e.batch.points.size(); ++i)
    fmt::print("| {} | {:.4g} | {:.4g} | {:.3f} |\n", e.batch.points[i].count, e.batch.points[i].mse(),
               e.batch.predicted[i], e.batch.points[i].mse() / e.batch.predicted[i]);
  repro::append_rows(csv, "equilibrium", e.batch);
  fmt::print("\nslope of the finite-population-corrected MSE against B: {:.3f} [{:.3f}, {:.3f}] (predicted -1)\n\n",
             e.batch.slope, e.batch.lo, e.batch.hi);
  fits.push_back({"equilibrium", "B", "none", g4(e.batch.slope), g4(e.batch.lo), g4(e.batch.hi), "-1",
                  fmt::format("{}–{}", e.batch.points.front().count, e.batch.points.back().count)});
  fmt::print("| T = K (full data) | relative squared error |\n|---|---|\n");
  for (auto [T, err] : e.truncation) {
    csv.push_back({"equilibrium", "T=K", "none", std::to_string(T), g4(err), "", "1"});
    fmt::print("| {} | {:.3g} |\n", T, err);
  }
  repro::plot_batches(e).write(bench::figure_path("sid_error_equilibrium" + suffix + ".svg"));
  repro::plot_truncation(e).write(bench::figure_path("sid_error_equilibrium_T" + suffix + ".svg"));

  bench::write_csv(bench::results_path("repro_sid_error" + suffix + ".csv"), csv);
  bench::write_csv(bench::results_path("repro_sid_error_fits" + suffix + ".csv"), fits);
  return 0;
}
