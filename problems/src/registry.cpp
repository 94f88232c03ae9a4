// The problem registry: the families' entries gathered once, lookup by name with the valid
// names in the error, and the parsing of problem-specific option values.
#include "hyperad/problems/registry.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "families.hpp"
#include "hyperad/autodiff/errors.hpp"

namespace hyperad::problems {

namespace {

std::vector<ProblemInfo> gather() {
  return {detail::logreg_problem(), detail::ridge_problem(),  detail::multinomial_problem(),
          detail::kernel_ridge_problem(), detail::text_hpo_problem(), meta::biased_info(), meta::hyperrep_info(),
          detail::poisoning_info(), detail::equilibrium_classifier()};
}

std::vector<std::string> names_of(const std::vector<ProblemInfo>& ps) {
  std::vector<std::string> names;
  for (const ProblemInfo& p : ps) names.push_back(p.name);
  return names;
}

const std::string* find_value(const ProblemConfig& config, const std::string& key) {
  auto it = config.options.find(key);
  return it == config.options.end() ? nullptr : &it->second;
}

}  // namespace

const std::vector<ProblemInfo>& all_problems() {
  static const std::vector<ProblemInfo> problems = gather();
  return problems;
}

const ProblemInfo& find_problem(const std::string& name) {
  const auto& ps = all_problems();
  auto it = std::find_if(ps.begin(), ps.end(), [&](const ProblemInfo& p) { return p.name == name; });
  if (it == ps.end()) {
    throw ValueError(fmt::format("unknown problem '{}'; the problems are: {}", name, fmt::join(names_of(ps), ", ")));
  }
  return *it;
}

Instance make_problem(const std::string& name, const ProblemConfig& config) {
  const ProblemInfo& info = find_problem(name);
  if (!config.dataset.empty() &&
      std::find(info.datasets.begin(), info.datasets.end(), config.dataset) == info.datasets.end()) {
    throw ValueError(fmt::format("problem '{}': unknown dataset '{}'; it accepts: {}", name, config.dataset,
                                 fmt::join(info.datasets, ", ")));
  }
  for (const auto& [key, value] : config.options) {
    const bool known = std::any_of(info.options.begin(), info.options.end(),
                                   [&](const OptionInfo& o) { return o.key == key; });
    if (!known) {
      std::vector<std::string> keys;
      for (const OptionInfo& o : info.options) keys.push_back(o.key);
      throw ValueError(fmt::format("problem '{}': unknown option '{}'; it accepts: {}", name, key,
                                   keys.empty() ? std::string("none") : fmt::format("{}", fmt::join(keys, ", "))));
    }
  }
  if (config.shards && !info.data_parallel) {
    std::vector<std::string> able;
    for (const ProblemInfo& p : all_problems())
      if (p.data_parallel) able.push_back(p.name);
    throw ValueError(fmt::format("problem '{}' cannot spread its examples over processes ({}); the problems that can: {}",
                                 name, config.shards->describe(), fmt::join(able, ", ")));
  }
  Instance inst = info.make(config);
  inst.name = info.name;
  if (inst.dataset.empty()) inst.dataset = config.dataset.empty() ? info.datasets.front() : config.dataset;
  // A Fashion-MNIST directory for an instance that reads none would be ignored without a word.
  if (!config.data_dir.empty() && inst.dataset != "fashion_mnist")
    throw ValueError(fmt::format("problem '{}': a Fashion-MNIST directory ('{}') was given, but this instance uses "
                                 "the dataset '{}' (ask for --dataset fashion_mnist, or drop the directory)",
                                 name, config.data_dir, inst.dataset));
  return inst;
}

bilevel::OuterOptions outer_options(const Instance& inst, bool episodic) {
  if (episodic && !inst.episodic)
    throw ValueError(fmt::format("problem '{}' has no episodic version (a meta-batch of tasks or examples per step)",
                                 inst.name));
  const Defaults& d = episodic ? inst.episodic->defaults : inst.defaults;
  bilevel::OuterOptions o;
  o.outer_steps = d.outer_steps;
  o.step_size = bilevel::StepSizeSchedule::constant(d.outer_step_size);
  o.update = d.update;
  o.maximize = inst.maximize;
  o.validation = episodic ? inst.episodic->validation : inst.validation;
  o.validation_every = episodic ? inst.episodic->validation_every : 1;
  return o;
}

std::int64_t option_int(const ProblemConfig& config, const std::string& problem, const std::string& key,
                        std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  const std::string* text = find_value(config, key);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno == ERANGE) {
    throw ValueError(fmt::format("problem '{}': option {}='{}' is not a whole number", problem, key, *text));
  }
  if (v < lo || v > hi) {
    throw ValueError(fmt::format("problem '{}': option {}={} is outside [{}, {}]", problem, key, v, lo, hi));
  }
  return v;
}

double option_double(const ProblemConfig& config, const std::string& problem, const std::string& key,
                     double fallback, double lo, double hi) {
  const std::string* text = find_value(config, key);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  if (text->empty() || *end != '\0' || errno == ERANGE || !(v == v)) {
    throw ValueError(fmt::format("problem '{}': option {}='{}' is not a number", problem, key, *text));
  }
  if (v < lo || v > hi) {
    throw ValueError(fmt::format("problem '{}': option {}={} is outside [{}, {}]", problem, key, v, lo, hi));
  }
  return v;
}

bool option_bool(const ProblemConfig& config, const std::string& problem, const std::string& key, bool fallback) {
  const std::string* text = find_value(config, key);
  if (!text) return fallback;
  if (*text == "true" || *text == "1" || *text == "yes") return true;
  if (*text == "false" || *text == "0" || *text == "no") return false;
  throw ValueError(
      fmt::format("problem '{}': option {}='{}' is not a boolean (true/false, 1/0, yes/no)", problem, key, *text));
}

std::string option_string(const ProblemConfig& config, const std::string& key, const std::string& fallback) {
  const std::string* text = find_value(config, key);
  return text ? *text : fallback;
}

}  // namespace hyperad::problems
