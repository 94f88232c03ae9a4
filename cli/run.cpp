// `hyperad run PROBLEM`: the outer optimizer on a registered problem — its fixed version or
// its episodic one (a fresh meta-batch of tasks or examples each step) — with a progress
// display, an optional CSV log, figure and save/resume, a summary at the end, and several
// seeds in one command (medians and quartiles).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "ranks.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/protocol.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "session.hpp"

namespace hyperad::cli {

namespace {

// "logreg on breast_cancer (small)" for titles.
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

// What one run leaves for a summary over seeds.
struct Outcome {
  std::uint64_t seed = 0;
  double objective = NAN, validation = NAN, stationarity = NAN;
  std::int64_t steps = 0, samples = 0;
  double seconds = 0;
  problems::Metrics metrics{};
};

// How far a run is, for the progress bar: steps, or the larger share of a budget spent.
double fraction_done(const bilevel::OuterOptimizer& opt) {
  const bilevel::OuterOptions& o = opt.options();
  double f = o.outer_steps > 0 ? double(opt.steps_done()) / double(o.outer_steps) : 1.0;
  if (o.budget_samples > 0) f = std::max(f, double(opt.total_samples()) / double(o.budget_samples));
  if (o.budget_seconds > 0) f = std::max(f, opt.total_seconds() / o.budget_seconds);
  return std::min(f, 1.0);
}

Outcome run_once(const RunArgs& a, bool summary) {
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  problems::ProblemConfig config = problem_config(a.problem);
  config.shards = a.shards;
  Session s = make_session(a, problems::make_problem(a.problem.problem, config));
  const problems::Instance& inst = s.inst;
  bilevel::OuterOptimizer& opt = *s.optimizer;
  const bilevel::OuterOptions& o = s.options;

  bool resumed = false;
  const bool found = a.resume && std::filesystem::exists(a.state);
  // Under mpirun every rank reads the state rank 0 wrote: a rank that did not see it would
  // start afresh while the others resume.
  if (a.resume && !ranks().same_everywhere(found))
    throw ValueError(fmt::format("--resume: the state file '{}' exists for some ranks only; every rank reads it (put it "
                                 "on a file system all ranks share)",
                                 a.state));
  if (found) {
    opt.load(a.state);
    resumed = true;
  }
  const std::int64_t first = opt.steps_done();
  const std::string title = describe(a, inst);
  if (!a.quiet) {
    fmt::print(stderr, "{}: {}\n", inst.name, inst.summary);
    for (const std::string& n : s.notes) fmt::print(stderr, "{}\n", n);
    fmt::print(stderr, "{}{}\n", s.describe(),
               resumed ? fmt::format(" (resumed from '{}' at step {})", a.state, first) : "");
  }

  Progress progress(first, o.outer_steps, !a.quiet);
  while (opt.steps_done() < o.outer_steps && !opt.budget_spent()) {
    const bilevel::OuterRecord& r = opt.step();
    progress.update(opt.steps_done(), r.objective, r.validation, s.validation_name, fraction_done(opt));
  }
  progress.finish();
  if (!a.state.empty() && a.writes_state) opt.save(a.state);

  const auto& h = opt.history();
  Outcome out{.seed = a.problem.seed, .steps = opt.steps_done(), .samples = opt.total_samples(),
              .seconds = opt.total_seconds()};
  if (!h.empty()) {
    out.objective = h.back().objective;
    for (auto it = h.rbegin(); it != h.rend(); ++it)
      if (!std::isnan(it->validation)) {
        out.validation = it->validation;
        break;
      }
  }
  if (o.reference_gradient) out.stationarity = opt.stationarity();
  out.metrics = inst.evaluate(opt.lambda());
  if (!summary) return out;

  // Summary: the run's first and last records, the evaluation at λ0 and at the final λ.
  const problems::Metrics start = inst.evaluate(inst.lambda0);
  fmt::print("\n{} — {} outer steps with {}{}\n\n", title, opt.steps_done(), s.method_name(),
             !resumed                      ? std::string()
             : first < opt.steps_done()    ? fmt::format(" (steps {}–{} in this run)", first, opt.steps_done() - 1)
                                           : std::string(" (all done before this run)"));
  if (!h.empty()) {
    Table t({"", fmt::format("step {}", h.front().step), fmt::format("step {}", h.back().step)});
    t.add({std::string("outer objective") + (inst.maximize ? " (maximized)" : ""), num(h.front().objective),
           num(h.back().objective)});
    if (!s.validation_name.empty()) {
      double first_v = NAN;
      for (const auto& r : h)
        if (!std::isnan(r.validation)) {
          first_v = r.validation;
          break;
        }
      t.add({s.validation_name, num(first_v), num(out.validation)});
    }
    t.add({"‖h‖", num(h.front().grad_norm), num(h.back().grad_norm)});
    if (o.reference_gradient) t.add({"stationarity", num(h.front().stationarity), num(out.stationarity)});
    fmt::print("{}\n", t.str());
  }
  Table e({"evaluation", "at λ0", "at final λ"});
  for (std::size_t i = 0; i < out.metrics.size(); ++i)
    e.add({out.metrics[i].first, i < start.size() && start[i].first == out.metrics[i].first ? num(start[i].second) : "-",
           num(out.metrics[i].second)});
  fmt::print("{}\n", e.str());
  const double total = std::chrono::duration<double>(Clock::now() - t_start).count();
  fmt::print("time {} (outer loop {}), samples {}{}\n", duration(total), duration(out.seconds), out.samples,
             opt.budget_spent() ? " (budget spent)" : "");

  if (!a.plot.empty()) {
    const Curve curve = !a.csv.empty() ? curve_from_csv(a.csv) : curve_from_history(h);
    write_run_plot(a.plot, title, curve, s.validation_name);
  }
  if (!a.csv.empty()) fmt::print("CSV log: {}\n", a.csv);
  if (!a.plot.empty()) fmt::print("plot: {}\n", a.plot);
  if (!a.state.empty()) fmt::print("state: {} (continue with --save-state {} --resume)\n", a.state, a.state);
  return out;
}

// Median [Q1, Q3] of a figure over the runs.
std::string spread(const std::vector<double>& values) {
  const problems::Quartiles q = problems::quartiles(values);
  return q.count == 0 ? "-" : fmt::format("{} [{}, {}]", num(q.median), num(q.q1), num(q.q3));
}

}  // namespace

int run_command(const RunArgs& a) {
  apply_threads(a.problem.threads);
  require_directory(a.csv, "--csv");
  require_directory(a.plot, "--plot");
  require_directory(a.state, "--save-state");
  require_distinct_outputs(a);
  if (a.seeds <= 1) {
    run_once(a, true);
    return 0;
  }

  // Seeds seed … seed + N − 1, each with its own outputs (name.seedK.ext).
  std::vector<Outcome> runs;
  for (int k = 0; k < a.seeds; ++k) {
    RunArgs b = a;
    b.problem.seed = a.problem.seed + static_cast<std::uint64_t>(k);
    b.csv = with_seed(a.csv, b.problem.seed);
    b.plot = with_seed(a.plot, b.problem.seed);
    b.state = with_seed(a.state, b.problem.seed);
    b.quiet = true;
    if (!a.quiet) fmt::print(stderr, "seed {} ({}/{})…\n", b.problem.seed, k + 1, a.seeds);
    runs.push_back(run_once(b, false));
    if (!a.plot.empty()) {
      // run_once(…, false) skips the figure; draw it from the seed's log.
      if (!b.csv.empty()) write_run_plot(b.plot, fmt::format("{} seed {}", a.problem.problem, b.problem.seed),
                                         curve_from_csv(b.csv), "");
    }
  }
  std::vector<std::string> header{"", "median [Q1, Q3]"};
  for (const Outcome& r : runs) header.push_back(fmt::format("seed {}", r.seed));
  Table t(header);
  auto row = [&](const std::string& name, auto get) {
    std::vector<double> v;
    for (const Outcome& r : runs) v.push_back(get(r));
    std::vector<std::string> cells{name, spread(v)};
    for (double x : v) cells.push_back(num(x));
    t.add(cells);
  };
  row("final objective", [](const Outcome& r) { return r.objective; });
  row("last validation", [](const Outcome& r) { return r.validation; });
  if (a.stationarity_every > 0) row("final stationarity", [](const Outcome& r) { return r.stationarity; });
  row("outer steps", [](const Outcome& r) { return double(r.steps); });
  row("samples", [](const Outcome& r) { return double(r.samples); });
  row("seconds", [](const Outcome& r) { return r.seconds; });
  for (std::size_t i = 0; i < runs.front().metrics.size(); ++i)
    row(runs.front().metrics[i].first, [i](const Outcome& r) { return r.metrics.at(i).second; });
  fmt::print("\n{} — {} seeds ({} to {})\n\n{}\n", a.problem.problem, a.seeds, a.problem.seed,
             a.problem.seed + static_cast<std::uint64_t>(a.seeds) - 1, t.str());
  return 0;
}

}  // namespace hyperad::cli
