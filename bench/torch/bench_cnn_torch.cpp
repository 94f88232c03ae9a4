// The thesis's meta-learning network in hyperad and in libtorch, float32, in one process on
// identical data and weights (optional: built only when CMake finds Torch).
//
// Network: 4 blocks of 3×3 convolution (32 channels, padding 1, no bias), batch
// normalization in training mode (batch statistics, γ and β), ReLU and 2×2 max-pooling;
// loss L = ½ Σ features² / N. Timed per call, interleaved rep by rep (hyperad, torch,
// hyperad, ...), at batch 25 and 75 on 1×28×28 and 3×84×84 inputs, at 1 and 2 threads:
//   forward            L
//   forward+backward   L and ∇_θ L (θ: the 12 weight tensors)
//   HVP                ∇_θ(∇_θ L · v), a double backward (what AID's linear system needs)
// Reported: medians, the median of the per-rep ratios torch / hyperad (> 1: hyperad
// faster), hyperad's convolution GFLOP/s in the forward pass, the two libraries' largest
// relative difference (max |a − b| / max |b|) of the loss, the gradient and the HVP, and
// each one's against hyperad in float64 on the same values (h err, t err).
//
// At 2 threads each timed call follows a 250 ms pause and an untimed call of the same
// library (libtorch's threads spin after a call; see bench_torch_baseline).
//
//   bench_cnn_torch [--reps N] [--threads-min T] [--threads-max T] [--what forward,HVP,...]
//                   [--sides 28,84] [--batches 25,75]           writes bench/results/cnn_torch_*.csv
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

#include "bench_util.hpp"
#include "cnn_fixture.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

using hyperad::Tensor;
using hyperad::TensorList;

