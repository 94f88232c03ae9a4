// Hypergradient methods by name (methods.hpp): the names users type, what each one
// refuses, and the mapping of one flat MethodConfig onto ITD/AID/SID options.
#include "hyperad/problems/methods.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "hyperad/bilevel/stochastic.hpp"

namespace hyperad::problems {

namespace {

std::string all_names() {
  std::string s;
  for (const MethodInfo& m : method_names()) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The AID method name of a built-in solver: "aid-" and its name in lower case.
std::string aid_name(const linsolve::SolverInfo& s) { return "aid-" + lower(s.name); }

// The built-in solver behind an "aid-*" name (checked to be one by method_unavailable_reason).
linsolve::Solver aid_solver(const std::string& name) { return linsolve::solver_named(name.substr(4)); }

// linsolve::dense_lu's default limit, which aid-lu uses.
constexpr std::int64_t kMaxDenseUnknowns = 4000;

void require(bool ok, const std::string& method, const std::string& what) {
  if (!ok) throw ValueError(fmt::format("method '{}': {}", method, what));
}

}  // namespace

bool is_itd(const std::string& name) { return name.rfind("itd", 0) == 0; }

const std::vector<MethodInfo>& method_names() {
  static const std::vector<MethodInfo> methods = [] {
    std::vector<MethodInfo> m = {
        {"itd", "iterative differentiation: reverse through all t inner steps (memory grows with t)"},
        {"itd-truncated", "ITD through the last T steps only (--reverse-steps; cheaper, biased)"},
        {"itd-checkpointed", "ITD with binomial checkpointing: memory of ~sqrt(T) states, some recomputation"},
    };
    for (const linsolve::SolverInfo& s : linsolve::solver_table())
      m.push_back({aid_name(s), fmt::format("implicit differentiation, linear system by {}: {}", s.name, s.description)});
    m.push_back({"sid", "stochastic implicit differentiation on minibatches (--batch-size, --cross-batches)"});
    return m;
  }();
  return methods;
}

namespace {

// Why `name` cannot run on `problem` (empty: it can). `unknowns`: the linear system's size.
std::string unavailable(const std::string& name, const bilevel::Problem& problem, bool has_stochastic,
                        std::int64_t unknowns, const std::string& who) {
  const auto& ms = method_names();
  if (std::none_of(ms.begin(), ms.end(), [&](const MethodInfo& m) { return m.name == name; }))
    throw ValueError(fmt::format("unknown method '{}'; the methods are: {}", name, all_names()));
  if (name == "sid" && !has_stochastic)
    return fmt::format("method 'sid' needs a stochastic (minibatch) version of the problem, and {} has none; "
                       "use a deterministic method such as aid-gmres or itd",
                       who);
  if (name == "aid-cg" && !problem.symmetric_jacobian())
    return fmt::format("method 'aid-cg' needs a symmetric inner Jacobian (a gradient-descent inner map), and {} "
                       "has a non-symmetric one; use aid-gmres or aid-normal-cg",
                       who);
  if (name == "aid-lu" && unknowns > kMaxDenseUnknowns)
    return fmt::format("method 'aid-lu' assembles the dense {0}×{0} system of {1}, above its limit of {2} "
                       "unknowns; use aid-gmres or aid-cg",
                       unknowns, who, kMaxDenseUnknowns);
  return {};
}

// The counts and settings every method shares, checked.
struct Resolved {
  std::string name;
  int t = 0, K = 0;
};
Resolved resolve(const MethodConfig& config, const std::string& name, const Defaults& def) {
  Resolved r{name, config.inner_steps.value_or(def.inner_steps), config.linear_steps.value_or(def.linear_steps)};
  require(r.t >= 1, name, fmt::format("the inner steps t must be >= 1, got {}", r.t));
  require(r.K >= 0, name, fmt::format("the linear steps K must be >= 0, got {}", r.K));
  if (name != "sid") {
    require(config.batch_size.value_or(0) <= 0, name,
            fmt::format("a batch size ({}) applies to sid only; deterministic methods use the full data",
                        config.batch_size.value_or(0)));
    require(config.cross_batches.value_or(1) <= 1, name,
            fmt::format("cross batches J ({}) apply to sid only", config.cross_batches.value_or(1)));
    require(config.inner_momentum == 0.0, name, "an inner momentum applies to sid only");
    require(config.inner_step_size == 1.0 && config.linear_step_size == 1.0 && config.step_decay == 0.0, name,
            "the step sizes η₀ and the step decay γ apply to sid only");
  }
  if (name != "itd-truncated" && name != "itd-checkpointed")
    require(!config.reverse_steps, name, "reverse steps T apply to itd-truncated and itd-checkpointed only");
  if (name != "itd-checkpointed") require(!config.checkpoint, name, "a checkpoint policy applies to itd-checkpointed only");
  return r;
}

// ITD or AID as configured.
std::unique_ptr<bilevel::HypergradientMethod> deterministic(const MethodConfig& config, const Resolved& r) {
  const std::string& name = r.name;
  if (is_itd(name)) {
    require(!bilevel::warms_linear(config.warm_start), name,
            fmt::format("ITD has no linear system to warm-start (warm start '{}'); use 'inner'",
                        bilevel::warm_start_name(config.warm_start)));
    bilevel::ITDOptions o{.inner_steps = r.t, .warm_start = config.warm_start};
    if (name != "itd") {
      const int T = config.reverse_steps.value_or(name == "itd-truncated" ? (r.t + 3) / 4 : r.t);
      require(T >= 1, name, fmt::format("the reverse steps T must be >= 1, got {}", T));
      o.reverse_steps = std::min(T, r.t);
      if (name == "itd-checkpointed") {
        const auto snapshots = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(*o.reverse_steps))));
        o.checkpoint = config.checkpoint.value_or(CheckpointPolicy::binomial(std::max<std::int64_t>(1, snapshots)));
      }
    }
    return std::make_unique<bilevel::ITD>(o);
  }
  config.linear_tolerance.validate(fmt::format("method '{}'", name));
  return std::make_unique<bilevel::AID>(bilevel::AIDOptions{.inner_steps = r.t,
                                                            .solver = aid_solver(name),
                                                            .linear_steps = r.K,
                                                            .linear_tolerance = config.linear_tolerance,
                                                            .warm_start = config.warm_start});
}

