// hyperad against a libtorch autograd implementation of the same hypergradients, in one
// process on identical data (optional: built only when CMake finds Torch).
//
// Problem: logistic regression with one ℓ2 hyperparameter e^{λ_j} per feature, d features
// (d = dim λ), n training and n validation points, inner map Φ = w − η∇_wL, outer objective
// the validation logistic loss. Methods, each with t inner steps from w = 0:
//   ITD     reverse through the t steps (torch: the steps recorded with create_graph);
//   AID-FP  K iterations v ← ∂_wΦᵀv + ∇_wE, then h = ∂_λΦᵀv;
//   AID-CG  CG on (I − ∂_wΦᵀ)v = ∇_wE (at most K iterations, relative residual 1e-10);
// in torch the products ∂_wΦᵀv, ∂_λΦᵀv are double-backward vector-Jacobian products through
// a recorded ∇_wL (what hypertorch does). hyperad runs the problem twice: written with
// logistic_loss(matmul(X, w), y), the same ops as torch's, and with the fused
// linear_model_loss (one pass over X per gradient and per Hessian-vector product, where
// the composition takes two). Per hypergradient, at 1 and 2 threads
// (torch::set_num_threads and omp_set_num_threads): median wall times, and the medians of
// the per-rep ratios torch / hyperad of wall and of process CPU time (reps alternate
// between the libraries, so all see the same machine load). At 2 threads each timed call
// follows a 250 ms pause and an untimed call of the same library: libtorch's OpenBLAS
// threads spin for a while after a call and would take the core the other library's
// second thread needs, and after the pause the virtual machine's idle CPU must be woken
// up (hyperad's kernels back off to one thread when a thread starts over 3 ms late: the
// stalls column counts such events). Both libraries' results are compared (relative
// difference).
//
//   bench_torch_baseline [--reps N] [--n N] [--t T]    writes bench/results/torch_baseline.csv
#include <omp.h>
#include <torch/torch.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "bench_util.hpp"
#include "../logistic_fixture.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/hyperad.hpp"

namespace hb = hyperad::bilevel;
using hyperad::Tensor;

namespace {

const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor to_torch(const Tensor& t) {
  std::vector<double> v = t.to_vector();
  std::vector<std::int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.size(i));
  return torch::from_blob(v.data(), shape, f64).clone();
}

// The data (bench_fd_vs_aid's scales: rows of norm ≈ 1), in both libraries.
struct Data : hyperad::bench::Logistic {
  torch::Tensor tX, ty, tXv, tyv;
  double eta = 0;
  Data(std::int64_t n, std::int64_t d, std::uint64_t seed)
      : Logistic(n, d, seed,
                 {.features = 1.0 / std::sqrt(static_cast<double>(d)), .weights = 3.0, .noise = 0.5}) {
    tX = to_torch(X), ty = to_torch(y), tXv = to_torch(Xv), tyv = to_torch(yv);
    eta = step();
  }

  // The same losses in torch: mean log(1 + e^{−y·z}) = mean softplus(−y·z).
  torch::Tensor inner(const torch::Tensor& w, const torch::Tensor& lam) const {
    return torch::softplus(-ty * torch::mv(tX, w)).mean() + 0.5 * (lam.exp() * w.square()).sum();
  }
  torch::Tensor outer(const torch::Tensor& w) const { return torch::softplus(-tyv * torch::mv(tXv, w)).mean(); }
  // One recorded step Φ(w, λ) = w − η∇_wL (differentiable in w and λ).
  torch::Tensor phi(const torch::Tensor& w, const torch::Tensor& lam) const {
    torch::Tensor g = torch::autograd::grad({inner(w, lam)}, {w}, {}, true, true)[0];
    return w - eta * g;
  }
};

// ITD: t steps recorded with create_graph, then one backward pass to λ.
torch::Tensor torch_itd(const Data& D, const torch::Tensor& lam0, int t) {
  torch::Tensor lam = lam0.detach().requires_grad_(true);
  torch::Tensor w = torch::zeros({lam0.size(0)}, f64).requires_grad_(true);
  for (int i = 0; i < t; ++i) w = D.phi(w, lam);
  return torch::autograd::grad({D.outer(w)}, {lam})[0];
}

