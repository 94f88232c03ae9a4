// Every hypergradient call decides its kernels' thread count once (runtime::ThreadPlan)
// and reports it with the stalls it saw (Diagnostics::threads, parallel_stalls); an outer
// step's plan covers its hypergradient. A stall threshold of 0 makes every parallel region
// a stall, so the decisions are deterministic.
#include <doctest/doctest.h>

#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

struct Setup {
  Setup() { runtime::set_num_threads(2); }
  ~Setup() {
    runtime::set_num_threads(0);
    runtime::set_stall_threshold(0.003);
  }
};

// w ∈ ℝ^(2^18): its elementwise ops run on two threads.
Problem large_quadratic() {
  const std::int64_t n = std::int64_t{1} << 18;
  return Problem::gradient_descent(
      [](const TensorList& w, const TensorList& l) { return 0.5 * sum(square(w[0] - l[0])) + 0.5 * sum(square(w[0])); },
      0.5, [](const TensorList& w, const TensorList&) { return 0.5 * sum(square(w[0] - 1.0)); }, {zeros({n})});
}

}  // namespace

TEST_CASE("hypergradients report the threads their kernels used and the stalls they saw") {
  Setup setup;
  const Problem p = large_quadratic();
  const TensorList lambda{zeros({std::int64_t{1} << 18})};
  AID aid({.inner_steps = 5, .solver = linsolve::cg(), .linear_steps = 3});
  // No stall can happen at a threshold of 10 s: once any back-off from earlier plans is
  // spent, a call runs on both threads.
  runtime::set_stall_threshold(10.0);
  Diagnostics d;
  for (int i = 0; i < 200 && d.threads != 2; ++i) d = aid.hypergradient(p, lambda).diagnostics;
  CHECK(d.threads == 2);
  CHECK(d.parallel_stalls == 0);
  // Every region stalls: the call's first one ends its threads; the next call runs on one
  // thread from the start (the plans' back-off) and sees no stall.
  runtime::set_stall_threshold(0.0);
  const Diagnostics stalled = aid.hypergradient(p, lambda).diagnostics;
  CHECK(stalled.parallel_stalls == 1);
  CHECK(stalled.threads == 1);
  const Diagnostics next = ITD({.inner_steps = 5}).hypergradient(p, lambda).diagnostics;
  CHECK(next.parallel_stalls == 0);
  CHECK(next.threads == 1);
}
