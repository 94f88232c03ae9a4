#pragma once
// OpenMP inside large kernels only. A kernel passes its size and the size below which
// thread start-up (a few microseconds) costs more than it saves; smaller work runs on
// the calling thread and never enters a parallel region.
//
// Busy machines: when other processes occupy the cores, an OpenMP worker may not get a
// core for a whole scheduler time slice while the calling thread spins at the region's
// barrier, turning a 100 µs kernel into an 8 ms one. Every region therefore records when
// its threads start; a thread that starts more than kStallNs late marks a stall, and the
// kernels then stay on one thread for a back-off period (doubling on repeated stalls,
// 20 ms to 1 s) before trying again. kStallNs (3 ms) is below a scheduler time slice but
// well above the wake-up time of an idle core, even in a virtual machine (the default of
// g_stall_ns, runtime::set_stall_threshold). Under a thread
// plan (runtime::ThreadPlan: a hypergradient, an outer step) the count is decided once for
// the plan instead, and a stall drops the rest of the plan to one thread. Results do not
// change: the kernels give the same values for every thread count.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>

#include <omp.h>

namespace hyperad::kernels {

/// Thread count of the kernels (runtime::num_threads()).
int thread_count();

// The thresholds of runtime::parallel_thresholds() (relaxed loads: free on x86).
extern std::atomic<std::int64_t> g_parallel_elementwise, g_parallel_gemm;

/// Elements of a cheap elementwise map (one add per element) per thread below which
/// splitting does not pay; measured with bench/bench_threshold.cpp.
inline std::int64_t parallel_elementwise() { return g_parallel_elementwise.load(std::memory_order_relaxed); }
/// Multiply-adds of a GEMM per thread below which it stays on one thread.
inline std::int64_t parallel_gemm() { return g_parallel_gemm.load(std::memory_order_relaxed); }

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Stall back-off state (see the file comment): one thread until g_serial_until (ns).
extern std::atomic<std::int64_t> g_serial_until, g_backoff, g_stalls;
/// A thread that starts later than this (ns) marks a stall (runtime::set_stall_threshold).
extern std::atomic<std::int64_t> g_stall_ns;
inline constexpr std::int64_t kStallNs = 3'000'000;

// The calling thread's thread plan (runtime::ThreadPlan): 0 without one, else the count its
// kernels use (1 after a stall in the plan); and whether the plan saw a stall. While a plan
// is open, kernels follow it instead of the timed back-off.
extern constinit thread_local int t_plan_threads;
extern constinit thread_local bool t_plan_stalled;
// Whether a region of the plan ran on several threads without a stall (a real probe).
extern constinit thread_local bool t_plan_parallel_ok;
// Stalls seen by the calling thread's regions (ThreadPlan::stalls counts its own).
extern constinit thread_local std::uint64_t t_stalls;

/// Number of threads to use for `work` units given `threshold` units per thread: 1 for
/// small work, inside an enclosing parallel region, and while backing off after a stall
/// (the plan's count when the thread has one).
inline int threads_for(std::int64_t work, std::int64_t threshold) {
  if (work < 2 * threshold || omp_in_parallel()) return 1;
  int nt = thread_count();
  if (t_plan_threads > 0)
    nt = std::min(nt, t_plan_threads);
  else if (g_serial_until.load(std::memory_order_relaxed) > now_ns())
    return 1;
  if (nt <= 1) return 1;
  return static_cast<int>(std::min<std::int64_t>(nt, work / std::max<std::int64_t>(threshold, 1)));
}

/// Watches one parallel region: construct before it, call started() first thing in
/// every thread, and finish() after it.
class RegionWatch {
 public:
  RegionWatch() : t0_(now_ns()) {}
  void started() {
    const std::int64_t late = now_ns() - t0_;
    std::int64_t seen = latest_.load(std::memory_order_relaxed);
    while (late > seen && !latest_.compare_exchange_weak(seen, late, std::memory_order_relaxed)) {
    }
  }
  void finish() {
    if (latest_.load(std::memory_order_relaxed) < g_stall_ns.load(std::memory_order_relaxed)) {
      if (t_plan_threads == 0) g_backoff.store(0, std::memory_order_relaxed);
      else t_plan_parallel_ok = true;
      return;
    }
    g_stalls.fetch_add(1, std::memory_order_relaxed);
    ++t_stalls;
    if (t_plan_threads > 0) {  // the rest of the plan on one thread; the plan decides what follows
      t_plan_threads = 1;
      t_plan_stalled = true;
      return;
    }
    const std::int64_t b = std::clamp<std::int64_t>(2 * g_backoff.load(std::memory_order_relaxed), 20'000'000,
                                                    1'000'000'000);
    g_backoff.store(b, std::memory_order_relaxed);
    g_serial_until.store(now_ns() + b, std::memory_order_relaxed);
  }

 private:
  std::int64_t t0_;
  std::atomic<std::int64_t> latest_{0};
};

/// body(lo, hi) over [0, n), split into one contiguous piece per thread (piece bounds
/// are multiples of `align`), or called once on [0, n) when n < 2 * threshold. An
/// exception thrown by a piece (bad_alloc of its scratch) is rethrown after the region:
/// one leaving an OpenMP region would terminate the program.
template <class Body>
void parallel_for(std::int64_t n, std::int64_t threshold, Body&& body, std::int64_t align = 16) {
  const int nt = threads_for(n, threshold);
  if (nt <= 1) {
    if (n > 0) body(std::int64_t{0}, n);
    return;
  }
  RegionWatch watch;
  std::exception_ptr error;
#pragma omp parallel num_threads(nt)
  {
    watch.started();
    const int t = omp_get_thread_num(), m = omp_get_num_threads();
    const std::int64_t per = (n / m + align - 1) / align * align;
    const std::int64_t lo = std::min<std::int64_t>(n, t * per);
    const std::int64_t hi = t == m - 1 ? n : std::min<std::int64_t>(n, lo + per);
    try {
      if (lo < hi) body(lo, hi);
    } catch (...) {
#pragma omp critical(hyperad_parallel_for_error)
      if (!error) error = std::current_exception();
    }
  }
  watch.finish();
  if (error) std::rethrow_exception(error);
}

}  // namespace hyperad::kernels
