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

bool is_itd(const std::string& name) { return name.rfind("itd", 0) == 0; }

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

std::string method_unavailable_reason(const std::string& name, const Instance& instance) {
  const auto& ms = method_names();
  if (std::none_of(ms.begin(), ms.end(), [&](const MethodInfo& m) { return m.name == name; }))
    throw ValueError(fmt::format("unknown method '{}'; the methods are: {}", name, all_names()));
  if (name == "sid" && !instance.stochastic)
    return fmt::format("method 'sid' needs a stochastic (minibatch) version of the problem, and '{}' has none; "
                       "use a deterministic method such as aid-gmres or itd",
                       instance.name);
  if (name == "aid-cg" && !instance.problem.symmetric_jacobian())
    return fmt::format("method 'aid-cg' needs a symmetric inner Jacobian (a gradient-descent inner map), and '{}' "
                       "has a non-symmetric one; use aid-gmres or aid-normal-cg",
                       instance.name);
  if (name == "aid-lu") {
    const std::int64_t n = list::numel(instance.problem.initial_state());
    if (n > kMaxDenseUnknowns)
      return fmt::format("method 'aid-lu' assembles the dense {0}×{0} system of '{1}', above its limit of {2} "
                         "unknowns; use aid-gmres or aid-cg",
                         n, instance.name, kMaxDenseUnknowns);
  }
  return {};
}

std::unique_ptr<bilevel::HypergradientMethod> make_method(const MethodConfig& config, const Instance& instance) {
  const std::string name = config.name.empty() ? instance.defaults.method : config.name;
  if (const std::string why = method_unavailable_reason(name, instance); !why.empty()) throw ValueError(why);

  const int t = config.inner_steps.value_or(instance.defaults.inner_steps);
  const int K = config.linear_steps.value_or(instance.defaults.linear_steps);
  require(t >= 1, name, fmt::format("the inner steps t must be >= 1, got {}", t));
  require(K >= 0, name, fmt::format("the linear steps K must be >= 0, got {}", K));
  const bool sid = name == "sid";
  if (!sid) {
    require(config.batch_size.value_or(0) <= 0, name,
            fmt::format("a batch size ({}) applies to sid only; deterministic methods use the full data",
                        config.batch_size.value_or(0)));
    require(config.cross_batches.value_or(1) <= 1, name,
            fmt::format("cross batches J ({}) apply to sid only", config.cross_batches.value_or(1)));
  }
  if (name != "itd-truncated" && name != "itd-checkpointed")
    require(!config.reverse_steps, name, "reverse steps T apply to itd-truncated and itd-checkpointed only");
  if (name != "itd-checkpointed") require(!config.checkpoint, name, "a checkpoint policy applies to itd-checkpointed only");

  std::unique_ptr<bilevel::HypergradientMethod> method;
  if (is_itd(name)) {
    require(!bilevel::warms_linear(config.warm_start), name,
            fmt::format("ITD has no linear system to warm-start (warm start '{}'); use 'inner'",
                        bilevel::warm_start_name(config.warm_start)));
    bilevel::ITDOptions o{.inner_steps = t, .warm_start = config.warm_start};
    if (name != "itd") {
      const int T = config.reverse_steps.value_or(name == "itd-truncated" ? (t + 3) / 4 : t);
      require(T >= 1, name, fmt::format("the reverse steps T must be >= 1, got {}", T));
      o.reverse_steps = std::min(T, t);
      if (name == "itd-checkpointed") {
        const auto snapshots = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(*o.reverse_steps))));
        o.checkpoint = config.checkpoint.value_or(CheckpointPolicy::binomial(std::max<std::int64_t>(1, snapshots)));
      }
    }
    method = std::make_unique<bilevel::ITD>(o);
  } else if (!sid) {
    config.linear_tolerance.validate(fmt::format("method '{}'", name));
    method = std::make_unique<bilevel::AID>(bilevel::AIDOptions{.inner_steps = t,
                                                                .solver = aid_solver(name),
                                                                .linear_steps = K,
                                                                .linear_tolerance = config.linear_tolerance,
                                                                .warm_start = config.warm_start});
  } else {
    const std::int64_t batch = config.batch_size.value_or(instance.defaults.batch_size);
    const int J = config.cross_batches.value_or(1);
    require(J >= 1, name, fmt::format("the cross batches J must be >= 1, got {}", J));
    require(config.step_decay >= 0, name, fmt::format("the step decay must be >= 0, got {}", config.step_decay));
    auto step = [&](double eta) {
      return config.step_decay > 0 ? bilevel::StepSizeSchedule::inverse(eta, config.step_decay)
                                   : bilevel::StepSizeSchedule::constant(eta);
    };
    const std::int64_t n = instance.stochastic->n_inner();
    require(batch <= n, name,
            fmt::format("the batch size {} exceeds the {} inner examples of '{}'", batch, n, instance.name));
    // SID validates the rest (step sizes in (0, 1], ...) with its own messages.
    return std::make_unique<bilevel::SID>(*instance.stochastic,
                                          bilevel::SIDOptions{.inner_steps = t,
                                                              .linear_steps = K,
                                                              .cross_batches = J,
                                                              .inner_batch = batch,
                                                              .linear_batch = batch,
                                                              .cross_batch = batch,
                                                              .inner_step = step(config.inner_step_size),
                                                              .linear_step = step(config.linear_step_size),
                                                              .seed = config.seed,
                                                              .warm_start = config.warm_start});
  }
  if (instance.stochastic)
    return std::make_unique<bilevel::FullBatchCounted>(std::shared_ptr<bilevel::HypergradientMethod>(std::move(method)),
                                                       instance.stochastic->n_inner(), instance.stochastic->n_outer());
  return method;
}

}  // namespace hyperad::problems
