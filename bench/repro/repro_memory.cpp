// Memory and time of one hypergradient against the number of inner steps t (issue 8,
// item 4), on `logreg --dataset synthetic` with n = 2000 examples (1000 training, 500
// validation) and d = 100 features (inner state w ∈ ℝ^100 plus the bias, λ ∈ ℝ^100), at λ0:
//   - ITD fully recorded (T = t): peak tape bytes;
//   - ITD checkpointed, binomial(⌈√t⌉) snapshots and every_k(⌈√t⌉): peak tape bytes (one
//     step at a time) plus the peak bytes of the stored states (Diagnostics::peak_stored_bytes);
//   - AID-CG and AID-FP with K = 30: peak tape bytes.
// "Peak tape" is what the call allocated and the tape kept (Diagnostics::peak_tape_bytes);
// the data matrices the tape only points to are the separate "referenced" column.
// t ∈ {10, 30, 100, 300, 1000}. Also the median wall time of one call and the relative error
// against exact_hypergradient (dense LU; the inner state has 101 elements).
//
//   repro_memory [--reps N]    writes bench/results/repro_memory.csv and
//                              docs/figures/memory_vs_t.svg (log-log: x is log10 t),
//                              docs/figures/memory_time_vs_t.svg
#include <cmath>
#include <filesystem>
#include <map>

#include "bench_util.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"

using namespace hyperad;
using namespace hyperad::problems;

int main(int argc, char** argv) {
  int reps = 5;
  bench::parse_flags(argc, argv, {{"--reps", &reps}});
  const Instance inst =
      make_problem("logreg", {.dataset = "synthetic", .options = {{"n", "2000"}, {"d", "100"}}});
  const bilevel::Hypergradient exact = bilevel::exact_hypergradient(inst.problem, inst.lambda0);
  fmt::print("{}\n\n", inst.summary);

  struct Variant {
    std::string label, name;
    bool every_k = false;
  };
  const std::vector<Variant> variants{{"ITD (recorded)", "itd"},
                                      {"ITD binomial(√t)", "itd-checkpointed"},
                                      {"ITD every_k(√t)", "itd-checkpointed", true},
                                      {"AID-CG (K=30)", "aid-cg"},
                                      {"AID-FP (K=30)", "aid-fp"}};
  const std::vector<int> ts{10, 30, 100, 300, 1000};
  std::vector<std::vector<std::string>> csv{{"method", "t", "peak_tape_bytes", "peak_referenced_bytes", "peak_stored_bytes", "total_bytes",
                                             "recomputed_steps", "ms_per_hypergradient", "rel_err_vs_exact"}};
  std::map<std::string, problems::PlotSeries> mem, time, stored;
  fmt::print("| method | t | peak tape (KiB) | stored states (KiB) | total (KiB) | referenced (KiB) | recomputed steps | "
             "ms / call | rel. error |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const Variant& v : variants) {
    mem[v.label].label = time[v.label].label = v.label;
    mem[v.label].markers = time[v.label].markers = true;
    for (int t : ts) {
      MethodConfig mc{.name = v.name, .inner_steps = t, .linear_steps = 30};
      const auto k = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(t))));
      if (v.name == "itd-checkpointed")
        mc.checkpoint = v.every_k ? CheckpointPolicy::every_k(k) : CheckpointPolicy::binomial(k);
      auto m = make_method(mc, inst);
      const bilevel::Hypergradient h = m->hypergradient(inst.problem, inst.lambda0);
      const auto& d = h.diagnostics;
      const double total = static_cast<double>(d.peak_tape_bytes + d.peak_stored_bytes);
      const double ms = bench::median_ms(reps, [&] { m->hypergradient(inst.problem, inst.lambda0); });
      const double err = list::relative_error(h.grad, exact.grad);
      fmt::print("| {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {} | {:.2f} | {:.2e} |\n", v.label, t,
                 d.peak_tape_bytes / 1024.0, d.peak_stored_bytes / 1024.0, total / 1024.0,
                 d.peak_referenced_bytes / 1024.0, d.recomputed_steps, ms, err);
      csv.push_back({v.label, std::to_string(t), std::to_string(d.peak_tape_bytes),
                     std::to_string(d.peak_referenced_bytes), std::to_string(d.peak_stored_bytes),
                     fmt::format("{:.0f}", total), std::to_string(d.recomputed_steps), fmt::format("{:.4g}", ms),
                     fmt::format("{:.3e}", err)});
      if (d.peak_stored_bytes > 0) {
        stored[v.label].x.push_back(std::log10(t));
        stored[v.label].y.push_back(static_cast<double>(d.peak_stored_bytes));
      }
      mem[v.label].x.push_back(std::log10(t));
      mem[v.label].y.push_back(total);
      time[v.label].x.push_back(std::log10(t));
      time[v.label].y.push_back(ms);
      std::fflush(stdout);
    }
  }
  LinePlot pm({.title = "Peak memory of one hypergradient (logreg synthetic, d = 100, n_train = 1000)",
               .x_label = "log10 t (inner steps)",
               .y_label = "peak bytes (tape + stored states)",
               .log_y = true});
  LinePlot pt({.title = "Time of one hypergradient (logreg synthetic, d = 100, n_train = 1000)",
               .x_label = "log10 t (inner steps)",
               .y_label = "ms per hypergradient",
               .log_y = true});
  for (const Variant& v : variants) {
    pm.add(mem[v.label]);
    pt.add(time[v.label]);
  }
  // The checkpointed runs' stored states alone (their tape holds one step: constant).
  for (const Variant& v : variants)
    if (stored.count(v.label))
      pm.add({.label = v.label + ": stored states only", .x = stored[v.label].x, .y = stored[v.label].y,
              .markers = true, .dashed = true});
  pm.write(bench::figure_path("memory_vs_t.svg"));
  pt.write(bench::figure_path("memory_time_vs_t.svg"));
  bench::write_csv(bench::results_path("repro_memory.csv"), csv);
  return 0;
}
