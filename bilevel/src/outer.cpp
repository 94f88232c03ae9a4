#include "hyperad/bilevel/outer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/runtime.hpp"

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/grad.hpp"
#include "hyperad/autodiff/linsolve.hpp"
#include "hyperad/autodiff/ops/elementwise.hpp"
#include "hyperad/autodiff/ops/reduce.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/files.hpp"

namespace hyperad::bilevel {

namespace {

void require_unit_interval(double v, const char* what) {
  if (!(v >= 0.0 && v < 1.0)) throw ValueError(fmt::format("OuterOptimizer: {} must be in [0, 1), got {}", what, v));
}

// CSV fields must not contain separators: warnings are free text.
std::string csv_safe(std::string s) {
  for (char& c : s)
    if (c == ',' || c == '\n' || c == '\r') c = ';';
  return s;
}

}  // namespace

OuterOptimizer::OuterOptimizer(Problem problem, HypergradientMethod& method, TensorList lambda0, OuterOptions options,
                               std::vector<Projection> projections)
    : problem_(std::move(problem)), method_(&method), options_(std::move(options)), projections_(std::move(projections)) {
  init(std::move(lambda0));
  method_->set_warm_start(options_.warm_start);
}

OuterOptimizer::OuterOptimizer(EpisodicHypergradient& episodic, TensorList lambda0, OuterOptions options,
                               std::vector<Projection> projections)
    : episodic_(&episodic), options_(std::move(options)), projections_(std::move(projections)) {
  if (options_.warm_start != WarmStart::none)
    throw ValueError(fmt::format("OuterOptimizer: warm start '{}' is for a fixed problem; an episodic problem warm-starts "
                                 "each unit as its EpisodicOptions::warm_start says (none, naive, full)",
                                 warm_start_name(options_.warm_start)));
  init(std::move(lambda0));
}

void OuterOptimizer::init(TensorList lambda0) {
  const OuterOptions& o = options_;
  if (lambda0.empty()) throw ValueError("OuterOptimizer: λ0 is empty (the outer variable needs at least one tensor)");
  for (std::size_t k = 0; k < lambda0.size(); ++k)
    if (!lambda0[k].defined()) throw ValueError(fmt::format("OuterOptimizer: tensor {} of λ0 is undefined", k));
  if (!projections_.empty() && projections_.size() != lambda0.size())
    throw ValueError(fmt::format("OuterOptimizer: {} projections for {} tensors of λ (give none, or one per tensor)",
                                 projections_.size(), lambda0.size()));
  if (o.outer_steps < 0)
    throw ValueError(fmt::format("OuterOptimizer: outer_steps must be >= 0, got {}", o.outer_steps));
  if (o.save_every < 0) throw ValueError(fmt::format("OuterOptimizer: save_every must be >= 0, got {}", o.save_every));
  if (o.resume && o.state_path.empty()) throw ValueError("OuterOptimizer: resume needs a state_path");
  if (o.validation_every < 1)
    throw ValueError(fmt::format("OuterOptimizer: validation_every must be >= 1, got {}", o.validation_every));
  if (o.budget_samples < 0)
    throw ValueError(fmt::format("OuterOptimizer: budget_samples must be >= 0 (0: none), got {}", o.budget_samples));
  if (!(o.budget_seconds >= 0.0 && std::isfinite(o.budget_seconds)))
    throw ValueError(fmt::format("OuterOptimizer: budget_seconds must be finite and >= 0 (0: none), got {}",
                                 o.budget_seconds));
  if (o.stationarity_every < 0)
    throw ValueError(fmt::format("OuterOptimizer: stationarity_every must be >= 0 (0: never), got {}",
                                 o.stationarity_every));
  if (o.stationarity_every > 0 && !o.reference_gradient)
    throw ValueError("OuterOptimizer: stationarity_every needs a reference_gradient (∇f from a converged method)");
  if (!(o.stationarity_step >= 0.0 && std::isfinite(o.stationarity_step)))
    throw ValueError(fmt::format("OuterOptimizer: stationarity_step must be finite and >= 0 (0: α_s), got {}",
                                 o.stationarity_step));
  o.step_size.validate("OuterOptimizer: step_size");
  if (o.inner_steps) o.inner_steps->validate("OuterOptimizer: inner_steps (t)");
  if (o.linear_steps) o.linear_steps->validate("OuterOptimizer: linear_steps (K)");
  if (o.cross_batches) o.cross_batches->validate("OuterOptimizer: cross_batches (J)");
  require_unit_interval(o.momentum, "momentum");
  require_unit_interval(o.beta1, "beta1");
  require_unit_interval(o.beta2, "beta2");
  if (!(o.adam_epsilon > 0.0)) throw ValueError(fmt::format("OuterOptimizer: adam_epsilon must be > 0, got {}", o.adam_epsilon));

  for (std::size_t k = 0; k < lambda0.size(); ++k)
    lambda_.push_back(projections_.empty() ? lambda0[k].detach().clone() : projections_[k](lambda0[k]));
  if (o.update != OuterUpdate::gradient) m1_ = list::zeros_like(lambda_);
  if (o.update == OuterUpdate::adam) m2_ = list::zeros_like(lambda_);
}

std::string OuterOptimizer::method_name() const { return episodic_ ? episodic_->name() : method_->name(); }

WarmState OuterOptimizer::warm_state() const { return episodic_ ? episodic_->warm_state() : method_->warm_state(); }

std::vector<std::uint64_t> OuterOptimizer::random_state() const {
  return episodic_ ? episodic_->export_random_state() : method_->export_random_state();
}

bool OuterOptimizer::budget_spent() const {
  const OuterOptions& o = options_;
  return (o.budget_samples > 0 && samples_ >= o.budget_samples) || (o.budget_seconds > 0 && seconds_ >= o.budget_seconds);
}

double gradient_mapping_norm(const TensorList& lambda, const TensorList& gradient, double alpha,
                             const std::vector<Projection>& projections, bool maximize) {
  if (!(alpha > 0.0 && std::isfinite(alpha)))
    throw ValueError(fmt::format("gradient_mapping_norm: the step α must be finite and > 0, got {}", alpha));
  if (!projections.empty() && projections.size() != lambda.size())
    throw ValueError(fmt::format("gradient_mapping_norm: {} projections for {} tensors of λ", projections.size(),
                                 lambda.size()));
  list::require_like(gradient, lambda, "gradient_mapping_norm: the gradient");
  TapeScope scope;
  NoGradGuard off;
  double sq = 0;
  for (std::size_t k = 0; k < lambda.size(); ++k) {
    const Tensor l = lambda[k].detach();
    Tensor g = gradient[k].detach();
    if (g.dtype() != l.dtype()) g = g.to(l.dtype());
    const Tensor next = l - (maximize ? -alpha : alpha) * g;
    const Tensor moved = l - (projections.empty() ? next : projections[k](next));
    sq += squared_norm(moved).item();
  }
  return std::sqrt(sq) / alpha;
}

double OuterOptimizer::stationarity_at(double alpha) const {
  if (!options_.reference_gradient) throw ValueError("OuterOptimizer: the stationarity measure needs a reference_gradient");
  const TensorList g = options_.reference_gradient(lambda_);
  return gradient_mapping_norm(lambda_, g, alpha, projections_, options_.maximize);
}

double OuterOptimizer::stationarity() const {
  const double a = options_.stationarity_step > 0 ? options_.stationarity_step : options_.step_size.at(step_);
  return stationarity_at(a);
}

const OuterRecord& OuterOptimizer::step() {
  const runtime::ThreadPlan plan;  // one thread count for the whole step (its hypergradient joins it)
  const OuterOptions& o = options_;
  const std::int64_t s = step_;
  prepare_csv();

  OuterRecord r;
  r.step = s;
  r.step_size = o.step_size.at(s);
  // Measured before the step's clock starts: its cost is not the method's.
  if (o.stationarity_every > 0 && s % o.stationarity_every == 0) r.stationarity = stationarity();
  const auto t0 = std::chrono::steady_clock::now();
  IterationCounts counts;
  if (o.inner_steps) counts.inner_steps = r.t = o.inner_steps->at(s);
  if (o.linear_steps) counts.linear_steps = r.K = o.linear_steps->at(s);
  if (o.cross_batches) counts.cross_batches = r.J = o.cross_batches->at(s);
  if (counts.any()) (episodic_ ? episodic_->set_iterations(counts) : method_->set_iterations(counts));

  Hypergradient h = episodic_ ? episodic_->hypergradient(lambda_) : method_->hypergradient(*problem_, lambda_);
  const std::string name = method_name();
  if (h.grad.size() != lambda_.size())
    throw ShapeError(fmt::format("OuterOptimizer: step {}: {} returned {} gradient tensors for {} tensors of λ", s,
                                 name, h.grad.size(), lambda_.size()));
  for (std::size_t k = 0; k < lambda_.size(); ++k)
    if (!h.grad[k].defined() || h.grad[k].shape() != lambda_[k].shape())
      throw ShapeError(fmt::format("OuterOptimizer: step {}: {} returned shape {} for λ tensor {} of shape {}", s,
                                   name, h.grad[k].defined() ? h.grad[k].shape().str() : "undefined", k,
                                   lambda_[k].shape().str()));
  if (!list::all_finite(h.grad))
    throw ConvergenceError(fmt::format("OuterOptimizer: step {}: the hypergradient from {} is not finite", s, name));

  const Diagnostics& d = h.diagnostics;
  r.objective = h.objective;
  r.grad_norm = list::norm(h.grad);
  r.inner_steps = d.inner_steps;
  r.linear_iterations = d.linear.iterations;
  r.samples = d.samples;
  if (o.budget_samples > 0 && r.samples <= 0)
    throw ValueError(fmt::format("OuterOptimizer: step {}: a budget of {} samples cannot end this run: {} reports no "
                                 "sample-gradients (wrap a fixed problem's method in FullBatchCounted, or use "
                                 "budget_seconds or outer_steps)",
                                 s, o.budget_samples, name));
  for (const std::string& w : d.warnings) r.warnings += (r.warnings.empty() ? "" : " | ") + w;

  TapeScope scope;
  NoGradGuard off;
  r.validation = std::numeric_limits<double>::quiet_NaN();
  if (o.validation && s % o.validation_every == 0) {
    const TensorList state = episodic_ ? TensorList{} : method_->warm_state().inner;
    r.validation = o.validation(state.empty() ? TensorList{} : problem_->weights(state), lambda_);
  }

  // λ ← P(λ − α u), u = d (gradient), the momentum buffer, or Adam's normalized moment.
  const double alpha = r.step_size, sign = o.maximize ? -1.0 : 1.0;
  for (std::size_t k = 0; k < lambda_.size(); ++k) {
    Tensor g = h.grad[k].detach();
    if (g.dtype() != lambda_[k].dtype()) g = g.to(lambda_[k].dtype());
    g = g * sign;
    Tensor u;
    switch (o.update) {
      case OuterUpdate::gradient: u = g; break;
      case OuterUpdate::momentum: u = m1_[k] = m1_[k] * o.momentum + g; break;
      case OuterUpdate::adam: {
        m1_[k] = m1_[k] * o.beta1 + g * (1.0 - o.beta1);
        m2_[k] = m2_[k] * o.beta2 + square(g) * (1.0 - o.beta2);
        const double c1 = 1.0 - std::pow(o.beta1, static_cast<double>(s + 1));
        const double c2 = 1.0 - std::pow(o.beta2, static_cast<double>(s + 1));
        u = (m1_[k] / c1) / (sqrt(m2_[k] / c2) + o.adam_epsilon);
        break;
      }
    }
    Tensor next = lambda_[k] - u * alpha;
    lambda_[k] = projections_.empty() ? next.detach() : projections_[k](next);
  }

  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++step_;
  samples_ += r.samples;
  seconds_ += r.seconds;
  r.total_samples = samples_;
  r.total_seconds = seconds_;
  append_csv(r);
  history_.push_back(std::move(r));
  if (!o.state_path.empty() && o.save_every > 0 && step_ % o.save_every == 0) save(o.state_path);
  return history_.back();
}

const std::vector<OuterRecord>& OuterOptimizer::run() {
  if (options_.resume && std::filesystem::exists(options_.state_path)) load(options_.state_path);
  while (step_ < options_.outer_steps && !budget_spent()) step();
  if (!options_.state_path.empty()) save(options_.state_path);
  return history_;
}

// ---- save / resume ------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> OuterOptimizer::config() const {
  const OuterOptions& o = options_;
  std::string update = outer_update_name(o.update);
  if (o.update == OuterUpdate::momentum) update += fmt::format("(beta={})", o.momentum);
  if (o.update == OuterUpdate::adam)
    update += fmt::format("(beta1={}, beta2={}, epsilon={})", o.beta1, o.beta2, o.adam_epsilon);
  std::string proj;
  for (const Projection& p : projections_) proj += (proj.empty() ? "" : "; ") + p.name();
  std::vector<std::pair<std::string, std::string>> c{{"method", episodic_ ? episodic_->method_name() : method_->name()},
                                                      {"update", update},
                                                      {"objective", o.maximize ? "maximize" : "minimize"},
                                                      {"warm start", warm_start_name(o.warm_start)},
                                                      {"projections", proj.empty() ? "none" : proj},
                                                      {"step size", o.step_size.describe()}};
  auto schedule = [](const std::optional<IterationSchedule>& x) { return x ? x->describe() : "the method's"; };
  c.emplace_back("inner steps (t)", schedule(o.inner_steps));
  c.emplace_back("linear steps (K)", schedule(o.linear_steps));
  c.emplace_back("cross batches (J)", schedule(o.cross_batches));
  if (episodic_) {
    const auto e = episodic_->config();
    c.insert(c.end(), e.begin(), e.end());
  }
  c.insert(c.end(), o.run_identity.begin(), o.run_identity.end());
  return c;
}