// t inner steps without keeping a graph.
torch::Tensor torch_inner_solve(const Data& D, const torch::Tensor& lam, int t) {
  torch::Tensor w = torch::zeros({lam.size(0)}, f64);
  for (int i = 0; i < t; ++i) {
    torch::Tensor wi = w.detach().requires_grad_(true);
    torch::Tensor g = torch::autograd::grad({D.inner(wi, lam)}, {wi})[0];
    w = (wi - D.eta * g).detach();
  }
  return w;
}

// AID after t steps: Φ recorded once at (w_t, λ); ∂_wΦᵀv and ∂_λΦᵀv by double backward.
torch::Tensor torch_aid(const Data& D, const torch::Tensor& lam0, int t, int K, bool cg) {
  torch::Tensor lam = lam0.detach().requires_grad_(true);
  torch::Tensor w = torch_inner_solve(D, lam0.detach(), t).requires_grad_(true);
  torch::Tensor phi = D.phi(w, lam);
  torch::Tensor b = torch::autograd::grad({D.outer(w)}, {w})[0];  // ∇_wE; ∇_λE = 0 here
  auto jt = [&](const torch::Tensor& v) { return torch::autograd::grad({phi}, {w}, {v}, true)[0]; };
  torch::Tensor v = torch::zeros_like(b);
  if (!cg) {
    for (int k = 0; k < K; ++k) v = jt(v) + b;
  } else {
    torch::Tensor r = b.clone(), p = r.clone();
    double rs = r.dot(r).item<double>();
    const double stop = 1e-20 * rs;  // ‖r‖ ≤ 1e-10‖b‖
    for (int k = 0; k < K && rs > stop; ++k) {
      torch::Tensor Ap = p - jt(p);
      const double alpha = rs / p.dot(Ap).item<double>();
      v = v + alpha * p;
      r = r - alpha * Ap;
      const double rs_new = r.dot(r).item<double>();
      p = r + (rs_new / rs) * p;
      rs = rs_new;
    }
  }
  return torch::autograd::grad({phi}, {lam}, {v})[0];
}

double rel_diff(const torch::Tensor& a, const Tensor& b) {
  torch::Tensor tb = to_torch(b);
  return ((a - tb).norm() / tb.norm()).item<double>();
}

struct Timing {
  double wall = 0, cpu = 0;  // ms; cpu: CPU time of the whole process (all threads)
};

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
}

template <class Fn>
Timing timed(Fn&& fn) {
  const double c0 = cpu_ms();
  const auto w0 = std::chrono::steady_clock::now();
  fn();
  return {std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count(), cpu_ms() - c0};
}

using hyperad::bench::median;

double median(const std::vector<Timing>& v, double Timing::*field) {
  std::vector<double> x;
  for (const Timing& t : v) x.push_back(t.*field);
  return median(x);
}

std::string g3(double v) { return fmt::format("{:.3g}", v); }

}  // namespace