// SID's options; its batches (0: full) within `n` inner examples.
bilevel::SIDOptions sid_options(const MethodConfig& config, const Resolved& r, std::int64_t batch, std::int64_t n,
                                const std::string& of) {
  const std::string& name = r.name;
  const int J = config.cross_batches.value_or(1);
  require(J >= 1, name, fmt::format("the cross batches J must be >= 1, got {}", J));
  require(config.step_decay >= 0, name, fmt::format("the step decay must be >= 0, got {}", config.step_decay));
  require(batch >= 0, name, fmt::format("the batch size must be >= 0, got {}", batch));
  require(batch <= n, name, fmt::format("the batch size {} exceeds the {} inner examples of {}", batch, n, of));
  auto step = [&](double eta) {
    return config.step_decay > 0 ? bilevel::StepSizeSchedule::inverse(eta, config.step_decay)
                                 : bilevel::StepSizeSchedule::constant(eta);
  };
  // SID validates the rest (step sizes in (0, 1], momentum in [0, 1), ...) with its own messages.
  return {.inner_steps = r.t,
          .linear_steps = r.K,
          .cross_batches = J,
          .inner_batch = batch,
          .linear_batch = batch,
          .cross_batch = batch,
          .inner_step = step(config.inner_step_size),
          .linear_step = step(config.linear_step_size),
          .inner_momentum = config.inner_momentum,
          .seed = config.seed,
          .warm_start = config.warm_start};
}

}  // namespace

