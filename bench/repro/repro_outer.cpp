// Outer optimization with different hypergradient methods (issue 8, item 3): the outer
// objective E(w_t, λ_s) that each step's method reports (validation loss for logreg and
// poisoning, training loss for equilibrium) and the instance's validation metric, against
// wall time and against sample-gradients (OuterRecord::total_seconds, total_samples), with
// the instance's final metrics (instance.evaluate: retrain at λ, test) at the end.
//
// Problems (registry defaults unless said; same α and outer-step budget for every method):
//   logreg      breast_cancer, t = 200, K = 30, 50 Adam steps, α = 0.2;
//   poisoning   digits (800 training points, 160 poisoned, 8×8), t = 100, K = 50,
//               50 momentum steps, α = n/20;
//   equilibrium digits (1000 × h = 32 states), t = 40, K = 20, 100 Adam steps, α = 0.01
//               (∂_wΦ not symmetric: GMRES and normal-CG instead of CG); its SID is the
//               episodic protocol of JMLR 2023: 100 examples per step, each state from 0 by
//               T = 3 fixed-point steps, K = 3.
// Methods via problems::make_method (make_episodic for equilibrium's SID): ITD (full),
// AID-FP, AID-CG (or AID-GMRES/normal-CG), SID (minibatches), and AID warm-started
// (WarmStart::inner_and_linear).
//
//   repro_outer [--only PROBLEM]
// writes bench/results/repro_outer.csv (one row per outer step), repro_outer_final.csv
// (final metrics per run) and docs/figures/outer_<problem>_{time,samples}.svg.
#include <limits>
#include <filesystem>
#include <memory>

#include "bench_util.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"

using namespace hyperad;
using namespace hyperad::problems;
using bilevel::WarmStart;

