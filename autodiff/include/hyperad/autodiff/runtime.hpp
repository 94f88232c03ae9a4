#pragma once
/// \file runtime.hpp
/// Process-wide knobs of the compute kernels: the number of threads large kernels use,
/// and the buffer pool that recycles tensor storage.
///
/// Threads: kernels split their work over OpenMP threads only above a size threshold, so
/// small ops never pay for thread start-up. The default count is OpenMP's
/// (`OMP_NUM_THREADS`, else the number of cores). Results are identical for a given
/// thread count; reductions use a fixed chunking, so they do not even depend on it.
///
/// Buffer pool: freed tensor storage goes to a per-thread cache of size classes instead of
/// back to malloc, and the next tensor of the same class reuses it. A loop that repeats
/// the same shapes therefore stops calling malloc after its first iteration. A buffer may
/// be freed on any thread (it then joins that thread's cache).
#include <cstddef>
#include <cstdint>

namespace hyperad::runtime {

/// Threads the large kernels use (>= 1).
int num_threads();
/// Sets the thread count for every thread's kernels; 0 restores the default, which
/// follows OpenMP's current setting (OMP_NUM_THREADS, omp_set_num_threads, else the core
/// count). Throws ValueError when n < 0.
void set_num_threads(int n);

/// Work sizes below which a kernel stays on the calling thread: elements of an
/// elementwise map or reduction, and multiply-adds (M·N·K) of a matrix product. The
/// defaults were measured on a 2-core machine (bench/bench_threshold.cpp); a kernel uses
/// t threads only when its work is at least t times the threshold.
struct ParallelThresholds {
  std::int64_t elementwise = std::int64_t{1} << 15;
  std::int64_t gemm = std::int64_t{1} << 18;
};
ParallelThresholds parallel_thresholds();
/// Sets both thresholds (values < 1 are taken as 1).
void set_parallel_thresholds(const ParallelThresholds& t);

/// Parallel regions so far, on every thread, whose threads did not all get a core within
/// stall_threshold() (other processes keeping the cores busy). Inside a ThreadPlan a stall
/// drops the rest of the plan to one thread and makes later plans back off; outside one,
/// kernels run on one thread for a back-off period (20 ms, doubling while stalls repeat,
/// up to 1 s) instead of waiting a scheduler time slice per region. Results are
/// unaffected. On a machine that is busy for long, OMP_NUM_THREADS=1 or
/// OMP_WAIT_POLICY=passive avoid the probing as well.
std::uint64_t parallel_stalls();

/// The delay after which a worker thread that has not started counts as a stall, in
/// seconds (default 0.003: below a scheduler time slice, above an idle core's wake-up even
/// in a virtual machine). 0 counts every parallel region (for tests). ValueError outside
/// [0, 10].
void set_stall_threshold(double seconds);
double stall_threshold();

/// The kernels' thread count decided once for a span of work — a hypergradient (every
/// method opens one per call), an outer step — instead of kernel by kernel.
///
/// The outermost plan of a thread takes the full count unless recent plans stalled: after
/// a plan that saw a stall, the next plan runs on one thread, after another stalled probe
/// the next 2, then 4, … up to 64, before probing with all threads again; a plan in which
/// a region ran on several threads without a stall ends the back-off. Within a plan a
/// stall drops the rest of it to one thread (one wasted time slice per probe, not one per
/// kernel). Nested plans join the outer one; plans opened inside an OpenMP parallel region
/// are inert. The back-off is the process's (the machine's load is), shared by the plans
/// of all threads; a plan's state is its thread's, so a plan must end on the thread that
/// began it (a local variable). Without a plan each kernel backs off on its own, for a
/// time (parallel_stalls). Values never depend on the thread count.
class ThreadPlan {
 public:
  ThreadPlan();
  ~ThreadPlan();
  ThreadPlan(const ThreadPlan&) = delete;
  ThreadPlan& operator=(const ThreadPlan&) = delete;
  /// The count the plan's kernels use now (1 after a stall).
  int threads() const;
  /// Stalls seen by this thread's kernels since this plan began.
  std::uint64_t stalls() const;

 private:
  std::uint64_t stalls0_ = 0;
  bool outermost_ = false;
};

/// Plans on (default) or off (every kernel backs off on its own, as without a plan): for
/// measuring what plans change.
void set_thread_plans(bool enabled);

/// Buffer-pool counters, summed over all threads (including threads that have exited).
struct BufferPoolStats {
  std::uint64_t allocations = 0;  ///< requests that went to malloc (pool miss or too large)
  std::uint64_t reuses = 0;       ///< requests served from the pool
  std::size_t bytes_held = 0;     ///< bytes of free buffers the pool keeps for reuse
};
BufferPoolStats buffer_pool_stats();

/// Returns the calling thread's cached buffers to the system at once; other threads drop
/// theirs at their next allocation or release (or when they exit).
void release_buffer_pool();

/// Most bytes one thread's cache keeps (default 1 GiB). A release that would pass it first
/// gives back cached buffers of the least recently used other sizes, so the cache follows
/// the sizes in use; a buffer larger than the limit goes straight back to the system.
/// Takes effect at the next release.
void set_buffer_pool_limit(std::size_t bytes_per_thread);

}  // namespace hyperad::runtime
