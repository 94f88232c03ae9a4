// Thread count and parallel thresholds of the kernels (the buffer-pool half of
// runtime.hpp is in buffer.cpp).
#include <algorithm>
#include <atomic>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "kernels/parallel.hpp"

namespace hyperad {

namespace {
// 0 = follow OpenMP: its current setting (OMP_NUM_THREADS, omp_set_num_threads, else the
// core count), read at each large kernel (a cheap call, and only above the thresholds).
constinit std::atomic<int> g_threads{0};
}  // namespace

constinit std::atomic<std::int64_t> kernels::g_parallel_elementwise{runtime::ParallelThresholds{}.elementwise};
constinit std::atomic<std::int64_t> kernels::g_parallel_gemm{runtime::ParallelThresholds{}.gemm};
constinit std::atomic<std::int64_t> kernels::g_serial_until{0};
constinit std::atomic<std::int64_t> kernels::g_backoff{0};
constinit std::atomic<std::int64_t> kernels::g_stalls{0};
constinit std::atomic<std::int64_t> kernels::g_stall_ns{kernels::kStallNs};
constinit thread_local int kernels::t_plan_threads = 0;
constinit thread_local bool kernels::t_plan_stalled = false;
constinit thread_local bool kernels::t_plan_parallel_ok = false;
constinit thread_local std::uint64_t kernels::t_stalls = 0;

namespace {
// Thread plans: how many coming plans run on one thread (after stalled ones), and the
// length of that back-off, in plans (doubling while probes stall, 1 to 64).
constinit std::atomic<int> g_plan_skip{0}, g_plan_backoff{0};
constinit std::atomic<bool> g_plans_enabled{true};
constexpr int kMaxPlanBackoff = 64;
}  // namespace

int kernels::thread_count() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : std::max(1, omp_get_max_threads());
}

int runtime::num_threads() { return kernels::thread_count(); }

void runtime::set_num_threads(int n) {
  if (n < 0) throw ValueError(fmt::format("set_num_threads: needs n >= 0 (0 = default), got {}", n));
  g_threads.store(n, std::memory_order_relaxed);
}

runtime::ParallelThresholds runtime::parallel_thresholds() {
  return {kernels::parallel_elementwise(), kernels::parallel_gemm()};
}

std::uint64_t runtime::parallel_stalls() {
  return static_cast<std::uint64_t>(kernels::g_stalls.load(std::memory_order_relaxed));
}

void runtime::set_stall_threshold(double seconds) {
  if (!(seconds >= 0) || seconds > 10)
    throw ValueError(fmt::format("set_stall_threshold: needs 0 <= seconds <= 10, got {}", seconds));
  kernels::g_stall_ns.store(static_cast<std::int64_t>(seconds * 1e9), std::memory_order_relaxed);
}

double runtime::stall_threshold() { return static_cast<double>(kernels::g_stall_ns.load(std::memory_order_relaxed)) / 1e9; }

void runtime::set_thread_plans(bool enabled) { g_plans_enabled.store(enabled, std::memory_order_relaxed); }

runtime::ThreadPlan::ThreadPlan() : stalls0_(kernels::t_stalls) {
  // Plans opened inside a parallel region (tasks spread over threads) are inert: their
  // kernels run on one thread anyway, and they must not spend the process's back-off.
  if (kernels::t_plan_threads > 0 || omp_in_parallel() || !g_plans_enabled.load(std::memory_order_relaxed)) return;
  outermost_ = true;
  const int all = kernels::thread_count();
  int skip = all > 1 ? g_plan_skip.load(std::memory_order_relaxed) : 0;  // one thread anyway: no skip spent
  while (skip > 0 && !g_plan_skip.compare_exchange_weak(skip, skip - 1, std::memory_order_relaxed)) {
  }
  kernels::t_plan_threads = skip > 0 ? 1 : all;
  kernels::t_plan_stalled = false;
  kernels::t_plan_parallel_ok = false;
}

runtime::ThreadPlan::~ThreadPlan() {
  if (!outermost_) return;
  if (kernels::t_plan_stalled) {
    int b = g_plan_backoff.load(std::memory_order_relaxed);
    while (!g_plan_backoff.compare_exchange_weak(b, std::clamp(2 * b, 1, kMaxPlanBackoff), std::memory_order_relaxed)) {
    }
    g_plan_skip.store(std::clamp(2 * b, 1, kMaxPlanBackoff), std::memory_order_relaxed);
  } else if (kernels::t_plan_parallel_ok) {  // a region ran on several threads, none stalled
    g_plan_backoff.store(0, std::memory_order_relaxed);
  }
  kernels::t_plan_threads = 0;
  kernels::t_plan_stalled = false;
  kernels::t_plan_parallel_ok = false;
}

int runtime::ThreadPlan::threads() const {
  if (omp_in_parallel()) return 1;
  if (kernels::t_plan_threads > 0) return std::min(kernels::t_plan_threads, kernels::thread_count());
  // No plan (plans off): the kernels' own timed back-off.
  return kernels::g_serial_until.load(std::memory_order_relaxed) > kernels::now_ns() ? 1 : num_threads();
}

std::uint64_t runtime::ThreadPlan::stalls() const { return kernels::t_stalls - stalls0_; }

void runtime::set_parallel_thresholds(const ParallelThresholds& t) {
  kernels::g_parallel_elementwise.store(std::max<std::int64_t>(1, t.elementwise), std::memory_order_relaxed);
  kernels::g_parallel_gemm.store(std::max<std::int64_t>(1, t.gemm), std::memory_order_relaxed);
}

}  // namespace hyperad