int main(int argc, char** argv) {
  int reps = 5, t = 100;
  std::int64_t n = 2000;
  hyperad::bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--n", &n}, {"--t", &t}});
  const int K = t;
  std::vector<std::vector<std::string>> csv{{"d", "threads", "method", "hyperad_ms", "hyperad_fused_ms", "torch_ms",
                                             "wall_ratio", "cpu_ratio", "fused_wall_ratio", "fused_cpu_ratio",
                                             "rel_diff", "fused_rel_diff", "hyperad_linear_iters", "hyperad_stalls"}};
  fmt::print("## hyperad vs libtorch {} autograd: logistic regression, n = {}, t = K = {}, median of {}\n\n",
             TORCH_VERSION, n, t, reps);
  fmt::print("| d | threads | method | hyperad (ms) | fused (ms) | torch (ms) | torch / hyperad | torch / fused | "
             "(CPU) | rel. diff | stalls |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (std::int64_t d : {10, 100, 1000}) {
    Data D(n, d, 21);
    const hb::Problem p = D.problem(), pf = D.problem(true);
    hyperad::Generator g(4);
    const Tensor lam = -1.0 - rand({d}, g);
    const hyperad::TensorList l{lam};
    const torch::Tensor tlam = to_torch(lam);
    hb::ITD itd({.inner_steps = t});
    hb::AID fp({.inner_steps = t, .solver = hyperad::linsolve::richardson(), .linear_steps = K});
    hb::AID cg({.inner_steps = t, .solver = hyperad::linsolve::cg(), .linear_steps = K, .linear_tolerance = hyperad::Tolerance::relative(1e-10)});
    struct Pair {
      const char* name;
      hb::HypergradientMethod* ours;
      std::function<torch::Tensor()> theirs;
    };
    const std::vector<Pair> pairs{
        {"ITD", &itd, [&] { return torch_itd(D, tlam, t); }},
        {"AID-FP", &fp, [&] { return torch_aid(D, tlam, t, K, false); }},
        {"AID-CG", &cg, [&] { return torch_aid(D, tlam, t, K, true); }},
    };
    for (int threads : {1, 2}) {
      torch::set_num_threads(threads);
      omp_set_num_threads(threads);
      for (const Pair& m : pairs) {
        hb::Hypergradient h, hf;
        torch::Tensor th;
        // Paired reps (ours plain, ours fused, theirs) so that all see the same machine
        // load; ratios are medians of the per-rep ratios, of wall and of process CPU time.
        std::vector<Timing> ours, fused, theirs;
        std::vector<double> wall_ratio, cpu_ratio, fused_wall_ratio, fused_cpu_ratio;
        h = m.ours->hypergradient(p, l);  // warm-up
        hf = m.ours->hypergradient(pf, l);
        th = m.theirs();
        // At 2 threads: a pause, so that the other library's threads have stopped, then
        // an untimed call, so that the idle virtual CPUs are awake again (after a pause
        // the hypervisor takes milliseconds to resume the second one).
        const auto settle = [&](const auto& call) {
          if (threads == 1) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
          call();
        };
        const auto plain = [&] { h = m.ours->hypergradient(p, l); };
        const auto with_fused = [&] { hf = m.ours->hypergradient(pf, l); };
        const auto torch_call = [&] { th = m.theirs(); };
        const std::uint64_t stalls0 = hyperad::runtime::parallel_stalls();
        for (int r = 0; r < reps; ++r) {
          settle(plain);
          ours.push_back(timed(plain));
          settle(with_fused);
          fused.push_back(timed(with_fused));
          settle(torch_call);
          theirs.push_back(timed(torch_call));
          wall_ratio.push_back(theirs.back().wall / ours.back().wall);
          cpu_ratio.push_back(theirs.back().cpu / ours.back().cpu);
          fused_wall_ratio.push_back(theirs.back().wall / fused.back().wall);
          fused_cpu_ratio.push_back(theirs.back().cpu / fused.back().cpu);
        }
        const double ow = median(ours, &Timing::wall), fw = median(fused, &Timing::wall),
                     tw = median(theirs, &Timing::wall);
        const double wr = median(wall_ratio), cr = median(cpu_ratio), fwr = median(fused_wall_ratio),
                     fcr = median(fused_cpu_ratio);
        const double diff = rel_diff(th, h.grad[0]), fdiff = rel_diff(th, hf.grad[0]);
        const std::uint64_t stalls = hyperad::runtime::parallel_stalls() - stalls0;
        fmt::print("| {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f}× | {:.2f}× | {:.2f}× / {:.2f}× | {:.1e} | {} |\n",
                   d, threads, m.name, ow, fw, tw, wr, fwr, cr, fcr, std::max(diff, fdiff), stalls);
        csv.push_back({std::to_string(d), std::to_string(threads), m.name, g3(ow), g3(fw), g3(tw), g3(wr), g3(cr),
                       g3(fwr), g3(fcr), g3(diff), g3(fdiff), std::to_string(h.diagnostics.linear.iterations),
                       std::to_string(stalls)});
        std::fflush(stdout);
      }
    }
  }
  hyperad::bench::write_csv(hyperad::bench::results_path("torch_baseline.csv"), csv);
  return 0;
}
