// `hyperad tune PROBLEM`: random search over method settings at one equal sample budget, as
// the JMLR 2023 comparison tunes its variants. Each candidate (a variant or a method) gets N
// trials of log-uniformly drawn settings (problems::random_search); each trial runs the
// outer loop until the budget of sample-gradients is spent, then is scored by the outer
// objective f(λ) at its final λ with the inner problem solved to convergence. The table
// gives per candidate the best trial and its settings, and the spread of the scores.
#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/files.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/problems/protocol.hpp"
#include "session.hpp"

namespace hyperad::cli {

namespace {

struct Scored {
  problems::Trial trial;
  double score = NAN;  // f at the final λ; NaN for a failed trial
  std::int64_t steps = 0, samples = 0;
  double seconds = 0;
  std::string failure{};
};

// A variant of the JMLR comparison, or a plain method (its settings drawn the same way, untied).
struct Candidate {
  problems::Variant v;
  bool is_variant = false;
};

// The candidates asked for; by default the JMLR variants on a problem with a stochastic
// version (the comparison they belong to), else the problem's default method.
std::vector<Candidate> candidates(const TuneArgs& a, const problems::Instance& inst, const std::string& fallback) {
  std::vector<Candidate> out;
  std::vector<std::string> names = a.candidates;
  if (names.empty() && inst.stochastic)
    for (const problems::Variant& v : problems::variants()) names.push_back(v.name);
  if (names.empty()) names.push_back(fallback);
  for (const std::string& c : names) {
    const auto& vs = problems::variants();
    const auto it = std::find_if(vs.begin(), vs.end(), [&](const problems::Variant& v) { return v.name == c; });
    if (it != vs.end()) {
      out.push_back({*it, true});
      continue;
    }
    // ValueError naming the valid methods (and the variants) for an unknown name.
    const auto& ms = problems::method_names();
    if (std::none_of(ms.begin(), ms.end(), [&](const problems::MethodInfo& m) { return m.name == c; })) {
      std::string known;
      for (const problems::Variant& v : vs) known += (known.empty() ? "" : ", ") + v.name;
      for (const problems::MethodInfo& m : ms) known += ", " + m.name;
      throw ValueError(fmt::format("--candidates: unknown variant or method '{}'; they are: {}", c, known));
    }
    out.push_back({{c, "method " + c, {.name = c}}, false});
  }
  return out;
}

// The run of one trial's settings.
RunArgs trial_args(const TuneArgs& a, const problems::Variant& v, const problems::Trial& t, bool is_variant) {
  RunArgs b = a.run;
  b.quiet = true;
  b.csv.clear(), b.plot.clear(), b.state.clear();
  b.resume = false;
  const problems::MethodConfig& m = t.method;
  if (is_variant) {
    b.variant = v.name;
  } else {
    b.method = v.method.name;
  }
  b.inner_steps = m.inner_steps;
  if (!problems::is_itd(m.name)) b.linear_steps = m.linear_steps;
  if (m.name == "sid") {
    b.cross_batches = m.cross_batches;
    b.inner_step = m.inner_step_size;
    b.linear_step = m.linear_step_size;
    if (m.step_decay > 0) b.step_decay = m.step_decay;
  }
  b.step_size = t.step_size;
  return b;
}

}  // namespace

int tune_command(const TuneArgs& a) {
  apply_threads(a.run.problem.threads);
  if (!a.run.budget_samples && !a.run.budget_seconds)
    throw ValueError("tune compares at an equal budget: give --budget-samples N (or --budget-seconds S)");
  const problems::ProblemConfig config = problem_config(a.run.problem);
  const problems::Instance inst = problems::make_problem(a.run.problem.problem, config);
  // α₀ and the default method of the version a run would use (per candidate below: SID may
  // run equilibrium's episodes).
  const auto defaults = [&](const RunArgs& r) -> const problems::Defaults& {
    return runs_episodic(r, inst) ? inst.episodic->defaults : inst.defaults;
  };
  const bilevel::InnerOptions tight{.max_iterations = 200000, .tolerance = Tolerance::absolute(1e-10)};
  const double sense = inst.maximize ? -1.0 : 1.0;  // lower is better after this sign

  std::string csv = "candidate,trial,settings,score,steps,samples,seconds,failure\n";
  Table table({"candidate", "best f", "median [Q1, Q3]", "failed", "best settings"}, "lrrrl");
  const auto chosen = candidates(a, inst, defaults(a.run).method);
  for (const auto& [v, is_variant] : chosen)
    if (is_variant && runs_episodic(trial_args(a, v, {v.method}, true), inst))
      throw ValueError(fmt::format("--candidates: variant '{}' applies to a problem's fixed (minibatch) version, and "
                                   "'{}' runs episodic here; give methods (e.g. aid-cg, sid), or --meta-batch 0",
                                   v.name, inst.name));
  for (const auto& [v, is_variant] : chosen) {
    const double alpha0 = a.run.step_size.value_or(defaults(trial_args(a, v, {v.method}, is_variant)).outer_step_size);
    const std::vector<problems::Trial> trials = problems::random_search(
        v, {.step_size = alpha0, .max_count = a.max_count}, a.trials, bilevel::mix_seed(a.run.problem.seed, 0x74756e65ULL));
    std::vector<Scored> scored;
    for (std::size_t k = 0; k < trials.size(); ++k) {
      Scored r{trials[k]};
      if (!a.run.quiet) fmt::print(stderr, "{} trial {}/{}: {}\n", v.name, k + 1, trials.size(), trials[k].describe());
      try {
        Session s = make_session(trial_args(a, v, trials[k], is_variant), inst);
        bilevel::OuterOptimizer& opt = *s.optimizer;
        opt.run();  // to the budget (no state file: nothing saved)
        r.steps = opt.steps_done(), r.samples = opt.total_samples(), r.seconds = opt.total_seconds();
        r.score = bilevel::outer_value(inst.problem, opt.lambda(), tight);
      } catch (const Error& e) {  // a diverging or untrusted trial: scored as failed
        r.failure = e.what();
      }
      csv += fmt::format("{},{},\"{}\",{:.17g},{},{},{:.3f},\"{}\"\n", v.name, k, r.trial.describe(), r.score, r.steps,
                         r.samples, r.seconds, r.failure.substr(0, r.failure.find('\n')));
      scored.push_back(std::move(r));
    }
    std::vector<double> scores;
    const Scored* best = nullptr;
    for (const Scored& r : scored) {
      scores.push_back(r.score);
      if (!std::isnan(r.score) && (!best || sense * r.score < sense * best->score)) best = &r;
    }
    const problems::Quartiles q = problems::quartiles(scores);
    const auto failed = static_cast<int>(scored.size() - q.count);
    table.add({v.name, best ? num(best->score) : "-",
               q.count ? fmt::format("{} [{}, {}]", num(q.median), num(q.q1), num(q.q3)) : "-",
               fmt::format("{}/{}", failed, scored.size()), best ? best->trial.describe() : "all failed"});
  }
  fmt::print("\n{} — random search, {} trials per candidate, budget {}; f at the final λ ({}, inner solve to "
             "convergence)\n\n{}\n",
             inst.name, a.trials,
             a.run.budget_samples ? fmt::format("{} samples", *a.run.budget_samples)
                                  : fmt::format("{} s", a.run.budget_seconds.value_or(0)),
             inst.maximize ? "higher is better" : "lower is better", table.str());
  if (!a.csv.empty()) {
    bilevel::write_file_atomically(a.csv, csv, "tune: the CSV of trials");
    fmt::print("CSV of trials: {}\n", a.csv);
  }
  return 0;
}

}  // namespace hyperad::cli
