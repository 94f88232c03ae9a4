// GEMM throughput: C = A·B for square n = 64 ... 1024, float64 and float32, 1 and 2
// threads. hyperad's blocked, packed kernel (through matmul, the op users call) against a
// naive triple loop and, when CMake found it, OpenBLAS (cblas_?gemm) in the same run.
// GFLOP/s = 2n³ / median time; each figure is the median over --rounds (default 3)
// rounds of the whole table.
//
//   bench_gemm [--reps N] [--rounds R] [--out NAME]   writes bench/results/gemm.csv (or NAME)
#include <map>
#include <thread>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

#ifdef HYPERAD_HAVE_OPENBLAS
#include <cblas.h>
extern "C" char* openblas_get_corename(void);
#endif

using namespace hyperad;

namespace {

// The textbook i-j-k loop.
template <class T>
void naive(std::int64_t n, const T* a, const T* b, T* c) {
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      T s = 0;
      for (std::int64_t k = 0; k < n; ++k) s += a[i * n + k] * b[k * n + j];
      c[i * n + j] = s;
    }
}

#ifdef HYPERAD_HAVE_OPENBLAS
template <class T>
void blas(std::int64_t n, const T* a, const T* b, T* c) {
  const auto m = static_cast<int>(n);
  if constexpr (std::is_same_v<T, double>)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0, a, m, b, m, 0.0, c, m);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, a, m, b, m, 0.0f, c, m);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int reps = 0, rounds = 3;  // reps 0: by size
  std::string out = "gemm.csv";
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--rounds", &rounds}, {"--out", &out}});
#ifdef HYPERAD_HAVE_OPENBLAS
  const std::string core = openblas_get_corename();
#else
  const std::string core = "n/a";
#endif
  // One entry per (threads, dtype, n); hyperad and OpenBLAS are measured side by side,
  // --rounds times round after round (a disturbance hits one round), medians reported.
  struct Entry {
    int threads;
    Dtype d;
    std::int64_t n;
    Tensor a, b;
    std::vector<double> ours, blas;
    double naive = 0;
  };
  std::vector<Entry> entries;
  for (int threads : {1, 2})
    for (Dtype d : {Dtype::f64, Dtype::f32})
      for (std::int64_t n : {64, 128, 256, 512, 1024}) {
        Generator g(3);
        Tensor a = randn({n, n}, g, d), b = randn({n, n}, g, d);
        entries.push_back({threads, d, n, a, b, {}, {}, 0.0});
      }
  const std::uint64_t stalls0 = runtime::parallel_stalls();  // see runtime.hpp
  for (int round = 0; round < rounds; ++round) {
    // hyperad first, then OpenBLAS, with a pause between: OpenBLAS's own worker threads
    // keep spinning for about 0.1 s after a call, taking the core an OpenMP worker needs.
    for (int lib = 0; lib < 2; ++lib) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      for (Entry& e : entries) {
        runtime::set_num_threads(e.threads);
#ifdef HYPERAD_HAVE_OPENBLAS
        openblas_set_num_threads(e.threads);
#endif
        const std::int64_t n = e.n;
        const int r = reps > 0 ? reps : (n <= 256 ? 50 : n <= 512 ? 15 : 7);
        const double flop = 2.0 * double(n) * double(n) * double(n);
        const auto gf = [&](double ms) { return flop / (ms * 1e6); };
        if (lib == 0) {
          // Unmeasured warm-up (brings an idle core back to speed).
          for (auto w = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - w < std::chrono::milliseconds(50);)
            matmul(e.a, e.b);
          e.ours.push_back(gf(bench::median_ms(r, [&] { matmul(e.a, e.b); })));
          continue;
        }
        dispatch(e.d, [&]<class T>() {
          Tensor c = zeros({n, n}, e.d);
#ifdef HYPERAD_HAVE_OPENBLAS
          e.blas.push_back(gf(bench::median_ms(r, [&] { blas<T>(n, e.a.data<T>(), e.b.data<T>(), c.mutable_data<T>()); })));
#endif
          if (round == 0 && e.threads == 1) {  // the naive loop is single-threaded: measured once
            const int rn = n <= 256 ? 5 : n <= 512 ? 3 : 1;
            e.naive = gf(bench::median_ms(rn, [&] { naive<T>(n, e.a.data<T>(), e.b.data<T>(), c.mutable_data<T>()); }));
          }
        });
      }
    }
    fmt::print("round {} of {} done\n", round + 1, rounds);
  }
  runtime::set_num_threads(0);

  std::vector<std::vector<std::string>> rows = {{"n", "dtype", "threads", "hyperad_gflops", "openblas_gflops",
                                                 "naive_gflops", "hyperad_over_openblas", "hyperad_over_naive",
                                                 "openblas_core"}};
  std::map<std::pair<std::int64_t, Dtype>, double> naive_gf;
  for (const Entry& e : entries)
    if (e.threads == 1) naive_gf[{e.n, e.d}] = e.naive;
  for (const Entry& e : entries) {
    const double ours = bench::median(e.ours), ob = bench::median(e.blas), nv = naive_gf[{e.n, e.d}];
    rows.push_back({std::to_string(e.n), std::string(dtype_name(e.d)), std::to_string(e.threads),
                    fmt::format("{:.1f}", ours), ob > 0 ? fmt::format("{:.1f}", ob) : "", fmt::format("{:.2f}", nv),
                    ob > 0 ? fmt::format("{:.2f}", ours / ob) : "", fmt::format("{:.0f}", ours / nv), core});
    fmt::print("n={:5d} {} {}T: hyperad {:7.1f} GFLOP/s, OpenBLAS ({}) {:7.1f}, naive {:6.2f}\n", e.n,
               dtype_name(e.d), e.threads, ours, core, ob, nv);
  }
  fmt::print("parallel stalls (machine busy) during the run: {}\n", runtime::parallel_stalls() - stalls0);
  bench::write_csv(bench::results_path(out), rows);
}
