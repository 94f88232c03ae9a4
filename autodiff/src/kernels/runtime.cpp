// Thread count and parallel thresholds of the kernels (the buffer-pool half of
// runtime.hpp is in buffer.cpp).
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

void runtime::set_parallel_thresholds(const ParallelThresholds& t) {
  kernels::g_parallel_elementwise.store(std::max<std::int64_t>(1, t.elementwise), std::memory_order_relaxed);
  kernels::g_parallel_gemm.store(std::max<std::int64_t>(1, t.gemm), std::memory_order_relaxed);
}

}  // namespace hyperad
