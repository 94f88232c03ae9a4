// Batching the tasks of a meta-batch: one hypergradient over B few-shot tasks of the
// meta-learning problems, computed
//
//   batched     one episode of all B tasks (a leading task axis through the batched ops),
//   sequential  B episodes of one task each, one after the other (the loop a user writes),
//   threaded    the same B one-task episodes over OpenMP threads (with --threads 2),
//
// interleaved rep by rep (batched, sequential, threaded, batched, …), on one thread unless
// --threads says otherwise. Reported: the median time of each, the median of the per-rep
// ratios sequential / batched, and the largest relative difference of the hypergradients
// (AID-FP and ITD act on each task separately: equal to rounding; CG shares its scalars
// over the batch, so batched CG differs by the solver's truncation). Goal: ≥ 4× at B = 32
// on one thread.
//
//   build-bench/bench/bench_episodic [--tasks B] [--shots K] [--reps R] [--threads N] [--dataset digits|fashion_mnist]
//                                 [--problem NAME] [--method NAME]   (one case, e.g. for a profiler)
//                                 [--only batched|sequential|threaded]  (time one form alone, for a profiler)
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include <omp.h>

#include "bench_util.hpp"
#include "hyperad/hyperad.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;

int main(int argc, char** argv) {
  int tasks = 32, reps = 11, threads = 1, shots = 5;
  std::string dataset = "fashion_mnist", only_problem, only_method, only;
  bench::parse_flags(argc, argv, {{"--tasks", &tasks}, {"--reps", &reps}, {"--threads", &threads}, {"--shots", &shots},
                                  {"--dataset", &dataset}, {"--problem", &only_problem}, {"--method", &only_method},
                                  {"--only", &only}});
  if (!only.empty() && only != "batched" && only != "sequential" && only != "threaded")
    throw std::invalid_argument(fmt::format("--only {}: expected batched, sequential or threaded", only));
  const bool run_b = only.empty() || only == "batched", run_s = only.empty() || only == "sequential",
             run_t = only.empty() || only == "threaded";
  runtime::set_num_threads(threads);
  omp_set_num_threads(threads);

  struct Case {
    const char* problem;
    problems::MethodConfig method;
  };
  const std::vector<Case> cases = {
      {"meta_biased", {.name = "aid-fp", .inner_steps = 100, .linear_steps = 30}},
      {"meta_biased", {.name = "itd", .inner_steps = 100}},
      {"meta_biased", {.name = "aid-cg", .inner_steps = 100, .linear_steps = 30}},
      {"meta_hyperrep", {.name = "aid-fp", .inner_steps = 100, .linear_steps = 30}},
      {"meta_hyperrep", {.name = "itd", .inner_steps = 100}},
      {"meta_hyperrep", {.name = "aid-cg", .inner_steps = 100, .linear_steps = 30}},
  };
  std::vector<std::vector<std::string>> rows{{"problem", "method", "tasks", "shots", "threads", "batched_ms", "sequential_ms",
                                              "threaded_ms", "ratio_seq_over_batched", "ratio_seq_over_threaded",
                                              "max_rel_diff"}};
  fmt::print("B = {} tasks (5-way {}-shot, {}), {} thread(s), {} interleaved reps; medians\n\n", tasks, shots, dataset,
             threads, reps);
  fmt::print("{:<14} {:<7} {:>11} {:>14} {:>12} {:>10} {:>10} {:>10}\n", "problem", "method", "batched ms",
             "sequential ms", "threaded ms", "seq/batch", "seq/thr", "rel diff");
  for (const Case& c : cases) {
    if ((!only_problem.empty() && only_problem != c.problem) || (!only_method.empty() && only_method != c.method.name))
      continue;
    const problems::Instance inst =
        problems::make_problem(c.problem, {.dataset = dataset, .seed = 1, .options = {{"shots", std::to_string(shots)}}});
    const bilevel::Batch units = bilevel::full_batch(tasks);
    auto make = [&](bilevel::Execution e) {
      return problems::make_episodic(c.method, inst, {.meta_batch = tasks, .execution = e});
    };
    auto batched = make(bilevel::Execution::batched), sequential = make(bilevel::Execution::sequential),
         threaded = make(bilevel::Execution::threaded);
    // λ0 moved a little, so that nothing is special about it.
    TensorList lam = inst.lambda0;
    {
      Generator g(3);
      for (std::size_t k = 0; k < lam.size(); ++k) {
        lam[k] = lam[k] + 0.05 * randn(lam[k].shape(), g);
        if (!inst.projections.empty()) lam[k] = inst.projections[k](lam[k]);
      }
    }
    TensorList hb, hs, ht;
    auto time_one = [&](bilevel::EpisodicHypergradient& m, TensorList& out) {
      return bench::elapsed_ms([&] { out = m.hypergradient(units, lam).grad; });
    };
    bench::warm_up([&] { time_one(run_b ? *batched : run_s ? *sequential : *threaded, run_b ? hb : run_s ? hs : ht); },
                   200);
    // A form not timed counts as NaN (and once, for the difference).
    std::vector<double> tb, ts, tt, ratio, ratio_t;
    const double nan = std::nan("");
    for (int r = 0; r < reps; ++r) {
      tb.push_back(run_b ? time_one(*batched, hb) : nan);
      ts.push_back(run_s ? time_one(*sequential, hs) : nan);
      tt.push_back(run_t ? time_one(*threaded, ht) : nan);
      ratio.push_back(ts.back() / tb.back());
      ratio_t.push_back(ts.back() / tt.back());
    }
    if (!run_b) time_one(*batched, hb);
    if (!run_s) time_one(*sequential, hs);
    if (!run_t) time_one(*threaded, ht);
    const double diff = std::max(list::relative_error(hb, hs), list::relative_error(ht, hs));
    const double mb = bench::median(tb), ms = bench::median(ts), mt = bench::median(tt);
    fmt::print("{:<14} {:<7} {:>11.2f} {:>14.2f} {:>12.2f} {:>9.2f}x {:>9.2f}x {:>10.1e}\n", c.problem, c.method.name,
               mb, ms, mt, bench::median(ratio), bench::median(ratio_t), diff);
    rows.push_back({c.problem, c.method.name, std::to_string(tasks), std::to_string(shots), std::to_string(threads), fmt::format("{:.3f}", mb),
                    fmt::format("{:.3f}", ms), fmt::format("{:.3f}", mt), fmt::format("{:.3f}", bench::median(ratio)),
                    fmt::format("{:.3f}", bench::median(ratio_t)), fmt::format("{:.2e}", diff)});
  }
  // A run of one case or one form (for a profiler) would overwrite the table with a part of it.
  if (only.empty() && only_problem.empty() && only_method.empty())
    bench::write_csv(bench::results_path(fmt::format("episodic_{}shot_{}t.csv", shots, threads)), rows);
  else
    fmt::print("(a part of the table: {} not written)\n", fmt::format("episodic_{}shot_{}t.csv", shots, threads));
  return 0;
}
