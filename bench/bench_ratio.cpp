// Gradient / function and HVP / function time ratios, measured side by side in one run:
//   - binary logistic regression loss, n = 10,000 examples, d = 100 features;
//   - MLP cross-entropy, batch 256, 784-256-10 with ReLU (gradient w.r.t. all weights);
//   - an elementwise chain over 10^6 elements (8 ops, summed).
// "function" is a plain forward evaluation (NoGradGuard); "gradient" is value_and_grad
// (recorded forward + reverse sweep); "hvp" is hvp() (reverse over reverse). Medians of
// --reps runs (default 30), float64 and float32, 1 and 2 threads; ratios are the median
// over --rounds (default 3) rounds of the whole table.
//
//   bench_ratio [--reps N] [--rounds R]      writes bench/results/ratio.csv
#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;

namespace {

struct Case {
  std::string name;
  std::function<Tensor(const TensorList&)> f;
  TensorList x;
};

std::vector<Case> make_cases(Dtype d) {
  Generator g(7);
  std::vector<Case> cases;
  {
    const std::int64_t n = 10000, dim = 100;
    Tensor X = randn({n, dim}, g, d);
    Tensor wt = randn({dim}, g, d);
    Tensor y = sign(add(matmul(X, wt), randn({n}, g, d)));
    Tensor w = mul_scalar(randn({dim}, g, d), 0.1);
    cases.push_back({"logistic n=10000 d=100",
                     [X, y](const TensorList& p) { return logistic_loss(matmul(X, p[0]), y); }, {w}});
  }
  {
    const std::int64_t batch = 256;
    Tensor X = randn({batch, 784}, g, d);
    std::vector<std::int64_t> labels(batch);
    for (auto& l : labels) l = static_cast<std::int64_t>(g.below(10));
    Tensor W1 = mul_scalar(randn({784, 256}, g, d), 0.05), b1 = zeros({256}, d);
    Tensor W2 = mul_scalar(randn({256, 10}, g, d), 0.1), b2 = zeros({10}, d);
    cases.push_back({"mlp 256x784-256-10",
                     [X, labels](const TensorList& p) {
                       Tensor h = relu(add(matmul(X, p[0]), p[1]));
                       return cross_entropy(add(matmul(h, p[2]), p[3]), labels);
                     },
                     {W1, b1, W2, b2}});
  }
  {
    Tensor x = randn({1000000}, g, d);
    cases.push_back({"elementwise chain 1e6",
                     [](const TensorList& p) {
                       const Tensor& x = p[0];
                       Tensor bell = exp(mul_scalar(square(x), -0.5));
                       return sum(add(mul(tanh(x), bell), softplus(x)));
                     },
                     {x}});
  }
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30, rounds = 3;
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--rounds", &rounds}});

  // Every (threads, dtype, case) is measured --rounds times, round after round, so that a
  // disturbance from other processes hits one round; medians over the rounds are reported.
  struct Entry {
    int threads;
    Dtype d;
    Case c;
    std::vector<double> f, g, h, gr, hr;
  };
  std::vector<Entry> entries;
  for (int threads : {1, 2})
    for (Dtype d : {Dtype::f64, Dtype::f32})
      for (Case& c : make_cases(d)) entries.push_back({threads, d, c, {}, {}, {}, {}, {}});
  const std::uint64_t stalls0 = runtime::parallel_stalls();  // see runtime.hpp
  for (int round = 0; round < rounds; ++round) {
    for (Entry& e : entries) {
      runtime::set_num_threads(e.threads);
      Case& c = e.c;
      bench::warm_up([&] { value_and_grad(c.f, c.x); });
      const double f = bench::median_ms(reps, [&] {
        NoGradGuard off;
        c.f(c.x);
      });
      const double gr = bench::median_ms(reps, [&] { value_and_grad(c.f, c.x); });
      TensorList v;
      for (const Tensor& xi : c.x) v.push_back(ones_like(xi));
      const double h = bench::median_ms(reps, [&] { hvp(c.f, c.x, v); });
      e.f.push_back(f);
      e.g.push_back(gr);
      e.h.push_back(h);
      e.gr.push_back(gr / f);
      e.hr.push_back(h / f);
    }
    fmt::print("round {} of {} done\n", round + 1, rounds);
  }
  runtime::set_num_threads(0);
  std::vector<std::vector<std::string>> rows = {{"case", "dtype", "threads", "function_ms", "gradient_ms", "hvp_ms",
                                                 "gradient_over_function", "hvp_over_function"}};
  for (const Entry& e : entries) {
    using bench::median;
    const double f = median(e.f), gr = median(e.g), h = median(e.h), grr = median(e.gr), hr = median(e.hr);
    rows.push_back({e.c.name, std::string(dtype_name(e.d)), std::to_string(e.threads), fmt::format("{:.4f}", f),
                    fmt::format("{:.4f}", gr), fmt::format("{:.4f}", h), fmt::format("{:.2f}", grr),
                    fmt::format("{:.2f}", hr)});
    fmt::print("{:24s} {} {}T: f {:.3f} ms, grad {:.3f} ms ({:.2f}x), hvp {:.3f} ms ({:.2f}x)\n", e.c.name,
               dtype_name(e.d), e.threads, f, gr, grr, h, hr);
  }
  fmt::print("parallel stalls (machine busy) during the run: {}\n", runtime::parallel_stalls() - stalls0);
  bench::write_csv(bench::results_path("ratio.csv"), rows);
}
