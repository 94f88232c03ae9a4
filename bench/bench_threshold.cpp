// Where OpenMP starts to pay: each kernel timed on 1 thread and on 2 threads with the
// parallel thresholds forced down to 1 (so it always splits), over a range of sizes. The
// crossover sizes justify the defaults of runtime::ParallelThresholds; the last column
// shows what the defaults do (1 thread below the threshold, 2 above).
//
//   bench_threshold [--reps N]      writes bench/results/threshold.csv
#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;

int main(int argc, char** argv) {
  int reps = 200;
  bench::parse_flags(argc, argv, {{"--reps", &reps}});
  const runtime::ParallelThresholds defaults = runtime::parallel_thresholds();

  std::vector<std::vector<std::string>> rows = {
      {"kernel", "size", "work", "us_1_thread", "us_2_threads_forced", "speedup_forced", "us_default"}};
  // Each setting runs unmeasured for 30 ms first (an idle core is clocked down; OpenMP's
  // worker spins for a while after 2-thread work).
  auto timed = [&](const std::function<void()>& run) {
    bench::warm_up(run, 30);
    return bench::median_ms(reps, run) * 1e3;
  };
  auto measure = [&](const std::string& kernel, const std::string& size, std::int64_t work,
                     const std::function<void()>& run) {
    runtime::set_num_threads(1);
    const double t1 = timed(run);
    runtime::set_num_threads(2);
    runtime::set_parallel_thresholds({1, 1});
    const double t2 = timed(run);
    runtime::set_parallel_thresholds(defaults);
    const double td = timed(run);
    rows.push_back({kernel, size, std::to_string(work), fmt::format("{:.2f}", t1), fmt::format("{:.2f}", t2),
                    fmt::format("{:.2f}", t1 / t2), fmt::format("{:.2f}", td)});
    fmt::print("{:8s} {:>8s}: 1T {:9.2f} us, 2T forced {:9.2f} us (x{:.2f}), default {:9.2f} us\n", kernel, size, t1,
               t2, t1 / t2, td);
  };
  Generator g(5);
  for (std::int64_t n = 1024; n <= (std::int64_t{1} << 19); n *= 2) {
    const Tensor x = randn({n}, g), y = randn({n}, g);
    measure("add", std::to_string(n), n, [&] { add(x, y); });
  }
  for (std::int64_t n = 1024; n <= (std::int64_t{1} << 19); n *= 2) {
    const Tensor x = randn({n}, g);
    measure("exp", std::to_string(n), n, [&] { exp(x); });
  }
  for (std::int64_t n = 1024; n <= (std::int64_t{1} << 19); n *= 2) {
    const Tensor x = randn({n}, g);
    measure("sum", std::to_string(n), n, [&] { sum(x); });
  }
  for (std::int64_t n : {16, 24, 32, 48, 64, 96, 128, 192}) {
    const Tensor a = randn({n, n}, g), b = randn({n, n}, g);
    measure("gemm", std::to_string(n), n * n * n, [&] { matmul(a, b); });
  }
  // conv2d (3×3, 32 → 32 channels, padding 1, float32) as in the meta-learning CNN's
  // later blocks: its samples split over threads above the GEMM's threshold of
  // multiply-adds (work = N·32·32·9·side²).
  for (std::int64_t side : {7, 14})
    for (std::int64_t N : {1, 2, 4, 8, 16}) {
      const Tensor x = randn({N, 32, side, side}, g).to(Dtype::f32), w = randn({32, 32, 3, 3}, g).to(Dtype::f32);
      measure("conv2d", fmt::format("{}x{}x{}", N, side, side), N * 32 * 32 * 9 * side * side,
              [&] { conv2d(x, w, {}, {.padding = {1, 1}}); });
    }
  // batch_norm (float32, 32 channels): channels split over threads above the elementwise
  // threshold of values per channel.
  for (std::int64_t N : {2, 8, 32, 128}) {
    const Tensor x = randn({N, 32, 14, 14}, g).to(Dtype::f32);
    measure("bnorm", fmt::format("{}x32x14x14", N), N * 32 * 14 * 14, [&] { batch_norm(x, {}, {}); });
  }
  runtime::set_num_threads(0);
  fmt::print("parallel stalls (machine busy) during the run: {}\n", runtime::parallel_stalls());
  bench::write_csv(bench::results_path("threshold.csv"), rows);
}