namespace {

using hyperad::bench::kCnnBlocks;
using hyperad::bench::kCnnChannels;

Tensor loss_hyperad(const Tensor& x, const TensorList& p) {
  return hyperad::sum(hyperad::square(hyperad::bench::cnn_forward(x, p))) * (0.5 / double(x.size(0)));
}

torch::Tensor loss_torch(const torch::Tensor& x, const std::vector<torch::Tensor>& p) {
  return hyperad::bench::cnn_forward(x, p).square().sum() * (0.5 / double(x.size(0)));
}

torch::Tensor to_torch(const Tensor& t) { return hyperad::bench::to_torch(t, torch::kFloat32); }
using hyperad::bench::from_torch;

// Multiply-adds of the forward convolutions.
double conv_flops(std::int64_t N, std::int64_t C, std::int64_t side) {
  double f = 0;
  for (int b = 0; b < kCnnBlocks; ++b) {
    const std::int64_t in = b == 0 ? C : kCnnChannels;
    f += 2.0 * double(N * kCnnChannels * side * side * in * 9);
    side /= 2;
  }
  return f;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return den > 0 ? num / den : num;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 11, threads_min = 1, threads_max = 2;
  std::string what = "all", sides = "28,84", batches = "25,75";
  hyperad::bench::parse_flags(argc, argv,
                              {{"--reps", &reps},
                               {"--threads-min", &threads_min},
                               {"--threads-max", &threads_max},
                               {"--what", &what},
                               {"--sides", &sides},
                               {"--batches", &batches}});
  const auto listed = [](const std::string& list, const std::string& item) {
    return list == "all" || ("," + list + ",").find("," + item + ",") != std::string::npos;
  };
  torch::manual_seed(0);
  std::vector<std::vector<std::string>> rows{{"input", "batch", "threads", "what", "hyperad_ms", "torch_ms",
                                              "ratio_torch_over_hyperad", "hyperad_conv_gflops", "rel_diff", "hyperad_err_vs_f64",
                                              "torch_err_vs_f64"}};
  fmt::print("4-block CNN (3x3 conv {} ch, batch norm, ReLU, 2x2 max-pool), float32; medians of {} interleaved reps\n\n",
             kCnnChannels, reps);
  fmt::print("{:<9} {:>5} {:>3}  {:<17} {:>11} {:>10} {:>12} {:>13} {:>9} {:>9} {:>9}\n", "input", "batch", "thr",
             "what", "hyperad ms", "torch ms", "torch/hyperad", "conv GFLOP/s", "rel diff", "h err", "t err");
  // The GEMM's own rate at a product of the network's shapes (the im2col product of block 2
  // on 28×28 inputs: 32 filters × 288 taps × 196 positions, per sample), float32.
  for (int threads = threads_min; threads <= threads_max; ++threads) {
    hyperad::runtime::set_num_threads(threads);
    hyperad::Generator g(3);
    const Tensor a = hyperad::randn({32, 288}, g).to(hyperad::Dtype::f32), b = hyperad::randn({288, 196 * 25}, g).to(hyperad::Dtype::f32);
    const double t = hyperad::bench::median_ms(21, [&] { hyperad::matmul(a, b); });
    fmt::print("GEMM [32, 288]·[288, 4900] float32, {} thread(s): {:.1f} GFLOP/s\n", threads,
               2.0 * 32 * 288 * 4900 / t * 1e-6);
  }
  fmt::print("\n");
  struct Input {
    std::int64_t C, side;
  };
  for (const Input in : {Input{1, 28}, Input{3, 84}})
    for (std::int64_t N : {25, 75})
      for (int threads = threads_min; threads <= threads_max; ++threads) {
        if (!listed(sides, std::to_string(in.side)) || !listed(batches, std::to_string(N))) continue;
        hyperad::runtime::set_num_threads(threads);
        omp_set_num_threads(threads);
        torch::set_num_threads(threads);
        hyperad::Generator gen(1);
        const Tensor x = hyperad::randn({N, in.C, in.side, in.side}, gen).to(hyperad::Dtype::f32);
        TensorList p = hyperad::bench::cnn_params(in.C, gen, hyperad::Dtype::f32), v;
        for (const Tensor& t : p) v.push_back(hyperad::randn(t.shape(), gen).to(hyperad::Dtype::f32));
        const torch::Tensor tx = to_torch(x);
        std::vector<torch::Tensor> tp, tv;
        for (const Tensor& t : p) tp.push_back(to_torch(t).requires_grad_());
        for (const Tensor& t : v) tv.push_back(to_torch(t));
        for (Tensor& t : p) t.requires_grad_();

        // The three computations in each library; each returns what is compared. hyperad's
        // also run once in float64 on the same values: the reference both are measured against.
        TensorList p64, v64;
        for (const Tensor& t : p) p64.push_back(t.detach().to(hyperad::Dtype::f64).requires_grad_());
        for (const Tensor& t : v) v64.push_back(t.to(hyperad::Dtype::f64));
        const Tensor x64 = x.to(hyperad::Dtype::f64);
        auto h_forward_of = [](const Tensor& xx, const TensorList& pp) {
          hyperad::NoGradGuard off;
          return loss_hyperad(xx, pp).to_vector();
        };
        auto h_backward_of = [](const Tensor& xx, const TensorList& pp) {
          hyperad::TapeScope scope;
          std::vector<double> out;
          for (const Tensor& g : hyperad::grad(loss_hyperad(xx, pp), pp))
            for (double e : g.to_vector()) out.push_back(e);
          return out;
        };
        auto h_hvp_of = [](const Tensor& xx, const TensorList& pp, const TensorList& vv) {
          hyperad::TapeScope scope;
          const TensorList g = hyperad::grad(loss_hyperad(xx, pp), pp, {.create_graph = true});
          Tensor dot = hyperad::sum(g[0] * vv[0]);
          for (std::size_t k = 1; k < g.size(); ++k) dot = dot + hyperad::sum(g[k] * vv[k]);
          std::vector<double> out;
          for (const Tensor& h : hyperad::grad(dot, pp))
            for (double e : h.to_vector()) out.push_back(e);
          return out;
        };
        auto h_forward = [&] { return h_forward_of(x, p); };
        auto h_backward = [&] { return h_backward_of(x, p); };
        auto h_hvp = [&] { return h_hvp_of(x, p, v); };
        auto ref_forward = [&] { return h_forward_of(x64, p64); };
        auto ref_backward = [&] { return h_backward_of(x64, p64); };
        auto ref_hvp = [&] { return h_hvp_of(x64, p64, v64); };
        auto t_forward = [&] {
          torch::NoGradGuard off;
          return from_torch(loss_torch(tx, tp));
        };
        auto t_backward = [&] {
          std::vector<double> out;
          for (const torch::Tensor& g : torch::autograd::grad({loss_torch(tx, tp)}, tp))
            for (double e : from_torch(g)) out.push_back(e);
          return out;
        };
        auto t_hvp = [&] {
          const auto g = torch::autograd::grad({loss_torch(tx, tp)}, tp, {}, true, true);
          torch::Tensor dot = (g[0] * tv[0]).sum();
          for (std::size_t k = 1; k < g.size(); ++k) dot = dot + (g[k] * tv[k]).sum();
          std::vector<double> out;
          for (const torch::Tensor& h : torch::autograd::grad({dot}, tp))
            for (double e : from_torch(h)) out.push_back(e);
          return out;
        };
        struct Pair {
          const char* what;
          std::function<std::vector<double>()> h, t, ref;
        };
        for (const Pair& c : {Pair{"forward", h_forward, t_forward, ref_forward},
                              Pair{"forward+backward", h_backward, t_backward, ref_backward},
                              Pair{"HVP", h_hvp, t_hvp, ref_hvp}}) {
          if (!listed(what, c.what)) continue;
          const std::vector<double> ref = c.ref();
          std::vector<double> hr, tr;
          c.h();  // warm up both
          c.t();
          std::vector<double> th, tt, ratio;
          // At 2 threads each timed call follows a pause and an untimed call of the same
          // library (as in bench_torch_baseline): libtorch's worker threads spin after a
          // call and would take the core the other library's second thread needs.
          auto settle = [&](const std::function<std::vector<double>()>& f) {
            if (threads == 1) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
            f();
          };
          for (int r = 0; r < reps; ++r) {
            settle(c.h);
            th.push_back(hyperad::bench::elapsed_ms([&] { hr = c.h(); }));
            settle(c.t);
            tt.push_back(hyperad::bench::elapsed_ms([&] { tr = c.t(); }));
            ratio.push_back(tt.back() / th.back());
          }
          const double mh = hyperad::bench::median(th), mt = hyperad::bench::median(tt);
          const double gflops = std::string(c.what) == "forward" ? conv_flops(N, in.C, in.side) / mh * 1e-6 : 0;
          const double diff = rel_diff(hr, tr), err_h = rel_diff(hr, ref), err_t = rel_diff(tr, ref);
          const std::string input = fmt::format("{}x{}x{}", in.C, in.side, in.side);
          fmt::print("{:<9} {:>5} {:>3}  {:<17} {:>11.2f} {:>10.2f} {:>12.2f}x {:>13} {:>9.1e} {:>9.1e} {:>9.1e}\n",
                     input, N, threads, c.what, mh, mt, hyperad::bench::median(ratio),
                     gflops > 0 ? fmt::format("{:.1f}", gflops) : std::string("-"), diff, err_h, err_t);
          rows.push_back({input, std::to_string(N), std::to_string(threads), c.what, fmt::format("{:.3f}", mh),
                          fmt::format("{:.3f}", mt), fmt::format("{:.3f}", hyperad::bench::median(ratio)),
                          fmt::format("{:.2f}", gflops), fmt::format("{:.2e}", diff), fmt::format("{:.2e}", err_h),
                          fmt::format("{:.2e}", err_t)});
        }
      }
  if (what != "all" || sides != "28,84" || batches != "25,75") return 0;  // a partial run keeps the results file
  hyperad::bench::write_csv(
      hyperad::bench::results_path(fmt::format("cnn_torch_{}-{}t.csv", threads_min, threads_max)), rows);
  return 0;
}
