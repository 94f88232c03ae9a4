// Thread plans under load (issue 18): the fused AID-CG hypergradient of logistic regression
// (d = 1000, n = 2000 by default, t = K = 50) on 1 thread, and on 2 threads with thread plans
// (the count decided once per hypergradient, runtime::ThreadPlan) and without (every kernel
// backing off on its own after a stall), while --load busy threads of this process compete
// for the cores (0: an idle machine, as far as other processes allow). Reps alternate
// between the three; reported: median and mean wall times (stalls hit a few calls hard: the
// mean shows them), the median of the per-rep ratios to the 1-thread time, and the stalls
// seen in all calls of each setting (runtime::parallel_stalls).
//
//   bench_thread_plan [--reps N] [--load L] [--n N] [--d D]   writes bench/results/thread_plan_<L>.csv
#include <atomic>
#include <thread>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel.hpp"
#include "logistic_fixture.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

int main(int argc, char** argv) {
  int reps = 11, n = 2000, d = 1000;
  std::string load_flag = "1";
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--load", &load_flag}, {"--n", &n}, {"--d", &d}});
  const int load = std::stoi(load_flag);
  const bench::Logistic data(n, d, 1, {.features = 1.0 / std::sqrt(double(d)), .weights = 1.0, .noise = 0.1});
  const Problem p = data.problem(true);
  const TensorList lambda{full({d}, -2.0)};
  AID aid({.inner_steps = 50, .solver = linsolve::cg(), .linear_steps = 50});

  // The competing load: busy threads spinning until the end.
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < load; ++i)
    spinners.emplace_back([&stop] {
      volatile std::uint64_t x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });

  struct Setting {
    std::string name;
    int threads;
    bool plans;
    std::vector<double> ms, ratio, stalls;
  };
  // The 1-thread setting runs without plans so that it does not spend the plans' back-off.
  std::vector<Setting> settings{{"1 thread", 1, false, {}, {}, {}},
                                {"2 threads with plans", 2, true, {}, {}, {}},
                                {"2 threads per-kernel back-off", 2, false, {}, {}, {}}};
  for (int r = 0; r < reps; ++r)
    for (Setting& s : settings) {
      runtime::set_num_threads(s.threads);
      runtime::set_thread_plans(s.plans);
      const std::uint64_t before = runtime::parallel_stalls();
      s.ms.push_back(bench::elapsed_ms([&] { (void)aid.hypergradient(p, lambda); }));
      s.stalls.push_back(static_cast<double>(runtime::parallel_stalls() - before));
    }
  stop = true;
  for (auto& t : spinners) t.join();
  runtime::set_num_threads(0);
  runtime::set_thread_plans(true);

  fmt::print("fused AID-CG, logistic regression d = {}, n = {}, t = K = 50; {} busy thread(s) competing; medians of {}\n",
             d, n, load, reps);
  fmt::print("{:<32} {:>10} {:>10} {:>18} {:>13}\n", "setting", "median ms", "mean ms", "÷ 1 thread (med.)",
             "stalls (all)");
  std::vector<std::vector<std::string>> rows{{"setting", "median_ms", "mean_ms", "ratio_to_1_thread", "stalls"}};
  const auto mean = [](const std::vector<double>& v) {
    double t = 0;
    for (double x : v) t += x;
    return t / static_cast<double>(v.size());
  };
  for (Setting& s : settings) {
    for (int r = 0; r < reps; ++r) s.ratio.push_back(s.ms[static_cast<std::size_t>(r)] / settings[0].ms[static_cast<std::size_t>(r)]);
    const double stalls = mean(s.stalls) * reps;
    fmt::print("{:<32} {:>10.1f} {:>10.1f} {:>18.2f} {:>13.0f}\n", s.name, bench::median(s.ms), mean(s.ms),
               bench::median(s.ratio), stalls);
    rows.push_back({s.name, fmt::format("{:.2f}", bench::median(s.ms)), fmt::format("{:.2f}", mean(s.ms)),
                    fmt::format("{:.3f}", bench::median(s.ratio)), fmt::format("{:.0f}", stalls)});
  }
  bench::write_csv(bench::results_path(fmt::format("thread_plan_{}.csv", load)), rows);
  return 0;
}
