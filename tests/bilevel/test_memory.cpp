// The memory figures of a hypergradient mean what they say: peak_tape_bytes is memory the
// call allocated and the tape kept (the process grows by it), peak_referenced_bytes the
// data and parameters from before the call that the tape only points to.
#include <doctest/doctest.h>

#include <fstream>

#include <unistd.h>

#include "bilevel/ridge_fixture.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using hyperad::testing::Ridge;

namespace {

// Resident set size of the process (/proc/self/statm, second field, in pages).
double rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPlainAllocator = false;  // ASan quarantines freed memory: RSS is not comparable
#else
constexpr bool kPlainAllocator = true;
#endif

}  // namespace

TEST_CASE("peak_tape_bytes is what the call allocated; the data matrices are referenced, apart") {
  const Ridge r(20000, 50, 3);  // X and X_v: 8 MB each
  const double data = static_cast<double>(r.X.nbytes());
  const Tensor lam = full({50}, -1.0);
  const Problem p = r.problem(lam);

  // AID: the tape holds one recorded Φ (vectors of d and n values) and points to X.
  runtime::release_buffer_pool();
  const double rss0 = rss_bytes();
  const Diagnostics aid = AID({.inner_steps = 200, .solver = linsolve::cg(), .linear_steps = 20}).hypergradient(p, {lam}).diagnostics;
  const double aid_growth = rss_bytes() - rss0;
  INFO("AID: owned " << aid.peak_tape_bytes << " B, referenced " << aid.peak_referenced_bytes << " B, RSS growth "
                     << aid_growth << " B");
  CHECK(static_cast<double>(aid.peak_referenced_bytes) >= data);  // X, saved by the recorded Φ
  CHECK(static_cast<double>(aid.peak_tape_bytes) < data / 8);     // not counted as the tape's own
  if (kPlainAllocator) CHECK(aid_growth < data / 2);               // and indeed not copied

  // ITD: every step's residual (n values) stays on the tape; the process grows by that.
  runtime::release_buffer_pool();
  const double rss1 = rss_bytes();
  const Diagnostics itd = ITD({.inner_steps = 60}).hypergradient(p, {lam}).diagnostics;
  const double itd_growth = rss_bytes() - rss1;  // the pool keeps the freed buffers: the peak
  INFO("ITD: owned " << itd.peak_tape_bytes << " B, referenced " << itd.peak_referenced_bytes << " B, RSS growth "
                     << itd_growth << " B");
  CHECK(static_cast<double>(itd.peak_tape_bytes) > 60 * 20000 * 8.0);  // at least a residual per step
  CHECK(static_cast<double>(itd.peak_referenced_bytes) >= data);
  CHECK(static_cast<double>(itd.peak_referenced_bytes) < 2.5 * data);  // X, X_v and small tensors
  if (kPlainAllocator) {
    CHECK(static_cast<double>(itd.peak_tape_bytes) <= itd_growth + (1 << 20));
    CHECK(static_cast<double>(itd.peak_tape_bytes) >= 0.5 * itd_growth);
  }
}
