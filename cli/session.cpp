#include "session.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/names.hpp"
#include "hyperad/problems/protocol.hpp"

namespace hyperad::cli {

namespace {

// "constant", "linear:RATE[:CAP]" or "sqrt:RATE[:CAP]", from `base`.
bilevel::IterationSchedule parse_growth(const std::string& spec, int base, const char* flag) {
  const auto bad = [&](const std::string& why) {
    return ValueError(fmt::format("{} '{}': {} (expected constant, linear:RATE[:CAP] or sqrt:RATE[:CAP])", flag, spec, why));
  };
  if (spec == "constant") return bilevel::IterationSchedule::constant(base);
  const std::size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  if ((kind != "linear" && kind != "sqrt") || colon == std::string::npos) throw bad("unknown form");
  const std::string rest = spec.substr(colon + 1);
  const std::size_t second = rest.find(':');
  double rate = 0;
  int cap = std::numeric_limits<int>::max();
  try {
    std::size_t used = 0;
    const std::string r = rest.substr(0, second);
    rate = std::stod(r, &used);
    if (used != r.size()) throw bad("the rate is not a number");
    if (second != std::string::npos) {
      const std::string c = rest.substr(second + 1);
      cap = std::stoi(c, &used);
      if (used != c.size()) throw bad("the cap is not a whole number");
    }
  } catch (const std::logic_error&) {  // stod/stoi: not a number, out of range
    throw bad("the rate must be a number and the cap a whole number");
  }
  bilevel::IterationSchedule s = kind == "linear" ? bilevel::IterationSchedule::linear(base, rate, cap)
                                                  : bilevel::IterationSchedule::sqrt(base, rate, cap);
  s.validate(flag);
  return s;
}

// What fixes this run's numbers beyond the optimizer's own settings, saved in the state so
// that --resume refuses a state written by a different run.
std::vector<std::pair<std::string, std::string>> run_identity(const RunArgs& a, const problems::ProblemConfig& c,
                                                              const problems::MethodConfig& mc) {
  const problems::ProblemInfo& info = problems::find_problem(a.problem.problem);
  std::string options;
  for (const auto& [k, v] : c.options) options += (options.empty() ? "" : " ") + k + "=" + v;
  auto count = [](const auto& x) { return x ? fmt::format("{}", *x) : std::string("default"); };
  std::vector<std::pair<std::string, std::string>> id{{"problem", a.problem.problem},
                                                      {"dataset", c.dataset.empty() ? info.datasets.front() : c.dataset},
                                                      {"small", c.small ? "yes" : "no"},
                                                      {"problem options", options.empty() ? "none" : options},
                                                      {"seed", fmt::format("{}", c.seed)},
                                                      {"method name", mc.name},
                                                      {"variant", a.variant.empty() ? "none" : a.variant},
                                                      {"t (--inner-steps)", count(mc.inner_steps)},
                                                      {"K (--linear-steps)", count(mc.linear_steps)},
                                                      {"T (--reverse-steps)", count(mc.reverse_steps)},
                                                      {"--batch-size", count(mc.batch_size)},
                                                      {"J (--cross-batches)", count(mc.cross_batches)}};
  // Data parallel: the sums' order depends on the chunk count (not on the rank count).
  if (a.shards) id.emplace_back("--chunks (data parallel)", fmt::format("{}", a.shards->chunks()));
  if (mc.name == "sid")
    id.emplace_back("SID steps", fmt::format("inner η₀ {}, linear η₀ {}, γ {}, momentum {}", mc.inner_step_size,
                                             mc.linear_step_size, mc.step_decay, mc.inner_momentum));
  return id;
}

// SID on a problem with no minibatch version but an episodic one: its minibatches are episodes.
bool sid_as_episodes(const RunArgs& a, const problems::Instance& inst) {
  const std::string wanted = !a.variant.empty() ? problems::find_variant(a.variant).method.name : a.method;
  return !a.meta_batch && wanted == "sid" && !inst.stochastic && inst.episodic;
}
}  // namespace

bool runs_episodic(const RunArgs& a, const problems::Instance& inst) {
  if (a.meta_batch) return *a.meta_batch > 0;
  return (inst.episodic && inst.episodic->preferred) || sid_as_episodes(a, inst);
}

std::string with_seed(const std::string& path, std::uint64_t seed) {
  if (path.empty()) return path;
  const std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + fmt::format(".seed{}", seed) + p.extension().string())).string();
}

std::string Session::method_name() const { return episodic ? episodic->name() : method->name(); }

