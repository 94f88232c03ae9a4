// Thread plans (runtime::ThreadPlan): with a stall threshold of 0 every parallel region
// stalls, so the plan's decisions are deterministic: a stall drops the rest of the plan to
// one thread, the next plans back off (1, then 2, … plans on one thread) and probe again,
// nested plans join the outer one, and a plan in a parallel region is inert.
#include <doctest/doctest.h>

#include <omp.h>

#include "autodiff/ad_harness.hpp"
#include "hyperad/autodiff/runtime.hpp"

using namespace hyperad;
using hyperad::testing::ThreadCount;

namespace {

// Restores the default stall threshold and plans at the end of a test.
struct StallThreshold {
  explicit StallThreshold(double s) { runtime::set_stall_threshold(s); }
  ~StallThreshold() { runtime::set_stall_threshold(0.003); }
};

Generator gen(5);

// An elementwise op large enough for two threads.
void parallel_kernel() {
  static const Tensor x = randn({1 << 20}, gen);
  (void)exp(x);
}

// Ends any back-off left by earlier plans: plans until one probes with all threads, and
// that probe runs without a stall (a threshold no thread misses).
void fresh_start() {
  StallThreshold never(10.0);
  for (int i = 0; i < 200; ++i) {
    runtime::ThreadPlan p;
    if (p.threads() == 2) {
      parallel_kernel();
      return;
    }
  }
  FAIL("no plan probed with two threads after 200 plans");
}

}  // namespace

TEST_CASE("ThreadPlan: a stall ends the plan's threads; later plans back off 1, 2 plans, then probe again") {
  ThreadCount two(2);
  fresh_start();
  StallThreshold always(0.0);
  CHECK(runtime::stall_threshold() == 0.0);
  std::vector<int> at_start;
  for (int k = 0; k < 6; ++k) {
    runtime::ThreadPlan plan;
    at_start.push_back(plan.threads());
    parallel_kernel();
    if (at_start.back() == 2) {
      CHECK(plan.stalls() >= 1);
      CHECK(plan.threads() == 1);  // the rest of the plan on one thread
      const std::uint64_t seen = plan.stalls();
      parallel_kernel();
      CHECK(plan.stalls() == seen);  // no second stall: no second probe within the plan
    } else {
      CHECK(plan.stalls() == 0);
    }
  }
  // Probe, 1 plan serial, probe, 2 plans serial, probe.
  CHECK(at_start == std::vector<int>{2, 1, 2, 1, 1, 2});
}

TEST_CASE("ThreadPlan: nested plans join the outer one; plans in a parallel region are inert") {
  ThreadCount two(2);
  fresh_start();
  StallThreshold always(0.0);
  {
    runtime::ThreadPlan outer;
    CHECK(outer.threads() == 2);
    {
      runtime::ThreadPlan inner;
      CHECK(inner.threads() == 2);
      parallel_kernel();
      CHECK(inner.threads() == 1);
    }
    CHECK(outer.threads() == 1);  // the inner plan's stall is the outer plan's
  }
  // After the stalled plan, one plan runs serial; plans opened inside a parallel region
  // neither use nor spend that back-off.
  int team = 0, seen[2] = {0, 0};  // doctest's assertions are not thread-safe: checked after the region
#pragma omp parallel num_threads(2)
  {
    runtime::ThreadPlan in_region;
    seen[omp_get_thread_num()] = in_region.threads();
#pragma omp single
    team = omp_get_num_threads();
  }
  CHECK(seen[0] == 1);
  if (team < 2) return;  // no region of two threads here (OMP_THREAD_LIMIT=1): nothing more to check
  {
    runtime::ThreadPlan next;
    CHECK(next.threads() == 1);
  }
  {
    runtime::ThreadPlan probe;
    CHECK(probe.threads() == 2);
  }
}

TEST_CASE("ThreadPlan: values do not depend on the plan; the threshold is validated") {
  ThreadCount two(2);
  const Tensor x = randn({1 << 20}, gen);
  const std::vector<double> free_running = exp(x).to_vector();
  StallThreshold always(0.0);
  runtime::ThreadPlan plan;
  CHECK(exp(x).to_vector() == free_running);
  CHECK_THROWS_WITH_AS(runtime::set_stall_threshold(-1), doctest::Contains("set_stall_threshold"), ValueError);
  CHECK_THROWS_AS(runtime::set_stall_threshold(11), ValueError);
}
