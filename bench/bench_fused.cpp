// The fused linear-model ops at the hardware's limit, and the composition users write
// (issue 18). Logistic regression with one ℓ2 strength e^{λ_j} per feature (the fixture of
// bench/logistic_fixture.hpp), t = 100 inner gradient steps.
//
// 1. Fused AID-CG (CG to a relative residual of 1e-10) against the memory-bandwidth
//    floor. Every pass of the computation reads one data matrix once:
//      t inner steps (one fused pass each: loss, gradient and curvature together),
//      1 record of Φ at w_t, P products of the solve (symmetry probe and final check
//      included), 1 validation gradient (over Xv, the size of X),
//    so the floor is (t + P + 2) · bytes(X) / r, with r the read rate of X (sum(X))
//    measured in the same run. Reps alternate the read and the hypergradient; "of floor"
//    is the median of the per-rep ratios floor / time.
// 2. The composition logistic_loss(matmul(X, w), y) against linear_model_loss: AID-CG and
//    ITD time (reps alternate the two; the median of the per-rep ratios) and ITD's peak
//    tape memory, owned and referenced (Diagnostics).
//
//   bench_fused [--reps N] [--threads-max N]    writes bench/results/fused.csv
#include <cmath>

#include "bench_util.hpp"
#include "logistic_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {
std::string f3(double v) { return fmt::format("{:.3f}", v); }
}  // namespace

int main(int argc, char** argv) {
  int reps = 11, threads_max = 2;
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--threads-max", &threads_max}});
  const int t = 100;
  struct Shape {
    std::int64_t n, d;
  };
  std::vector<std::vector<std::string>> csv{{"n", "d", "threads", "passes", "read_GBs", "aid_fused_ms", "floor_ms",
                                             "of_floor", "aid_composition_ms", "aid_ratio", "itd_fused_ms",
                                             "itd_composition_ms", "itd_ratio", "itd_fused_owned_bytes",
                                             "itd_composition_owned_bytes", "fused_losses"}};
  std::vector<std::string> floor_rows, ratio_rows;
  for (const Shape s : {Shape{2000, 1000}, Shape{10000, 100}, Shape{10000, 1000}, Shape{100000, 100}}) {
    const bench::Logistic data(s.n, s.d, 7,
                               {.features = 1.0, .weights = 3.0 / std::sqrt(static_cast<double>(s.d)), .noise = 1.0});
    const Problem fused = data.problem(/*fused=*/true), composed = data.problem(/*fused=*/false);
    Generator g(3);
    const TensorList lambda{-1.0 - rand({s.d}, g)};
    AID cg({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = 1000,
            .linear_tolerance = Tolerance::relative(1e-10)});
    ITD itd({.inner_steps = t});
    const double bytes = static_cast<double>(data.X.numel()) * static_cast<double>(sizeof(double));
    for (int threads = 1; threads <= threads_max; ++threads) {
      runtime::set_num_threads(threads);
      int passes = 0;
      bench::warm_up([&] { passes = t + cg.hypergradient(fused, lambda).diagnostics.linear.products + 2; });
      std::vector<double> read, aid_f, aid_c, itd_f, itd_c, of_floor, aid_ratio, itd_ratio;
      const std::uint64_t fused_before = fused_linear_losses();
      for (int r = 0; r < reps; ++r) {
        read.push_back(bench::elapsed_ms([&] { (void)sum(data.X).item(); }));
        aid_f.push_back(bench::elapsed_ms([&] { cg.hypergradient(fused, lambda); }));
        aid_c.push_back(bench::elapsed_ms([&] { cg.hypergradient(composed, lambda); }));
        itd_f.push_back(bench::elapsed_ms([&] { itd.hypergradient(fused, lambda); }));
        itd_c.push_back(bench::elapsed_ms([&] { itd.hypergradient(composed, lambda); }));
        of_floor.push_back(passes * read.back() / aid_f.back());
        aid_ratio.push_back(aid_c.back() / aid_f.back());
        itd_ratio.push_back(itd_c.back() / itd_f.back());
      }
      const std::uint64_t fused_losses = fused_linear_losses() - fused_before;
      const Diagnostics df = itd.hypergradient(fused, lambda).diagnostics;
      const Diagnostics dc = itd.hypergradient(composed, lambda).diagnostics;
      const double read_gbs = bytes / bench::median(read) / 1e6;
      const double floor_ms = passes * bench::median(read);
      floor_rows.push_back(fmt::format("| {} | {} | {} | {} | {:.1f} | {:.2f} | {:.2f} | {:.0f} % |", s.n, s.d, threads,
                                       passes, read_gbs, bench::median(aid_f), floor_ms,
                                       100 * bench::median(of_floor)));
      ratio_rows.push_back(fmt::format(
          "| {} | {} | {} | {:.2f} / {:.2f} | {:.2f}× | {:.2f} / {:.2f} | {:.2f}× | {:.1f} / {:.1f} MiB | {} |", s.n,
          s.d, threads, bench::median(aid_c), bench::median(aid_f), bench::median(aid_ratio), bench::median(itd_c),
          bench::median(itd_f), bench::median(itd_ratio), static_cast<double>(dc.peak_tape_bytes) / (1 << 20),
          static_cast<double>(df.peak_tape_bytes) / (1 << 20), fused_losses));
      csv.push_back({std::to_string(s.n), std::to_string(s.d), std::to_string(threads), std::to_string(passes),
                     fmt::format("{:.1f}", read_gbs), f3(bench::median(aid_f)), f3(floor_ms),
                     f3(bench::median(of_floor)), f3(bench::median(aid_c)), f3(bench::median(aid_ratio)),
                     f3(bench::median(itd_f)), f3(bench::median(itd_c)), f3(bench::median(itd_ratio)),
                     std::to_string(df.peak_tape_bytes), std::to_string(dc.peak_tape_bytes),
                     std::to_string(fused_losses)});
      fmt::print(stderr, "n = {}, d = {}, {} thread(s) done\n", s.n, s.d, threads);
    }
  }
  runtime::set_num_threads(0);
  fmt::print("## Fused AID-CG against the bandwidth floor (median of {} reps)\n\n", reps);
  fmt::print("| n | d | threads | passes t + P + 2 | read X (GB/s) | AID-CG (ms) | floor (ms) | of floor |\n");
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  for (const auto& row : floor_rows) fmt::print("{}\n", row);
  fmt::print("\n## The composition logistic_loss(matmul(X, w), y) against linear_model_loss\n\n");
  fmt::print("| n | d | threads | AID-CG composition / fused (ms) | ratio | ITD composition / fused (ms) | ratio | "
             "ITD peak tape, composition / fused | fused losses taken |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& row : ratio_rows) fmt::print("{}\n", row);
  bench::write_csv(bench::results_path("fused.csv"), csv);
}