OuterState OuterOptimizer::state() const {
  OuterState st;
  st.config = config();
  st.step = step_;
  st.samples = samples_;
  st.seconds = seconds_;
  st.lambda = lambda_;
  st.optimizer1 = m1_;
  st.optimizer2 = m2_;
  const WarmState ws = warm_state();
  st.warm_inner = ws.inner;
  st.warm_linear = ws.linear;
  st.random = random_state();
  return st;
}

void OuterOptimizer::save(const std::string& path) const { write_state_file(path, state()); }

void OuterOptimizer::load(const std::string& path) {
  OuterState st = read_state_file(path);
  auto fail = [&](const std::string& what) { throw StateFileError(fmt::format("state file '{}': {}", path, what)); };
  const auto mine = config();
  for (const auto& [key, value] : mine) {
    auto it = std::find_if(st.config.begin(), st.config.end(), [&](const auto& kv) { return kv.first == key; });
    if (it == st.config.end()) fail(fmt::format("has no '{}' entry", key));
    if (it->second != value)
      fail(fmt::format("was written with {} = '{}', but this run has '{}'", key, it->second, value));
  }
  for (const auto& [key, value] : st.config)
    if (std::none_of(mine.begin(), mine.end(), [&](const auto& kv) { return kv.first == key; }))
      fail(fmt::format("was written with {} = '{}', which this run does not set", key, value));
  if (st.step > options_.outer_steps)
    fail(fmt::format("is at step {}, past this run's end (outer_steps = {}): ask for at least {} steps", st.step,
                     options_.outer_steps, st.step));
  check_state_tensors(path, "λ", st.lambda, lambda_);
  check_state_tensors(path, "optimizer state 1", st.optimizer1, m1_);
  check_state_tensors(path, "optimizer state 2", st.optimizer2, m2_);
  if (problem_) {  // an episodic driver checks its buffers itself (set_warm_state)
    check_state_tensors(path, "warm w", st.warm_inner, problem_->initial_state(), true);
    check_state_tensors(path, "warm v", st.warm_linear, problem_->initial_state(), true);
  }
  // A state written by a healthy run is finite (the optimizer refuses non-finite
  // hypergradients): anything else is damage, reported as such rather than downstream.
  const std::pair<const char*, const TensorList*> parts[] = {{"λ", &st.lambda},
                                                            {"optimizer state 1", &st.optimizer1},
                                                            {"optimizer state 2", &st.optimizer2},
                                                            {"warm w", &st.warm_inner},
                                                            {"warm v", &st.warm_linear}};
  for (const auto& [what, list] : parts)
    for (std::size_t k = 0; k < list->size(); ++k)
      if (!list::all_finite({(*list)[k]})) fail(fmt::format("{} tensor {} holds non-finite values", what, k));
  if (!std::isfinite(st.seconds) || st.seconds < 0) fail(fmt::format("has an invalid wall-time total {}", st.seconds));
  if (problem_) {  // the episodic driver's words vary with its buffers; it checks them itself
    const std::size_t words = random_state().size();
    if (st.random.size() != words)
      fail(fmt::format("holds {} words of random state, {} has {}", st.random.size(), method_->name(), words));
  }
  try {
    if (episodic_) {
      episodic_->restore({st.warm_inner, st.warm_linear}, st.random);
    } else {
      method_->set_warm_state({st.warm_inner, st.warm_linear});
      method_->import_random_state(st.random);
    }
  } catch (const Error& e) {
    fail(fmt::format("the method refused its saved state: {}", e.what()));
  }
  lambda_ = std::move(st.lambda);
  m1_ = std::move(st.optimizer1);
  m2_ = std::move(st.optimizer2);
  step_ = st.step;
  samples_ = st.samples;
  seconds_ = st.seconds;
  history_.clear();
  csv_ready_ = false;
}

