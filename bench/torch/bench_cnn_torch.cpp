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
// faster), hyperad's convolution GFLOP/s in the forward pass, and the two libraries'
// largest relative difference of the loss, the gradient and the HVP.
//
//   bench_cnn_torch [--reps N] [--threads-max T]     writes bench/results/cnn_torch.csv
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

using hyperad::Tensor;
using hyperad::TensorList;

namespace {

constexpr int kBlocks = 4;
constexpr std::int64_t kChannels = 32;

torch::Tensor to_torch(const Tensor& t) {
  std::vector<float> v;
  for (double x : t.to_vector()) v.push_back(static_cast<float>(x));
  std::vector<std::int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.size(i));
  return torch::from_blob(v.data(), shape, torch::TensorOptions().dtype(torch::kFloat32)).clone();
}

std::vector<double> from_torch(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous().to(torch::kFloat64);
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// θ: per block the conv weight, γ, β.
TensorList init_params(std::int64_t in_channels, hyperad::Generator& gen) {
  TensorList p;
  for (int b = 0; b < kBlocks; ++b) {
    const std::int64_t in = b == 0 ? in_channels : kChannels;
    p.push_back((hyperad::randn({kChannels, in, 3, 3}, gen) * std::sqrt(2.0 / double(in * 9))).to(hyperad::Dtype::f32));
    p.push_back(hyperad::ones({kChannels}, hyperad::Dtype::f32));
    p.push_back(hyperad::zeros({kChannels}, hyperad::Dtype::f32));
  }
  return p;
}

Tensor loss_hyperad(const Tensor& x, const TensorList& p) {
  Tensor h = x;
  for (int b = 0; b < kBlocks; ++b) {
    h = hyperad::conv2d(h, p[3 * b], {}, {.padding = {1, 1}});
    h = hyperad::batch_norm(h, p[3 * b + 1], p[3 * b + 2]);
    h = hyperad::max_pool2d(hyperad::relu(h), {2, 2});
  }
  return hyperad::sum(hyperad::square(h)) * (0.5 / double(x.size(0)));
}

torch::Tensor loss_torch(const torch::Tensor& x, const std::vector<torch::Tensor>& p) {
  torch::Tensor h = x;
  for (int b = 0; b < kBlocks; ++b) {
    h = torch::conv2d(h, p[3 * b], {}, 1, 1);
    h = torch::batch_norm(h, p[3 * b + 1], p[3 * b + 2], {}, {}, /*training=*/true, 0.1, 1e-5, false);
    h = torch::max_pool2d(torch::relu(h), 2);
  }
  return h.square().sum() * (0.5 / double(x.size(0)));
}

// Multiply-adds of the forward convolutions.
double conv_flops(std::int64_t N, std::int64_t C, std::int64_t side) {
  double f = 0;
  for (int b = 0; b < kBlocks; ++b) {
    const std::int64_t in = b == 0 ? C : kChannels;
    f += 2.0 * double(N * kChannels * side * side * in * 9);
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

template <class F>
double ms(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 11, threads_max = 2;
  hyperad::bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--threads-max", &threads_max}});
  torch::manual_seed(0);
  std::vector<std::vector<std::string>> rows{{"input", "batch", "threads", "what", "hyperad_ms", "torch_ms",
                                              "ratio_torch_over_hyperad", "hyperad_conv_gflops", "rel_diff"}};
  fmt::print("4-block CNN (3x3 conv {} ch, batch norm, ReLU, 2x2 max-pool), float32; medians of {} interleaved reps\n\n",
             kChannels, reps);
  fmt::print("{:<9} {:>5} {:>3}  {:<17} {:>11} {:>10} {:>12} {:>13} {:>9}\n", "input", "batch", "thr", "what",
             "hyperad ms", "torch ms", "torch/hyperad", "conv GFLOP/s", "rel diff");
  struct Input {
    std::int64_t C, side;
  };
  for (const Input in : {Input{1, 28}, Input{3, 84}})
    for (std::int64_t N : {25, 75})
      for (int threads = 1; threads <= threads_max; ++threads) {
        hyperad::runtime::set_num_threads(threads);
        omp_set_num_threads(threads);
        torch::set_num_threads(threads);
        hyperad::Generator gen(1);
        const Tensor x = hyperad::randn({N, in.C, in.side, in.side}, gen).to(hyperad::Dtype::f32);
        TensorList p = init_params(in.C, gen), v;
        for (const Tensor& t : p) v.push_back(hyperad::randn(t.shape(), gen).to(hyperad::Dtype::f32));
        const torch::Tensor tx = to_torch(x);
        std::vector<torch::Tensor> tp, tv;
        for (const Tensor& t : p) tp.push_back(to_torch(t).requires_grad_());
        for (const Tensor& t : v) tv.push_back(to_torch(t));
        for (Tensor& t : p) t.requires_grad_();

        // The three computations in each library; each returns what is compared.
        auto h_forward = [&] {
          hyperad::NoGradGuard off;
          return loss_hyperad(x, p).to_vector();
        };
        auto t_forward = [&] {
          torch::NoGradGuard off;
          return from_torch(loss_torch(tx, tp));
        };
        auto h_backward = [&] {
          hyperad::TapeScope scope;
          std::vector<double> out;
          for (const Tensor& g : hyperad::grad(loss_hyperad(x, p), p))
            for (double e : g.to_vector()) out.push_back(e);
          return out;
        };
        auto t_backward = [&] {
          std::vector<double> out;
          for (const torch::Tensor& g : torch::autograd::grad({loss_torch(tx, tp)}, tp))
            for (double e : from_torch(g)) out.push_back(e);
          return out;
        };
        auto h_hvp = [&] {
          hyperad::TapeScope scope;
          const TensorList g = hyperad::grad(loss_hyperad(x, p), p, {.create_graph = true});
          Tensor dot = hyperad::sum(g[0] * v[0]);
          for (std::size_t k = 1; k < g.size(); ++k) dot = dot + hyperad::sum(g[k] * v[k]);
          std::vector<double> out;
          for (const Tensor& h : hyperad::grad(dot, p))
            for (double e : h.to_vector()) out.push_back(e);
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
          std::function<std::vector<double>()> h, t;
        };
        for (const Pair& c : {Pair{"forward", h_forward, t_forward}, Pair{"forward+backward", h_backward, t_backward},
                              Pair{"HVP", h_hvp, t_hvp}}) {
          std::vector<double> hr, tr;
          c.h();  // warm up both
          c.t();
          std::vector<double> th, tt, ratio;
          for (int r = 0; r < reps; ++r) {
            th.push_back(ms([&] { hr = c.h(); }));
            tt.push_back(ms([&] { tr = c.t(); }));
            ratio.push_back(tt.back() / th.back());
          }
          const double mh = hyperad::bench::median(th), mt = hyperad::bench::median(tt);
          const double gflops = std::string(c.what) == "forward" ? conv_flops(N, in.C, in.side) / mh * 1e-6 : 0;
          const double diff = rel_diff(hr, tr);
          const std::string input = fmt::format("{}x{}x{}", in.C, in.side, in.side);
          fmt::print("{:<9} {:>5} {:>3}  {:<17} {:>11.2f} {:>10.2f} {:>12.2f}x {:>13} {:>9.1e}\n", input, N, threads,
                     c.what, mh, mt, hyperad::bench::median(ratio),
                     gflops > 0 ? fmt::format("{:.1f}", gflops) : std::string("-"), diff);
          rows.push_back({input, std::to_string(N), std::to_string(threads), c.what, fmt::format("{:.3f}", mh),
                          fmt::format("{:.3f}", mt), fmt::format("{:.3f}", hyperad::bench::median(ratio)),
                          fmt::format("{:.2f}", gflops), fmt::format("{:.2e}", diff)});
        }
      }
  hyperad::bench::write_csv(hyperad::bench::results_path("cnn_torch.csv"), rows);
  return 0;
}