std::string method_unavailable_reason(const std::string& name, const Instance& instance, bool episodic,
                                      std::int64_t meta_batch) {
  if (!episodic)
    return unavailable(name, instance.problem, instance.stochastic.has_value(),
                       list::numel(instance.problem.initial_state()), fmt::format("'{}'", instance.name));
  if (!instance.episodic) throw ValueError(fmt::format("problem '{}' has no episodic version", instance.name));
  const bilevel::Episode probe = instance.episodic->problem.episode({0});
  return unavailable(name, probe.problem, probe.stochastic.has_value(),
                     list::numel(probe.problem.initial_state()) * std::max<std::int64_t>(1, meta_batch),
                     fmt::format("the episodes of '{}'", instance.name));
}

std::unique_ptr<bilevel::HypergradientMethod> make_method(const MethodConfig& config, const Instance& instance) {
  const std::string name = config.name.empty() ? instance.defaults.method : config.name;
  if (const std::string why = method_unavailable_reason(name, instance); !why.empty()) throw ValueError(why);
  const Resolved r = resolve(config, name, instance.defaults);
  if (name == "sid") {
    const std::int64_t batch = config.batch_size.value_or(instance.defaults.batch_size);
    return std::make_unique<bilevel::SID>(
        *instance.stochastic,
        sid_options(config, r, batch, instance.stochastic->n_inner(), fmt::format("'{}'", instance.name)));
  }
  std::unique_ptr<bilevel::HypergradientMethod> method = deterministic(config, r);
  const std::int64_t n_inner = instance.stochastic ? instance.stochastic->n_inner() : instance.inner_examples;
  const std::int64_t n_outer = instance.stochastic ? instance.stochastic->n_outer() : instance.outer_examples;
  if (n_inner > 0 && n_outer > 0)
    return std::make_unique<bilevel::FullBatchCounted>(std::shared_ptr<bilevel::HypergradientMethod>(std::move(method)),
                                                       n_inner, n_outer);
  return method;
}

std::unique_ptr<bilevel::EpisodicHypergradient> make_episodic(const MethodConfig& config, const Instance& instance,
                                                              const bilevel::EpisodicOptions& options) {
  if (!instance.episodic)
    throw ValueError(fmt::format("problem '{}' has no episodic version (a meta-batch of tasks or examples per step)",
                                 instance.name));
  const EpisodicVersion& ev = *instance.episodic;
  const std::string name = config.name.empty() ? ev.defaults.method : config.name;
  const std::int64_t batched = options.execution == bilevel::Execution::batched ? options.meta_batch : 1;
  if (const std::string why = method_unavailable_reason(name, instance, true, batched); !why.empty())
    throw ValueError(why);
  require(config.warm_start == bilevel::WarmStart::none, name,
          fmt::format("warm start '{}' is for a fixed problem; an episodic run warm-starts each {} from none, naive "
                      "or full",
                      bilevel::warm_start_name(config.warm_start), ev.problem.unit()));
  const Resolved r = resolve(config, name, ev.defaults);
  bilevel::EpisodeMethodFactory factory;
  if (name == "sid") {
    const bilevel::Episode probe = ev.problem.episode({0});
    const std::int64_t batch = config.batch_size.value_or(ev.defaults.batch_size);
    factory = bilevel::sid_per_episode(
        sid_options(config, r, batch, probe.inner_examples, fmt::format("a {} of '{}'", ev.problem.unit(), instance.name)));
  } else {
    (void)deterministic(config, r);  // refuses bad settings now, not at the first step
    factory = [config, r](const bilevel::Episode&, std::uint64_t) { return deterministic(config, r); };
  }
  return std::make_unique<bilevel::EpisodicHypergradient>(ev.problem, std::move(factory), options);
}

}  // namespace hyperad::problems
