// Task parallelism (hyperad/mpi/task_parallel.hpp): the meta-batch of an episodic problem
// (ridge-regression tasks, tests/bilevel/ridge_tasks.hpp) spread over 1, 2 and 4 ranks.
// Per-unit execution gives the bits of one process — hypergradients, objectives, sample
// counts, warm-start buffers, and whole outer runs; batched execution agrees to rounding;
// a failing task makes every rank throw its error.
#include <doctest/doctest.h>

#include <cmath>

#include "bilevel/ridge_tasks.hpp"
#include "hyperad/bilevel.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/mpi.hpp"
#include "mpi/rank_groups.hpp"
#include "temp_files.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
namespace mpi = hyperad::mpi;
using hyperad::testing::on_each_rank_count;
using hyperad::testing::Tasks;

namespace {

const TensorList kLambda{tensor({0.3, -0.5, 0.1})};

// Three meta-batches of 6 of 10 tasks with full warm starts: everything the driver returns
// and keeps, flattened (hypergradients, objectives, samples, the buffers).
std::vector<double> three_steps(const EpisodicProblem& p, const AID& aid, EpisodicOptions o) {
  o.meta_batch = 6, o.warm_start = EpisodeWarmStart::full, o.seed = 5;
  EpisodicHypergradient eh(p, copies_of(aid), o);
  std::vector<double> out;
  for (int step = 0; step < 3; ++step) {
    const Hypergradient h = eh.hypergradient(kLambda);
    for (double x : list::flatten(h.grad)) out.push_back(x);
    out.push_back(h.objective);
    out.push_back(double(h.diagnostics.samples));
  }
  for (double x : list::flatten(eh.warm_state().inner)) out.push_back(x);
  for (double x : list::flatten(eh.warm_state().linear)) out.push_back(x);
  return out;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("a meta-batch spread over ranks gives one process's bits, warm-start buffers included") {
  const mpi::Communicator world = mpi::Communicator::world();
  const EpisodicProblem p = Tasks().problem(10);
  const AID aid({.inner_steps = 30, .solver = linsolve::richardson(), .linear_steps = 20});
  const std::vector<double> alone = three_steps(p, aid, {.execution = Execution::sequential});
  for (Execution e : {Execution::sequential, Execution::threaded}) {
    CAPTURE(execution_name(e));
    runtime::set_num_threads(e == Execution::threaded ? 2 : 0);  // two threads per rank, one rank's tasks each
    const auto shared = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
      return three_steps(p, aid, {.execution = e, .exchange = mpi::task_parallel(comm)});
    });
    runtime::set_num_threads(0);
    for (const auto& [ranks, v] : shared) {
      CAPTURE(ranks);
      CHECK(v == alone);  // bit for bit
    }
  }
  // Batched: each rank batches its share; equal to one process's batch to rounding.
  const std::vector<double> batched_alone = three_steps(p, aid, {.execution = Execution::batched});
  const auto batched = on_each_rank_count(world, [&](const mpi::Communicator& comm) {
    return three_steps(p, aid, {.execution = Execution::batched, .exchange = mpi::task_parallel(comm)});
  });
  for (const auto& [ranks, v] : batched) CHECK(rel_diff(v, batched_alone) < 1e-13);
}

TEST_CASE("the driver names the ranks, and the exchange counts its bytes") {
  const mpi::Communicator world = mpi::Communicator::world();
  const EpisodicProblem p = Tasks().problem(10);
  const AID aid({.inner_steps = 10, .solver = linsolve::cg(), .linear_steps = 5});
  EpisodicHypergradient eh(p, copies_of(aid),
                           {.meta_batch = 4, .execution = Execution::sequential, .exchange = mpi::task_parallel(world)});
  CHECK(eh.name() == fmt::format("AID-CG over tasks (meta-batch 4, warm start none, sequential, shared by {} MPI rank{})",
                                 world.size(), world.size() == 1 ? "" : "s"));
  world.reset_traffic();
  eh.hypergradient(kLambda);
  const mpi::Traffic t = world.traffic();
  CHECK(t.collectives == 2);  // the sizes, then the outcomes
  CHECK(t.bytes_received > 4 * 3 * sizeof(double));  // at least the four tasks' hypergradients
  // Every rank receives what all ranks sent.
  std::uint64_t sent_by_all = 0;
  mpi::check(MPI_Allreduce(&t.bytes_sent, &sent_by_all, 1, MPI_UINT64_T, MPI_SUM, world.handle()), "test");
  CHECK(t.bytes_received == sent_by_all);
}

TEST_CASE("a task that fails makes every rank throw its error, with the task named") {
  const mpi::Communicator world = mpi::Communicator::world();
  const Tasks tasks;
  const EpisodicProblem good = tasks.problem(10);
  // Task 3's episode cannot be built (checked lazily: unit 0 builds, as the constructor needs).
  const EpisodicProblem bad(
      10,
      [good](const Batch& units) {
        for (std::int64_t u : units)
          if (u == 3) throw ValueError("the data of task 3 are missing");
        return good.episode(units);
      },
      "task");
  const AID aid({.inner_steps = 10, .solver = linsolve::cg(), .linear_steps = 5});
  EpisodicHypergradient eh(bad, copies_of(aid),
                           {.meta_batch = 6, .execution = Execution::sequential, .exchange = mpi::task_parallel(world)});
  CHECK_THROWS_WITH_AS(eh.hypergradient({0, 1, 2, 3, 4, 5}, kLambda), "task 3: the data of task 3 are missing",
                       ValueError);
  // Every rank carries on after the failure, in step.
  CHECK_NOTHROW(eh.hypergradient({0, 1, 2, 4, 5, 6}, kLambda));
}

