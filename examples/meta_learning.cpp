// Meta-learning a linear representation h_A(x) = A x from the public API, in the episodic
// setting of the JMLR 2023 paper: every outer step draws 4 fresh 5-way 5-shot tasks of the
// digits 0–4, fits each task's softmax head on [h_A(x)] by gradient descent from 0 — all
// tasks as one problem with a leading task axis — differentiates by AID-CG and takes an Adam
// step on A (kept in the unit spectral ball). The task sampler is the one the built-in
// problems use. Exits non-zero unless the outer objective on tasks never drawn falls.
#include <cstdio>

#include "hyperad/bilevel.hpp"
#include "hyperad/problems/meta_tasks.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
namespace meta = hyperad::problems::meta;

int main() {
  const meta::MetaOptions o{};  // 5-way, 5 shots, 15 queries
  const meta::MetaPools pools = meta::load_meta_pools({.seed = 1}, "example", "digits", o);
  const std::int64_t d = pools.train.num_features(), p = 16, N = o.ways;
  // ‖A‖₂ ≤ 1 bounds the features by the largest input: the head's gradient step 1/(s/2 + ρ)
  // is then stable for every task and every feasible A.
  const double rho = 1.0, s = max(sum(square(pools.train.features), {1}), 0).item();

  // The tasks `ids` as one bilevel problem: heads W [tasks, N, p], E the mean query loss.
  auto episode = [&](const Batch& ids) {
    auto t = std::make_shared<const meta::TaskSet>(
        meta::sample_tasks_by_id(pools.train, pools.train_classes, ids, 7, N, o.shots, o.queries));
    const double T = double(ids.size());
    auto loss = [t](const Tensor& x, const std::vector<std::int64_t>& y, const Tensor& W, const Tensor& A) {
      const Tensor logits = matmul_t(matmul_t(x, A, false, true), W, false, true);  // [T, n, N]
      return cross_entropy(reshape(logits, {logits.size(0) * logits.size(1), logits.size(2)}), y,
                           Reduction::sum) / double(x.size(1));
    };
    auto inner = [=](const TensorList& w, const TensorList& a) {
      return loss(t->support, t->support_labels, w[0], a[0]) + 0.5 * rho * sum(square(w[0]));
    };
    auto outer = [=](const TensorList& w, const TensorList& a) {
      return loss(t->query, t->query_labels, w[0], a[0]) / T;
    };
    return Episode{.problem = Problem::gradient_descent(inner, 1.0 / (0.5 * s + rho), outer,
                                                        {zeros({std::int64_t(ids.size()), N, p})}),
                   .inner_examples = N * o.shots,
                   .outer_examples = N * o.queries};
  };
  EpisodicProblem tasks(0, episode, "task");  // population 0: a fresh task every draw

  AID aid({.inner_steps = 60, .solver = linsolve::cg(), .linear_steps = 20});
  EpisodicHypergradient method(tasks, copies_of(aid), {.meta_batch = 4});
  Generator gen(1);
  const Projection ball = Projection::spectral_ball(1.0);
  const TensorList A0{ball(randn({p, d}, gen))};
  OuterOptimizer opt(method, A0, {.outer_steps = 120, .step_size = StepSizeSchedule::constant(0.02),
                                  .update = OuterUpdate::adam}, {ball});
  opt.run();

  // E on 16 tasks no step drew (ids 10000…), with each head solved to convergence.
  const Problem unseen = tasks.episode(Batch{10000, 10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008, 10009,
                                             10010, 10011, 10012, 10013, 10014, 10015}).problem;
  const InnerOptions solve{.max_iterations = 20000, .tolerance = Tolerance::absolute(1e-10)};
  const double before = outer_value(unseen, A0, solve), after = outer_value(unseen, opt.lambda(), solve);
  std::printf("%lld outer steps, %lld sample-gradients; query loss on unseen tasks %.4f -> %.4f\n",
              static_cast<long long>(opt.steps_done()), static_cast<long long>(opt.total_samples()), before, after);
  return after < 0.9 * before ? 0 : 1;
}
