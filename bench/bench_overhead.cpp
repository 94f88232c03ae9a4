// Per-op overhead on tiny tensors: a chain of 2000 recorded elementwise ops (alternately
// x·a and x + b) on 8 and 1024 elements, float64 and float32. Reports ns per op for the
// forward pass with recording (the tape's rewind at the end included), without recording
// (NoGradGuard), and for the backward pass (grad of the chain's sum); the recorded and the
// plain forward alternate rep by rep, and "recorded / plain" is the median of the per-rep
// ratios (a shared machine's load drifts; the ratio much less). Times are medians of --reps
// runs, and of those the median over --rounds rounds.
//
//   bench_overhead [--reps N] [--rounds R]      writes bench/results/overhead.csv
#include "bench_util.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using bench::median;

namespace {

constexpr int kOps = 2000;

Tensor chain(Tensor x, const Tensor& a, const Tensor& b) {
  for (int i = 0; i < kOps; i += 2) x = add(mul(x, a), b);
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30, rounds = 3;
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--rounds", &rounds}});

  std::vector<std::vector<std::string>> rows = {
      {"dtype", "elements", "forward_recorded_ns_per_op", "forward_plain_ns_per_op", "recorded_over_plain",
       "backward_ns_per_op"}};
  for (Dtype d : {Dtype::f64, Dtype::f32})
    for (std::int64_t n : {8, 1024}) {
      Generator g(1);
      const Tensor x0 = randn({n}, g, d), a = full({n}, 0.5, d), b = randn({n}, g, d);
      std::vector<double> fwd, plain, back, ratio;
      const auto recorded_chain = [&] {
        TapeScope scope;
        Tensor x = x0.detach().requires_grad_();
        chain(x, a, b);
      };
      const auto plain_chain = [&] {
        NoGradGuard off;
        chain(x0, a, b);
      };
      for (int round = 0; round < rounds; ++round) {  // medians over rounds of medians of reps
        std::vector<double> f, p, q;
        recorded_chain();
        plain_chain();
        for (int r = 0; r < reps; ++r) {
          f.push_back(bench::elapsed_ms(recorded_chain));
          p.push_back(bench::elapsed_ms(plain_chain));
          q.push_back(f.back() / p.back());
        }
        fwd.push_back(median(f));
        plain.push_back(median(p));
        ratio.push_back(median(q));
        // Backward alone: the chain is recorded outside the timed region.
        std::vector<double> bw;
        for (int r = 0; r <= reps; ++r) {
          TapeScope scope;
          Tensor x = x0.detach().requires_grad_();
          Tensor y = sum(chain(x, a, b));
          const auto t0 = std::chrono::steady_clock::now();
          TensorList gx = grad(y, {x});
          const auto t1 = std::chrono::steady_clock::now();
          if (r > 0) bw.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());  // r = 0 warms up
        }
        back.push_back(median(bw));
      }
      const auto ns = [](double ms) { return fmt::format("{:.1f}", ms * 1e6 / kOps); };
      rows.push_back({std::string(dtype_name(d)), std::to_string(n), ns(median(fwd)), ns(median(plain)),
                      fmt::format("{:.2f}", median(ratio)), ns(median(back))});
      fmt::print("{} n={:5d}: forward recorded {} ns/op, plain {} ns/op (recorded / plain {:.2f}), backward {} ns/op\n",
                 dtype_name(d), n, ns(median(fwd)), ns(median(plain)), median(ratio), ns(median(back)));
    }
  bench::write_csv(bench::results_path("overhead.csv"), rows);
}