TEST_CASE("an outer run with the meta-batch over ranks takes one process's steps") {
  const mpi::Communicator world = mpi::Communicator::world();
  const EpisodicProblem p = Tasks().problem(7);
  const AID aid({.inner_steps = 30, .solver = linsolve::cg(), .linear_steps = 10});
  const auto run = [&](const std::shared_ptr<const UnitExchange>& exchange) {
    EpisodicHypergradient eh(p, copies_of(aid),
                             {.meta_batch = 3, .warm_start = EpisodeWarmStart::full, .execution = Execution::sequential,
                              .seed = 11, .exchange = exchange});
    OuterOptimizer opt(eh, kLambda, {.outer_steps = 6, .step_size = StepSizeSchedule::constant(0.2),
                                     .update = OuterUpdate::adam},
                       {Projection::box(-1.0, 1.0)});
    opt.run();
    return list::flatten(opt.lambda());
  };
  const std::vector<double> alone = run(nullptr);
  CHECK(alone != list::flatten(kLambda));  // it moved
  const auto shared = on_each_rank_count(world, [&](const mpi::Communicator& comm) { return run(mpi::task_parallel(comm)); });
  for (const auto& [ranks, lambda] : shared) CHECK(lambda == alone);
}

TEST_CASE("ranks that drew different meta-batches are refused after the exchange, not mixed") {
  const mpi::Communicator world = mpi::Communicator::world();
  if (world.size() == 1) return;  // needs two ranks that disagree
  const EpisodicProblem p = Tasks().problem(10);
  const AID aid({.inner_steps = 5, .solver = linsolve::cg(), .linear_steps = 3});
  EpisodicHypergradient eh(p, copies_of(aid),
                           {.meta_batch = 4, .execution = Execution::sequential, .exchange = mpi::task_parallel(world)});
  const Batch units = world.rank() == 0 ? Batch{0, 1, 2, 3} : Batch{0, 1, 2, 9};
  CHECK_THROWS_WITH_AS(eh.hypergradient(units, kLambda), doctest::Contains("drew different meta-batches"), ValueError);
}

TEST_CASE("a run saved on some number of ranks resumes on another, on the straight run's steps") {
  // The warm-start buffers and the sampler are the same on every rank (every rank keeps
  // every task's outcome), so a state file does not depend on the rank count that wrote it.
  const mpi::Communicator world = mpi::Communicator::world();
  const mpi::Communicator self = world.split(world.rank(), 0);
  const EpisodicProblem p = Tasks().problem(7);
  const AID aid({.inner_steps = 30, .solver = linsolve::cg(), .linear_steps = 10});
  const hyperad::testing::TempDir dir("hyperad_mpi_resume_");
  // Each rank its own file (in a real run, rank 0 alone writes it).
  const std::string state = (dir.path / fmt::format("rank{}.state", world.rank())).string();
  const auto run = [&](const mpi::Communicator* comm, std::int64_t steps, bool resume) {
    EpisodicHypergradient eh(p, copies_of(aid),
                             {.meta_batch = 3, .warm_start = EpisodeWarmStart::full, .execution = Execution::sequential,
                              .seed = 11, .exchange = comm ? mpi::task_parallel(*comm) : nullptr});
    OuterOptions o{.outer_steps = steps, .step_size = StepSizeSchedule::constant(0.2), .update = OuterUpdate::adam};
    o.state_path = state;
    o.resume = resume;
    OuterOptimizer opt(eh, kLambda, o, {Projection::box(-1.0, 1.0)});
    opt.run();
    return list::flatten(opt.lambda());
  };
  const std::vector<double> straight = run(nullptr, 6, false);
  // 3 steps on all ranks, then the rest on each rank alone; and the other way round.
  run(&world, 3, false);
  CHECK(run(&self, 6, true) == straight);
  run(&self, 3, false);
  CHECK(run(&world, 6, true) == straight);
}

TEST_CASE("SID inside each task, sampled per task, gives one process's bits over ranks too") {
  const mpi::Communicator world = mpi::Communicator::world();
  const EpisodicProblem p = Tasks().problem(10);
  const auto sid = sid_per_episode({.inner_steps = 20, .linear_steps = 20, .inner_batch = 4, .linear_batch = 4,
                                    .cross_batch = 4, .inner_step = StepSizeSchedule::constant(0.5),
                                    .linear_step = StepSizeSchedule::constant(0.5)});
  const auto two_steps = [&](const std::shared_ptr<const UnitExchange>& exchange) {
    EpisodicHypergradient eh(p, sid, {.meta_batch = 5, .execution = Execution::sequential, .seed = 3, .exchange = exchange});
    std::vector<double> out;
    for (int step = 0; step < 2; ++step) {
      const Hypergradient h = eh.hypergradient(kLambda);
      for (double x : list::flatten(h.grad)) out.push_back(x);
      out.push_back(double(h.diagnostics.samples));
    }
    return out;
  };
  const std::vector<double> alone = two_steps(nullptr);
  const auto shared = on_each_rank_count(world, [&](const mpi::Communicator& comm) { return two_steps(mpi::task_parallel(comm)); });
  for (const auto& [ranks, v] : shared) CHECK(v == alone);
}