// ---- CSV ----------------------------------------------------------------------------------------

void OuterOptimizer::prepare_csv() {
  if (csv_ready_ || options_.csv_path.empty()) return;
  csv_ready_ = true;
  const std::string& path = options_.csv_path;
  // Keep the complete rows of steps before the current one (a resumed run); drop the rest.
  // The log is replaced in one piece: a kill at any moment leaves the old log or the new.
  std::string text = std::string(kOuterCsvHeader) + '\n';
  if (step_ > 0) {
    const auto fields = std::count(kOuterCsvHeader, kOuterCsvHeader + std::strlen(kOuterCsvHeader), ',') + 1;
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line) && line == kOuterCsvHeader)
      while (std::getline(in, line)) {
        if (std::count(line.begin(), line.end(), ',') + 1 != fields) continue;  // a row cut by a kill
        std::int64_t row_step = -1;
        try {
          row_step = std::stoll(line.substr(0, line.find(',')));
        } catch (const std::exception&) {
          continue;
        }
        if (row_step >= 0 && row_step < step_) text += line + '\n';
      }
  }
  write_file_atomically(path, text, "OuterOptimizer: the CSV log");
}

void OuterOptimizer::append_csv(const OuterRecord& r) const {
  if (options_.csv_path.empty()) return;
  append_to_file(options_.csv_path,
                 fmt::format("{},{:.17g},{:.17g},{:.17g},{:.17g},{},{},{},{},{},{},{},{:.6f},{:.6f},{:.17g},{}\n",
                             r.step, r.objective, r.validation, r.grad_norm, r.step_size, r.inner_steps,
                             r.linear_iterations, r.t.value_or(-1), r.K.value_or(-1), r.J.value_or(-1), r.samples,
                             r.total_samples, r.seconds, r.total_seconds, r.stationarity, csv_safe(r.warnings)),
                 "OuterOptimizer: the CSV log");
}

}  // namespace hyperad::bilevel