namespace {

struct RunSpec {
  std::string label;
  MethodConfig method;
  WarmStart warm = WarmStart::none;
  std::int64_t meta_batch = 0;  // > 0: the instance's episodic version, this many units per step
};

struct ProblemSpec {
  std::string name;
  ProblemConfig config;
  int steps;
  std::string test_key;  // the evaluate() metric reported as test accuracy
  std::string val_key;   // the evaluate() metric reported as (retrained) validation loss
  std::vector<RunSpec> runs;
};

std::string g6(double v) { return fmt::format("{:.6g}", v); }

double metric(const Metrics& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<ProblemSpec> specs() {
  const auto warm = WarmStart::inner_and_linear;
  std::vector<ProblemSpec> s;
  // SID on the convex problems: batches of the instance default, J = 4, η_s = γ/(γ + s).
  const MethodConfig sid_cvx{.name = "sid", .cross_batches = 4, .step_decay = 20};
  s.push_back({"logreg",
               {.dataset = "breast_cancer"},
               50,
               "test_accuracy",
               "val_loss",
               {{"ITD", {.name = "itd"}},
                {"AID-FP", {.name = "aid-fp"}},
                {"AID-CG", {.name = "aid-cg"}},
                {"SID", sid_cvx},
                {"AID-FP warm", {.name = "aid-fp"}, warm},
                {"AID-CG warm", {.name = "aid-cg"}, warm}}});
  s.push_back({"poisoning",
               {.dataset = "digits"},
               50,
               "test_acc_poisoned",
               "val_loss_poisoned",
               {{"ITD", {.name = "itd"}},
                {"AID-FP", {.name = "aid-fp"}},
                {"AID-CG", {.name = "aid-cg"}},
                {"SID", sid_cvx},
                {"AID-CG warm", {.name = "aid-cg"}, warm}}});
  // Equilibrium: SID on episodes of 100 of the 1000 examples, T = K = 3 from 0 (JMLR 2023).
  s.push_back({"equilibrium",
               {.dataset = "digits"},
               100,
               "test_accuracy",
               "",
               {{"ITD", {.name = "itd"}},
                {"AID-FP", {.name = "aid-fp"}},
                {"AID-GMRES", {.name = "aid-gmres"}},
                {"AID-normal-CG", {.name = "aid-normal-cg"}},
                {"SID", {.name = "sid", .inner_steps = 3, .linear_steps = 3}, WarmStart::none, 100},
                {"AID-GMRES warm", {.name = "aid-gmres"}, warm},
                // t = 40 already converges the inner problem; warm start matters at small t.
                {"AID-GMRES t=10 K=5", {.name = "aid-gmres", .inner_steps = 10, .linear_steps = 5}},
                {"AID-GMRES t=10 K=5 warm", {.name = "aid-gmres", .inner_steps = 10, .linear_steps = 5}, warm}}});
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  bench::parse_flags(argc, argv, {{"--only", &only}});
  std::vector<std::vector<std::string>> csv{{"problem", "method", "step", "objective", "validation", "grad_norm",
                                             "samples", "total_samples", "seconds", "total_seconds"}};
  std::vector<std::vector<std::string>> fin{{"problem", "method", "metric", "value"}};
  fmt::print("| problem | method | final E(w_t, λ) | final val. metric | val. loss (retrained) | test acc. | time (s) | "
             "samples |\n|---|---|---|---|---|---|---|---|\n");
  for (const ProblemSpec& ps : specs()) {
    if (!only.empty() && only != ps.name) continue;
    const Instance inst = make_problem(ps.name, ps.config);
    const Metrics m0 = inst.evaluate(inst.lambda0);
    for (const auto& [k, v] : m0) fin.push_back({ps.name, "start", k, g6(v)});
    fmt::print("| {} | start (λ0) | | | {:.4f} | {:.4f} | | |\n", ps.name, metric(m0, ps.val_key),
               metric(m0, ps.test_key));
    LinePlot by_time({.title = fmt::format("{}: outer objective vs wall time", ps.name),
                      .x_label = "wall time (s)",
                      .y_label = inst.maximize ? "validation loss (maximized)" : "outer objective E(w_t, λ)"});
    LinePlot by_samples({.title = fmt::format("{}: outer objective vs sample-gradients", ps.name),
                         .x_label = "sample-gradients",
                         .y_label = by_time.options().y_label});
    for (const RunSpec& r : ps.runs) {
      const bool episodic = r.meta_batch > 0;
      bilevel::OuterOptions o = outer_options(inst);
      o.outer_steps = ps.steps;
      o.warm_start = r.warm;
      std::unique_ptr<bilevel::HypergradientMethod> method;
      std::unique_ptr<bilevel::EpisodicHypergradient> episodes;
      std::unique_ptr<bilevel::OuterOptimizer> optimizer;
      if (episodic) {
        episodes = make_episodic(r.method, inst, {.meta_batch = r.meta_batch});
        optimizer = std::make_unique<bilevel::OuterOptimizer>(*episodes, inst.lambda0, o, inst.projections);
      } else {
        method = make_method(r.method, inst);
        optimizer = std::make_unique<bilevel::OuterOptimizer>(inst.problem, *method, inst.lambda0, o, inst.projections);
      }
      bilevel::OuterOptimizer& opt = *optimizer;
      const auto& hist = opt.run();
      PlotSeries st{.label = r.label, .dashed = r.warm != WarmStart::none}, ss = st;
      for (const auto& rec : hist) {
        csv.push_back({ps.name, r.label, std::to_string(rec.step), g6(rec.objective), g6(rec.validation),
                       g6(rec.grad_norm), std::to_string(rec.samples), std::to_string(rec.total_samples),
                       g6(rec.seconds), g6(rec.total_seconds)});
        st.x.push_back(rec.total_seconds);
        ss.x.push_back(static_cast<double>(rec.total_samples));
        st.y.push_back(rec.objective);
        ss.y.push_back(rec.objective);
      }
      by_time.add(st);
      by_samples.add(ss);
      const Metrics m = inst.evaluate(opt.lambda());
      const auto& last = hist.back();
      for (const auto& [k, v] : m) fin.push_back({ps.name, r.label, k, g6(v)});
      fin.push_back({ps.name, r.label, "final_objective", g6(last.objective)});
      fin.push_back({ps.name, r.label, "final_validation_metric", g6(last.validation)});
      fin.push_back({ps.name, r.label, "total_seconds", g6(last.total_seconds)});
      fin.push_back({ps.name, r.label, "total_samples", std::to_string(last.total_samples)});
      fmt::print("| {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.2f} | {:.3g} |\n", ps.name, r.label,
                 last.objective, last.validation, metric(m, ps.val_key), metric(m, ps.test_key), last.total_seconds,
                 static_cast<double>(last.total_samples));
      std::fflush(stdout);
    }
    by_time.write(bench::figure_path(fmt::format("outer_{}_time.svg", ps.name)));
    by_samples.write(bench::figure_path(fmt::format("outer_{}_samples.svg", ps.name)));
  }
  bench::write_csv(bench::results_path(only.empty() ? "repro_outer.csv" : "repro_outer_" + only + ".csv"), csv);
  bench::write_csv(bench::results_path(only.empty() ? "repro_outer_final.csv" : "repro_outer_final_" + only + ".csv"),
                   fin);
  return 0;
}