std::string Session::describe() const {
  return fmt::format("method {} ({}), {} update, step size {}, warm start {}, {}", method_config.name, method_name(),
                     bilevel::outer_update_name(options.update), options.step_size.alpha0, warm_start,
                     options.budget_samples > 0 || options.budget_seconds > 0
                         ? fmt::format("budget {}{}{}",
                                       options.budget_samples > 0 ? fmt::format("{} samples", options.budget_samples) : "",
                                       options.budget_samples > 0 && options.budget_seconds > 0 ? " or " : "",
                                       options.budget_seconds > 0 ? fmt::format("{} s", options.budget_seconds) : "")
                         : fmt::format("{} outer steps", options.outer_steps));
}

Session make_session(const RunArgs& a, problems::Instance instance) {
  Session s;
  s.inst = std::move(instance);
  const problems::Instance& inst = s.inst;
  const problems::ProblemInfo& info = problems::find_problem(a.problem.problem);
  const problems::Variant* variant = a.variant.empty() ? nullptr : &problems::find_variant(a.variant);
  if (variant && !a.method.empty())
    throw ValueError(fmt::format("--variant {} names its method ({}); drop --method", a.variant, variant->method.name));

  // Fixed or episodic (runs_episodic).
  const bool prefers = inst.episodic && inst.episodic->preferred;
  const bool episodic = runs_episodic(a, inst);
  if (a.ranks > 1 && !episodic && !a.shards)
    throw ValueError(fmt::format("under mpirun ({} ranks) an episodic run spreads its meta-batch over the ranks "
                                 "(--meta-batch B; 'hyperad list' says which problems have one) and a data-parallel "
                                 "problem its examples; problem '{}' runs its fixed problem, which cannot be spread: run "
                                 "it as one process, or write it data-parallel with the library (docs/mpi.md)",
                                 a.ranks, inst.name));
  if (a.shards) s.notes.push_back(fmt::format("{}: data parallel, every batch of examples in {}", inst.name, a.shards->describe()));
  if (a.meta_batch && *a.meta_batch > 0 && !inst.episodic)
    throw ValueError(fmt::format("--meta-batch: problem '{}' has no episodic version (a meta-batch of tasks or "
                                 "examples per step)",
                                 inst.name));
  std::int64_t meta_batch = a.meta_batch.value_or(inst.episodic ? inst.episodic->meta_batch : 0);
  std::optional<std::int64_t> batch = a.batch_size;
  if (sid_as_episodes(a, inst)) {
    // --batch-size B: B examples per step (0, the full batch: all of them).
    if (batch) meta_batch = *batch > 0 ? *batch : std::max<std::int64_t>(1, inst.episodic->problem.population());
    batch.reset();
    const std::string unit = inst.episodic->problem.unit();
    s.notes.push_back(fmt::format("{}: SID's minibatches are episodes of {}s: {} {}s per step (--meta-batch {})",
                                  inst.name, unit, meta_batch, unit, meta_batch));
  }
  if (episodic && variant)
    throw ValueError(fmt::format("--variant applies to a problem's fixed (minibatch) version; an episodic run of "
                                 "'{}' takes --method and --warm-start none, naive or full",
                                 inst.name));
  const problems::Defaults& def = episodic ? inst.episodic->defaults : inst.defaults;

  problems::MethodConfig mc;
  if (variant) {
    if (!a.warm_start.empty())
      throw ValueError(fmt::format("--variant {} sets the warm start ({}); drop --warm-start", a.variant,
                                   bilevel::warm_start_name(variant->method.warm_start)));
    const int t = a.inner_steps.value_or(def.inner_steps);
    const int K = a.linear_steps.value_or(variant->tie_counts ? t : def.linear_steps);
    const int J = a.cross_batches.value_or(variant->tie_counts ? t : variant->j_equals_k ? K : 1);
    if (variant->tie_counts && (K != t || (J != t && variant->method.name == "sid")))
      throw ValueError(fmt::format("--variant {} ties t = K{}: give -t only (got t {}, K {}, J {})", a.variant,
                                   variant->method.name == "sid" ? " = J" : "", t, K, J));
    if (variant->j_equals_k && J != K)
      throw ValueError(fmt::format("--variant {} ties J = K: give -K only (got K {}, J {})", a.variant, K, J));
    mc = problems::variant_method(*variant, t, K, J, a.inner_step.value_or(1.0),
                                  a.step_decay.value_or(variant->decreasing ? 10.0 : 0.0));
    if (a.linear_step) mc.linear_step_size = *a.linear_step;
  } else {
    mc.name = a.method.empty() ? def.method : a.method;
    mc.inner_steps = a.inner_steps;
    mc.linear_steps = a.linear_steps;
    mc.cross_batches = a.cross_batches;
    mc.inner_step_size = a.inner_step.value_or(1.0);
    mc.linear_step_size = a.linear_step.value_or(1.0);
    mc.step_decay = a.step_decay.value_or(0.0);
  }
  mc.inner_momentum = a.inner_momentum.value_or(0.0);
  mc.reverse_steps = a.reverse_steps;
  mc.batch_size = batch;
  mc.seed = a.problem.seed;

  // The warm start: the problem's default in its preferred mode, else the mode's own.
  std::string warm = a.warm_start;
  if (warm.empty() && !variant) {
    warm = episodic == prefers ? info.warm_start : episodic ? "none" : "inner+linear";
    if (!episodic && problems::is_itd(mc.name) && warm == "inner+linear") warm = "inner";  // ITD has no linear system
  }
  if (episodic) {
    const std::string unit = inst.episodic->problem.unit();
    if (warm == "inner" || warm == "linear" || warm == "inner+linear")
      throw ValueError(fmt::format("--warm-start {} is for the fixed problem; an episodic run ({} {}s per step) "
                                   "takes none, naive or full",
                                   warm, meta_batch, unit));
    const bilevel::EpisodicOptions eo{
        .meta_batch = meta_batch,
        .warm_start = parse_name(bilevel::kEpisodeWarmStartNames, warm, "--warm-start"),
        // Over ranks, per-unit execution by default: the numbers of one process, bit for bit.
        .execution = !a.execution.empty() ? parse_name(bilevel::kExecutionNames, a.execution, "--execution")
                     : a.exchange         ? bilevel::Execution::sequential
                                          : bilevel::Execution::batched,
        .sampling = a.with_replacement ? bilevel::Sampling::with_replacement : bilevel::Sampling::without_replacement,
        .seed = a.problem.seed,
        .exchange = a.exchange};
    s.episodic = problems::make_episodic(mc, inst, eo);
    s.episodic->set_strict(a.strict);
    s.warm_start = warm;
  } else {
    if (!a.execution.empty() || a.with_replacement)
      throw ValueError("--execution and --with-replacement apply to episodic runs (--meta-batch B)");
    if (!variant) {
      if (warm == "naive" || warm == "full")
        throw ValueError(fmt::format("--warm-start {} applies to episodic runs (--meta-batch B){}", warm,
                                     inst.episodic ? "" : fmt::format("; problem '{}' has none", inst.name)));
      mc.warm_start = parse_name(bilevel::kWarmStartNames, warm, "--warm-start");
    }
    s.method = problems::make_method(mc, inst);
    s.method->set_strict(a.strict);
    s.warm_start = bilevel::warm_start_name(mc.warm_start);
  }
  s.method_config = mc;

  // The outer loop.
  bilevel::OuterOptions o = problems::outer_options(inst, episodic);
  s.validation_name = episodic ? inst.episodic->validation_name : inst.validation_name;
  if (!episodic) o.warm_start = mc.warm_start;
  if (a.outer_steps) o.outer_steps = *a.outer_steps;
  if (a.step_size) o.step_size = bilevel::StepSizeSchedule::constant(*a.step_size);
  if (!a.update.empty()) o.update = parse_name(bilevel::kOuterUpdateNames, a.update, "--update");
  if (a.validation_every) o.validation_every = *a.validation_every;
  o.budget_samples = a.budget_samples.value_or(0);
  o.budget_seconds = a.budget_seconds.value_or(0.0);
  if ((o.budget_samples > 0 || o.budget_seconds > 0) && !a.outer_steps)
    o.outer_steps = std::numeric_limits<std::int64_t>::max();  // the budget ends the run
  if (a.stationarity_every > 0) {
    o.reference_gradient = problems::reference_gradient(inst);
    o.stationarity_every = a.stationarity_every;
  }
  const int t = mc.inner_steps.value_or(def.inner_steps), K = mc.linear_steps.value_or(def.linear_steps);
  if (!a.t_growth.empty()) o.inner_steps = parse_growth(a.t_growth, t, "--t-growth");
  if (!a.k_growth.empty()) o.linear_steps = parse_growth(a.k_growth, K, "--K-growth");
  if (!a.j_growth.empty()) o.cross_batches = parse_growth(a.j_growth, mc.cross_batches.value_or(1), "--J-growth");
  o.csv_path = a.csv;
  o.state_path = a.writes_state ? a.state : std::string();
  o.save_every = o.state_path.empty() ? 0 : a.save_every;
  o.resume = a.resume && !o.state_path.empty();  // run_once loads the state itself, on every rank
  o.run_identity = run_identity(a, problem_config(a.problem), mc);
  if (a.resume && a.state.empty()) throw ValueError("--resume needs --save-state FILE (the state to continue from)");
  s.options = o;
  s.optimizer = episodic ? std::make_unique<bilevel::OuterOptimizer>(*s.episodic, inst.lambda0, o, inst.projections)
                         : std::make_unique<bilevel::OuterOptimizer>(inst.problem, *s.method, inst.lambda0, o,
                                                                     inst.projections);
  return s;
}

}  // namespace hyperad::cli
