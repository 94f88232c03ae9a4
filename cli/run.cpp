// `hyperad run PROBLEM`: the outer optimizer on a registered problem, with a progress
// display, an optional CSV log, figure and save/resume, and a summary at the end.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "plot.hpp"
#include "progress.hpp"

namespace hyperad::cli {

namespace {

// "logreg (breast_cancer, small)" for titles.
std::string describe(const RunArgs& a, const problems::Instance& inst) {
  std::string s = inst.name + " on " + inst.dataset;
  return a.problem.small ? s + " (small)" : s;
}

// Fails before the run, not after it, when an output cannot be written there.
void require_directory(const std::string& path, const char* flag) {
  if (path.empty()) return;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ValueError(fmt::format("{} '{}' is a directory; give a file name", flag, path));
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    throw ValueError(fmt::format("{} '{}': the directory '{}' does not exist", flag, path, dir.string()));
}

// Two outputs naming one file would destroy each other (the plot replacing the log, say).
void require_distinct_outputs(const RunArgs& a) {
  const std::pair<const char*, const std::string*> outputs[] = {{"--csv", &a.csv}, {"--plot", &a.plot},
                                                                {"--save-state", &a.state}};
  for (std::size_t i = 0; i < std::size(outputs); ++i)
    for (std::size_t j = i + 1; j < std::size(outputs); ++j) {
      const std::string &x = *outputs[i].second, &y = *outputs[j].second;
      if (x.empty() || y.empty()) continue;
      std::error_code e1, e2;
      const auto px = std::filesystem::weakly_canonical(x, e1), py = std::filesystem::weakly_canonical(y, e2);
      if (x == y || (!e1 && !e2 && px == py))
        throw ValueError(fmt::format("{} '{}' and {} '{}' name the same file; give each output its own path",
                                     outputs[i].first, x, outputs[j].first, y));
    }
}

// What fixes this run's numbers beyond the optimizer's own settings, saved in the state so
// that --resume refuses a state written by a different run.
std::vector<std::pair<std::string, std::string>> run_identity(const RunArgs& a, const problems::ProblemConfig& c,
                                                              const problems::MethodConfig& mc) {
  const problems::ProblemInfo& info = problems::find_problem(a.problem.problem);
  std::string options;
  for (const auto& [k, v] : c.options) options += (options.empty() ? "" : " ") + k + "=" + v;
  auto count = [](const auto& x) { return x ? fmt::format("{}", *x) : std::string("default"); };
  return {{"problem", a.problem.problem},
          {"dataset", c.dataset.empty() ? info.datasets.front() : c.dataset},
          {"small", c.small ? "yes" : "no"},
          {"problem options", options.empty() ? "none" : options},
          {"seed", fmt::format("{}", c.seed)},
          {"method name", mc.name},
          {"t (--inner-steps)", count(mc.inner_steps)},
          {"K (--linear-steps)", count(mc.linear_steps)},
          {"T (--reverse-steps)", count(mc.reverse_steps)},
          {"--batch-size", count(mc.batch_size)},
          {"J (--cross-batches)", count(mc.cross_batches)}};
}

}  // namespace

int run_command(const RunArgs& a) {
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  apply_threads(a.problem.threads);
  require_directory(a.csv, "--csv");
  require_directory(a.plot, "--plot");
  require_directory(a.state, "--save-state");
  require_distinct_outputs(a);
  const problems::ProblemConfig config = problem_config(a.problem);
  const problems::Instance inst = problems::make_problem(a.problem.problem, config);
  const problems::Defaults& def = inst.defaults;

  problems::MethodConfig mc;
  mc.name = a.method.empty() ? def.method : a.method;
  mc.inner_steps = a.inner_steps;
  mc.linear_steps = a.linear_steps;
  mc.reverse_steps = a.reverse_steps;
  mc.batch_size = a.batch_size;
  mc.cross_batches = a.cross_batches;
  // ITD has no linear system: its richest warm start is the inner one.
  const bool itd = mc.name.rfind("itd", 0) == 0;
  const std::string warm = a.warm_start.empty() ? (itd ? "inner" : "inner+linear") : a.warm_start;
  mc.warm_start = parse_name(bilevel::kWarmStartNames, warm, "--warm-start");
  mc.seed = a.problem.seed;
  auto method = problems::make_method(mc, inst);
  method->set_strict(a.strict);

  bilevel::OuterOptions o = problems::outer_options(inst);
  if (a.outer_steps) o.outer_steps = *a.outer_steps;
  if (a.step_size) o.step_size = bilevel::StepSizeSchedule::constant(*a.step_size);
  if (!a.update.empty()) o.update = parse_name(bilevel::kOuterUpdateNames, a.update, "--update");
  o.warm_start = mc.warm_start;
  o.csv_path = a.csv;
  o.state_path = a.state;
  o.save_every = a.state.empty() ? 0 : a.save_every;
  o.resume = a.resume;
  o.run_identity = run_identity(a, config, mc);
  if (a.resume && a.state.empty()) throw ValueError("--resume needs --save-state FILE (the state to continue from)");

  bilevel::OuterOptimizer opt(inst.problem, *method, inst.lambda0, o, inst.projections);
  bool resumed = false;
  if (a.resume && std::filesystem::exists(a.state)) {
    opt.load(a.state);
    resumed = true;
  }
  const std::int64_t first = opt.steps_done();
  const std::string title = describe(a, inst);
  if (!a.quiet) {
    fmt::print(stderr, "{}: {}\n", inst.name, inst.summary);
    fmt::print(stderr, "method {} ({}), {} update, step size {}, warm start {}, {} outer steps{}\n", mc.name,
               method->name(), bilevel::outer_update_name(o.update), o.step_size.alpha0,
               bilevel::warm_start_name(o.warm_start), o.outer_steps,
               resumed ? fmt::format(" (resumed from '{}' at step {})", a.state, first) : "");
  }

  Progress progress(first, o.outer_steps, !a.quiet);
  while (opt.steps_done() < o.outer_steps) {
    const bilevel::OuterRecord& r = opt.step();
    progress.update(opt.steps_done(), r.objective, r.validation, inst.validation_name);
  }
  progress.finish();
  if (!a.state.empty()) opt.save(a.state);

  // Summary: the run's first and last records, the evaluation at λ0 and at the final λ.
  const auto& h = opt.history();
  const problems::Metrics start = inst.evaluate(inst.lambda0), end = inst.evaluate(opt.lambda());
  fmt::print("\n{} — {} outer steps with {}{}\n\n", title, o.outer_steps, method->name(),
             !resumed                   ? std::string()
             : first < o.outer_steps    ? fmt::format(" (steps {}–{} in this run)", first, o.outer_steps - 1)
                                        : std::string(" (all done before this run)"));
  if (!h.empty()) {
    Table t({"", fmt::format("step {}", h.front().step), fmt::format("step {}", h.back().step)});
    t.add({std::string("outer objective") + (inst.maximize ? " (maximized)" : ""), num(h.front().objective),
           num(h.back().objective)});
    if (!inst.validation_name.empty()) t.add({inst.validation_name, num(h.front().validation), num(h.back().validation)});
    t.add({"‖h‖", num(h.front().grad_norm), num(h.back().grad_norm)});
    fmt::print("{}\n", t.str());
  }
  Table e({"evaluation", "at λ0", "at final λ"});
  for (std::size_t i = 0; i < end.size(); ++i)
    e.add({end[i].first, i < start.size() && start[i].first == end[i].first ? num(start[i].second) : "-",
           num(end[i].second)});
  fmt::print("{}\n", e.str());
  const double total = std::chrono::duration<double>(Clock::now() - t_start).count();
  const double outer = h.empty() ? 0.0 : h.back().total_seconds;
  fmt::print("time {} (outer loop {}), samples {}\n", duration(total), duration(outer), opt.total_samples());

  if (!a.plot.empty()) {
    const Curve curve = !a.csv.empty() ? curve_from_csv(a.csv) : curve_from_history(h);
    write_run_plot(a.plot, title, curve, inst.validation_name);
  }
  if (!a.csv.empty()) fmt::print("CSV log: {}\n", a.csv);
  if (!a.plot.empty()) fmt::print("plot: {}\n", a.plot);
  if (!a.state.empty()) fmt::print("state: {} (continue with --save-state {} --resume)\n", a.state, a.state);
  return 0;
}

}  // namespace hyperad::cli
