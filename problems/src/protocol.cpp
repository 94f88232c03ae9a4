// The comparisons' tools (protocol.hpp): a converged reference hypergradient, quartiles,
// the JMLR 2023 variants and their random search.
#include "hyperad/problems/protocol.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/aid.hpp"

namespace hyperad::problems {

bilevel::ReferenceGradient reference_gradient(const Instance& instance) {
  const bool symmetric = instance.problem.symmetric_jacobian();
  auto aid = std::make_shared<bilevel::AID>(bilevel::AIDOptions{
      .inner_steps = 200000,
      .inner_tolerance = {.rtol = 1e-11, .atol = 1e-11},
      .solver = symmetric ? linsolve::cg() : linsolve::gmres(),
      .linear_steps = 5000,
      .linear_tolerance = Tolerance::relative(1e-10),
      .warm_start = bilevel::WarmStart::inner_and_linear});
  aid->set_strict(true);
  const bilevel::Problem problem = instance.problem;
  return [aid, problem](const TensorList& lambda) { return aid->hypergradient(problem, lambda).grad; };
}

Quartiles quartiles(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }), values.end());
  Quartiles q;
  q.count = values.size();
  if (values.empty()) {
    q.q1 = q.median = q.q3 = std::nan("");
    return q;
  }
  std::sort(values.begin(), values.end());
  auto at = [&](double p) {
    const double x = p * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(x));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (x - static_cast<double>(lo)) * (values[hi] - values[lo]);
  };
  q.q1 = at(0.25), q.median = at(0.5), q.q3 = at(0.75);
  return q;
}

const std::vector<Variant>& variants() {
  using bilevel::WarmStart;
  static const std::vector<Variant> v = {
      {"no-warm", "SID without warm start, t = K = J (the JMLR 2023 method: O(ε⁻²) samples)",
       {.name = "sid", .warm_start = WarmStart::none}, true},
      {"decreasing", "SID without warm start, t = K = J, steps η₀γ/(γ + s) in the inner and linear iterations",
       {.name = "sid", .warm_start = WarmStart::none}, true, false, true},
      {"warm", "SID warm-starting both the inner solve and the linear system, t = K = J",
       {.name = "sid", .warm_start = WarmStart::inner_and_linear}, true},
      {"stocbio", "stocBiO-like: SID warm-starting the inner solve only, cold linear system, J = K",
       {.name = "sid", .warm_start = WarmStart::inner}, false, true},
      {"alset", "ALSET-like: one inner step and one cross batch (t = J = 1), both warm-started",
       {.name = "sid", .inner_steps = 1, .warm_start = WarmStart::inner_and_linear, .cross_batches = 1}},
      {"deterministic", "AID-FP on the full batch, warm-started, t = K",
       {.name = "aid-fp", .warm_start = WarmStart::inner_and_linear}, true},
  };
  return v;
}

const Variant& find_variant(const std::string& name) {
  for (const Variant& v : variants())
    if (v.name == name) return v;
  std::string names;
  for (const Variant& v : variants()) names += (names.empty() ? "" : ", ") + v.name;
  throw ValueError(fmt::format("unknown variant '{}'; the variants are: {}", name, names));
}

MethodConfig variant_method(const Variant& v, int t, int K, int J, double eta0, double gamma) {
  MethodConfig m = v.method;
  const bool sid = m.name == "sid";
  if (v.tie_counts) K = J = t;
  if (v.j_equals_k) J = K;
  if (v.method.inner_steps) t = *v.method.inner_steps;  // ALSET's t = 1
  if (v.method.cross_batches) J = *v.method.cross_batches;
  m.inner_steps = t;
  m.linear_steps = K;
  if (sid) {
    m.cross_batches = J;
    m.inner_step_size = m.linear_step_size = eta0;
    m.step_decay = v.decreasing ? gamma : 0.0;
  }
  return m;
}

std::string Trial::describe() const {
  std::string s = fmt::format("α {:.3g}, t {}, K {}", step_size, method.inner_steps.value_or(0),
                              method.linear_steps.value_or(0));
  if (method.name == "sid") {
    s += fmt::format(", J {}, η₀ {:.3g}", method.cross_batches.value_or(1), method.inner_step_size);
    if (method.step_decay > 0) s += fmt::format(", γ {:.3g}", method.step_decay);
  }
  return s;
}

std::vector<Trial> random_search(const Variant& v, const SearchSpace& space, int trials, std::uint64_t seed) {
  if (trials < 1) throw ValueError(fmt::format("random_search: trials must be >= 1, got {}", trials));
  if (!(space.step_size > 0) || space.max_count < 1)
    throw ValueError(fmt::format("random_search: the step size ({}) must be > 0 and the count cap ({}) >= 1",
                                 space.step_size, space.max_count));
  Generator gen(seed);
  auto log_uniform = [&](double lo, double hi) { return lo * std::pow(hi / lo, gen.uniform()); };
  auto count = [&]() {
    return std::clamp(static_cast<int>(std::floor(log_uniform(1.0, space.max_count + 1.0))), 1, space.max_count);
  };
  std::vector<Trial> out;
  for (int k = 0; k < trials; ++k) {
    // Every parameter is drawn for every trial (whether the variant uses it or not), so the
    // k-th trial of two variants shares its draws.
    const double alpha = log_uniform(space.step_size / 10, space.step_size * 10);
    const int t = count(), K = count(), J = count();
    const double eta0 = log_uniform(0.05, 1.0), gamma = log_uniform(1.0, 1000.0);
    out.push_back({variant_method(v, t, K, J, eta0, gamma), alpha});
  }
  return out;
}

}  // namespace hyperad::problems
