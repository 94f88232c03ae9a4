// Matrix-vector throughput: y = X w and y = Xᵀ s for tall float64 matrices (the shapes of
// a logistic or ridge loss over a dataset, whose hypergradients are almost all such
// products). hyperad's kernels (through matmul, the op users call) against OpenBLAS's
// cblas_dgemv, when CMake found it, in the same run; and against a plain read of X (sum),
// the bandwidth any product must pay. Also the fused gradient and Hessian-vector product of
// a logistic loss (linear_model_grad / _hvp: Xᵀℓ'(Xw) and Xᵀ(ℓ''(Xw) ⊙ Xv) in one pass
// over X, where matmul would take two and three). GB/s = bytes of X / median time.
//
//   bench_gemv [--reps N] [--rounds R] [--out NAME]   writes bench/results/gemv.csv (or NAME)
#include <cmath>
#include <thread>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

#ifdef HYPERAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

using namespace hyperad;

int main(int argc, char** argv) {
  int reps = 31, rounds = 3;
  std::string out = "gemv.csv";
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--rounds", &rounds}, {"--out", &out}});
  struct Entry {
    int threads;
    std::int64_t n, d;
    Tensor X, w, s;
    Tensor y;  // ±1 labels for the fused logistic loss
    std::vector<double> xw, xts, blas_xw, blas_xts, read, grad, hvp;
  };
  std::vector<Entry> entries;
  for (int threads : {1, 2})
    for (auto [n, d] : {std::pair<std::int64_t, std::int64_t>{2000, 10}, {2000, 100}, {2000, 1000}, {20000, 100}}) {
      Generator g(5);
      Tensor X = randn({n, d}, g), w = randn({d}, g) * (1.0 / std::sqrt(double(d))), s = randn({n}, g);
      entries.push_back({threads, n, d, X, w, s, sign(randn({n}, g)), {}, {}, {}, {}, {}, {}, {}});
    }
  const auto rate = [](const Entry& e, double ms) { return double(e.n * e.d * 8) / (ms * 1e6); };
  const std::uint64_t stalls0 = runtime::parallel_stalls();  // see runtime.hpp
  for (int round = 0; round < rounds; ++round) {
    // hyperad first, then OpenBLAS, with a pause before each: OpenBLAS's worker threads
    // keep spinning for about 0.1 s after a call, taking the core an OpenMP worker needs.
    for (int lib = 0; lib < 2; ++lib) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      for (Entry& e : entries) {
        if (lib == 0) {
          runtime::set_num_threads(e.threads);
          // raw(): a matrix-vector matmul is computed when its result is first read
          e.xw.push_back(rate(e, bench::median_ms(reps, [&] { (void)matmul(e.X, e.w).raw(); })));
          e.xts.push_back(rate(e, bench::median_ms(reps, [&] { matmul(e.s, e.X); })));
          e.read.push_back(rate(e, bench::median_ms(reps, [&] { sum(e.X); })));
          e.grad.push_back(rate(e, bench::median_ms(reps, [&] { linear_model_grad(e.X, e.w, e.y, LinearLoss::logistic); })));
          e.hvp.push_back(
              rate(e, bench::median_ms(reps, [&] { linear_model_hvp(e.X, e.w, e.y, e.w, LinearLoss::logistic); })));
          continue;
        }
#ifdef HYPERAD_HAVE_OPENBLAS
        openblas_set_num_threads(e.threads);
        std::vector<double> y(static_cast<std::size_t>(std::max(e.n, e.d)));
        const int n = static_cast<int>(e.n), d = static_cast<int>(e.d);
        const double* X = e.X.data<double>();
        e.blas_xw.push_back(rate(e, bench::median_ms(reps, [&] {
          cblas_dgemv(CblasRowMajor, CblasNoTrans, n, d, 1.0, X, d, e.w.data<double>(), 1, 0.0, y.data(), 1);
        })));
        e.blas_xts.push_back(rate(e, bench::median_ms(reps, [&] {
          cblas_dgemv(CblasRowMajor, CblasTrans, n, d, 1.0, X, d, e.s.data<double>(), 1, 0.0, y.data(), 1);
        })));
#endif
      }
    }
    fmt::print("round {} of {} done\n", round + 1, rounds);
  }
  runtime::set_num_threads(0);
  std::vector<std::vector<std::string>> rows = {{"n", "d", "threads", "hyperad_Xw_GBs", "hyperad_XTs_GBs",
                                                 "openblas_Xw_GBs", "openblas_XTs_GBs", "read_X_GBs",
                                                 "fused_grad_GBs", "fused_hvp_GBs"}};
  const auto cell = [](const std::vector<double>& v) { return v.empty() ? std::string() : fmt::format("{:.1f}", bench::median(v)); };
  for (const Entry& e : entries) {
    rows.push_back({std::to_string(e.n), std::to_string(e.d), std::to_string(e.threads), cell(e.xw), cell(e.xts),
                    cell(e.blas_xw), cell(e.blas_xts), cell(e.read), cell(e.grad), cell(e.hvp)});
    fmt::print(
        "{:6d}x{:<5d} {}T  GB/s  Xw {:>6}  Xᵀs {:>6}   OpenBLAS Xw {:>6}  Xᵀs {:>6}   read(X) {:>6}   fused grad {:>6}  "
        "hvp {:>6}\n",
        e.n, e.d, e.threads, cell(e.xw), cell(e.xts), cell(e.blas_xw), cell(e.blas_xts), cell(e.read), cell(e.grad),
        cell(e.hvp));
  }
  fmt::print("parallel stalls (machine busy) during the run: {}\n", runtime::parallel_stalls() - stalls0);
  bench::write_csv(bench::results_path(out), rows);
}
