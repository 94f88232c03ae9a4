// Thread scaling, 1 -> 2 threads, on large kernels: elementwise ops and reductions over
// 10^6 elements, and GEMM at n = 512 and 1024 (runtime::set_num_threads in one run).
//
// Each measurement is the median of --reps runs, taken after 100 ms of unmeasured runs
// (an idle core is clocked down and needs tens of milliseconds of work to come back, and
// after 2-thread work OpenMP's worker spins for a while, competing with a 1-thread run
// that follows at once). The whole list is measured --rounds times, round after round,
// so that a disturbance from other processes hits one round rather than one op; the
// table gives the median over rounds of each time and of each speed-up, and the range of
// the speed-ups.
//
//   bench_scaling [--reps N] [--rounds R]      writes bench/results/scaling.csv
#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using bench::median;

int main(int argc, char** argv) {
  int reps = 30, rounds = 5;
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--rounds", &rounds}});

  struct Op {
    std::string name, dtype, size;
    std::function<void()> run;
    std::vector<double> t1, t2, speedup;
  };
  std::vector<Op> ops;
  for (Dtype d : {Dtype::f64, Dtype::f32}) {
    Generator g(11);
    const Tensor x = randn({1000000}, g, d), y = randn({1000000}, g, d);
    const Tensor xm = reshape(x, {1000, 1000}), row = randn({1000}, g, d);
    const Tensor a512 = randn({512, 512}, g, d), b512 = randn({512, 512}, g, d);
    const Tensor a1k = randn({1024, 1024}, g, d), b1k = randn({1024, 1024}, g, d);
    const std::string dt(dtype_name(d));
    ops.push_back({"add", dt, "1e6", [=] { add(x, y); }, {}, {}, {}});
    ops.push_back({"mul", dt, "1e6", [=] { mul(x, y); }, {}, {}, {}});
    ops.push_back({"add row broadcast", dt, "1000x1000 + 1000", [=] { add(xm, row); }, {}, {}, {}});
    ops.push_back({"exp", dt, "1e6", [=] { exp(x); }, {}, {}, {}});
    ops.push_back({"tanh", dt, "1e6", [=] { tanh(x); }, {}, {}, {}});
    ops.push_back({"sigmoid", dt, "1e6", [=] { sigmoid(x); }, {}, {}, {}});
    ops.push_back({"sum", dt, "1e6", [=] { sum(x); }, {}, {}, {}});
    ops.push_back({"column sum", dt, "1000x1000 -> 1000", [=] { sum(xm, {0}); }, {}, {}, {}});
    ops.push_back({"logsumexp rows", dt, "1000x1000 -> 1000", [=] { logsumexp(xm, 1); }, {}, {}, {}});
    ops.push_back({"gemm", dt, "512", [=] { matmul(a512, b512); }, {}, {}, {}});
    ops.push_back({"gemm", dt, "1024", [=] { matmul(a1k, b1k); }, {}, {}, {}});
  }

  const std::uint64_t stalls0 = runtime::parallel_stalls();  // see runtime.hpp
  for (int round = 0; round < rounds; ++round) {
    for (Op& op : ops) {
      double t[2];
      for (int k = 0; k < 2; ++k) {
        runtime::set_num_threads(k + 1);
        bench::warm_up(op.run);
        t[k] = bench::median_ms(op.name == "gemm" ? std::max(5, reps / 3) : reps, op.run);
      }
      op.t1.push_back(t[0]);
      op.t2.push_back(t[1]);
      op.speedup.push_back(t[0] / t[1]);
    }
    fmt::print("round {} of {} done\n", round + 1, rounds);
  }
  runtime::set_num_threads(0);

  std::vector<std::vector<std::string>> rows = {
      {"op", "dtype", "size", "ms_1_thread", "ms_2_threads", "speedup", "speedup_min", "speedup_max"}};
  for (const Op& op : ops) {
    const auto [lo, hi] = std::minmax_element(op.speedup.begin(), op.speedup.end());
    rows.push_back({op.name, op.dtype, op.size, fmt::format("{:.4f}", median(op.t1)),
                    fmt::format("{:.4f}", median(op.t2)), fmt::format("{:.2f}", median(op.speedup)),
                    fmt::format("{:.2f}", *lo), fmt::format("{:.2f}", *hi)});
    fmt::print("{:18s} {} {:18s}: 1T {:8.4f} ms, 2T {:8.4f} ms, speed-up {:.2f} (rounds: {:.2f} .. {:.2f})\n",
               op.name, op.dtype, op.size, median(op.t1), median(op.t2), median(op.speedup), *lo, *hi);
  }
  fmt::print("parallel stalls (machine busy) during the run: {}\n", runtime::parallel_stalls() - stalls0);
  bench::write_csv(bench::results_path("scaling.csv"), rows);
}
