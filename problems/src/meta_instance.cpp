// The instance every meta problem builds from its MetaSpec (meta_tasks.hpp): the fixed
// problem on meta-train tasks 0 … T−1, the episodic version drawing tasks from the same
// stream, validation, and the meta-test evaluation with its 95 % interval.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"
#include "hyperad/autodiff/tape.hpp"
#include "hyperad/bilevel/sampling.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::meta {

namespace {

// Every task's classes lie in `allowed` (the side it was drawn for), and meta-test tasks on
// held-out classes share none with the meta-train side: asserted, as the protocol's premise.
void require_classes(const TaskSet& tasks, const std::vector<std::int64_t>& allowed,
                     const std::vector<std::int64_t>& forbidden, const std::string& problem, const char* side) {
  for (std::size_t t = 0; t < tasks.classes.size(); ++t)
    for (std::int64_t c : tasks.classes[t]) {
      if (std::find(allowed.begin(), allowed.end(), c) == allowed.end() ||
          std::find(forbidden.begin(), forbidden.end(), c) != forbidden.end())
        throw Error(fmt::format("problem '{}': {} task {} has class {}, outside its side's classes (internal error)",
                                problem, side, t, c));
    }
}

}  // namespace

Instance make_meta_instance(const ProblemConfig& config, std::shared_ptr<const MetaPools> pools, MetaSpec spec) {
  const MetaOptions o = spec.options;
  const std::uint64_t train_seed = task_stream(config.seed, TaskStream::train);
  auto draw = [pools, o](std::int64_t count, std::uint64_t seed, bool test) {
    return sample_tasks_by_id(test ? pools->test : pools->train, test ? pools->test_classes : pools->train_classes,
                              bilevel::full_batch(count), seed, o.ways, o.shots, o.queries);
  };
  const std::vector<std::int64_t> none;
  const std::vector<std::int64_t>& held_out = o.test_on_classes ? pools->train_classes : none;

  // One inner step for every task, from the fixed tasks and 256 more of a calibration stream.
  HeadModel m = spec.model;
  const auto fixed = std::make_shared<const TaskSet>(draw(o.tasks, train_seed, false));
  {
    const TaskSet calibration = draw(256, task_stream(config.seed, TaskStream::calibration), false);
    const double s = std::max(spec.calibrate(fixed->support), spec.calibrate(calibration.support));
    m.step = 1.0 / head_lipschitz(m.head, s, m.rho);
  }
  const std::string name = spec.name;
  auto build = [pools, o, m, train_seed, name](const bilevel::Batch& ids) {
    auto tasks = std::make_shared<const TaskSet>(sample_tasks_by_id(pools->train, pools->train_classes, ids,
                                                                    train_seed, o.ways, o.shots, o.queries));
    require_classes(*tasks, pools->train_classes, {}, name, "meta-train");
    return head_episode(m, tasks);
  };
  const std::string head = o.head == Head::softmax ? "softmax" : "ridge";
  bilevel::EpisodicProblem episodic(
      o.task_pool, build, "task",
      fmt::format("{}-way {}-shot tasks ({} queries/class) of the meta-train classes, {}", o.ways, o.shots, o.queries,
                  o.task_pool > 0 ? fmt::format("drawn from a pool of {}", o.task_pool) : "a fresh one every draw"));

  Instance inst;
  // Tasks 0 … T−1 of the stream, whatever the episodic pool (it may hold fewer).
  inst.problem = bilevel::EpisodicProblem(0, build, "task").episode(bilevel::full_batch(o.tasks)).problem;
  inst.inner_examples = o.tasks * o.ways * o.shots;
  inst.outer_examples = o.tasks * o.ways * o.queries;
  inst.lambda0 = spec.lambda0;
  inst.projections = spec.projections;
  inst.summary = fmt::format(
      "{}; {}-way {}-shot tasks ({} queries/class), {} head, rho {}; w: heads [tasks, {}, {}] ({} fixed tasks, or a "
      "meta-batch), {}; inner step 1/{:.3g}",
      pools->description, o.ways, o.shots, o.queries, head, o.rho, o.ways, m.q, o.tasks, spec.what, 1.0 / m.step);
  inst.validation = [m, fixed](const TensorList& w, const TensorList& lam) {
    if (w.empty()) return std::nan("");
    NoGradGuard off;
    return head_accuracy(m.features(fixed->query, lam), w[0], fixed->query_labels);
  };
  inst.validation_name = "query_acc";

  // Heads fitted on fixed features of a task set at λ. The features are formed 32 tasks at
  // a time (a task's features depend on its inputs alone; the CNN's batch norm has per-task
  // statistics): 600 meta-test tasks at once would hold 60,000 images' activations.
  auto fit = [m](const TaskSet& ts, const TensorList& lam) {
    auto features = [&](const Tensor& x) {
      constexpr std::int64_t kTasks = 32;
      if (x.size(0) <= kTasks) return m.features(x, lam);
      TensorList parts;
      for (std::int64_t t0 = 0; t0 < x.size(0); t0 += kTasks)
        parts.push_back(m.features(narrow(x, 0, t0, std::min(kTasks, x.size(0) - t0)), lam));
      return concat(parts, 0);
    };
    Tensor zs, zq;
    {
      NoGradGuard off;  // fixed features; the heads' solve below needs the tape
      zs = features(ts.support);
      zq = features(ts.query);
    }
    const Tensor bias = m.biased ? lam.at(0).detach() : zeros({m.ways, m.q});
    return fit_heads(m.head, m.rho, zs, zq, ts, bias);
  };
  const auto val = std::make_shared<const TaskSet>(draw(o.val_tasks, task_stream(config.seed, TaskStream::validation), false));
  const auto test = std::make_shared<const TaskSet>(draw(o.test_tasks, task_stream(config.seed, TaskStream::test), true));
  require_classes(*test, pools->test_classes, held_out, name, "meta-test");

  inst.episodic = EpisodicVersion{
      .problem = episodic,
      .validation = [fit, val](const TensorList&, const TensorList& lam) { return fit(*val, lam).accuracy; },
      .validation_name = "val_acc",
      .validation_every = 10,
      .defaults = spec.defaults,
      .meta_batch = 4,
      .preferred = true};

  auto baselines = std::make_shared<std::optional<Metrics>>();
  auto extra = spec.baselines;
  inst.evaluate = [fit, test, baselines, extra](const TensorList& lambda) {
    const HeadFit now = fit(*test, lambda);
    Metrics r{{"test_accuracy", now.accuracy}, {"test_accuracy_ci95", now.ci95}, {"test_loss", now.loss}};
    if (!*baselines) *baselines = extra([&](const TensorList& lam) { return fit(*test, lam); }, *test);
    r.insert(r.end(), (*baselines)->begin(), (*baselines)->end());
    return r;
  };
  inst.defaults = spec.defaults;
  inst.dataset = spec.dataset;
  return inst;
}

}  // namespace hyperad::problems::meta
