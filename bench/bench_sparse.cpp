// Sparse text data (issue 20).
//
//   --part density  AID-CG hypergradient of multinomial logistic regression (no intercept)
//                   with a log-ℓ2 strength per term, the data as a CSR matrix against the
//                   same data dense, each with the fused softmax_model op and with the
//                   composition cross_entropy(sparse_matmul / matmul), on Zipf corpora of
//                   2000 documents × 2000 terms at densities 1e-3 … 0.5: the median time of
//                   each, interleaved, and the ratio dense fused / sparse fused (where dense
//                   wins).
//   --part wordnet  text_hpo on WordNet's glosses (33,496 terms, 45 classes): load time,
//                   one Φ, one AID-CG hypergradient (t, K), peak RSS against the bytes of the
//                   non-zeros and of the dense matrix, and a directional finite-difference
//                   check of the hypergradient on 20 random terms (inner solves to a step
//                   of 10^-tol-exp, default 1e-10; --fd off skips it). --model fused (the
//                   default) or composed: text_hpo's cross-entropy.
//   --part all      both (default).
//
// build/bench/bench/bench_sparse [--part S] [--reps N] [--t N] [--K N] [--tol-exp N] [--fd on|off]
//                                [--model fused|composed]
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "hyperad/bilevel.hpp"
#include "hyperad/problems/data.hpp"
#include "hyperad/problems/registry.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;
using namespace hyperad::problems;

namespace {

// VmHWM (peak resident set) or VmRSS of this process, in MiB.
double status_mib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  return 0;
}

// text_hpo's objective without intercept on one dataset split, X sparse or dense, the
// cross-entropy fused or composed.
Problem classifier(const SparseSplits& s, bool sparse, bool fused, double step) {
  const CsrMatrix X = s.train.features, Xv = s.validation.features;
  const Tensor Xd = sparse ? Tensor() : X.to_dense(), Xvd = sparse ? Tensor() : Xv.to_dense();
  const std::vector<std::int64_t> y = s.train.labels, yv = s.validation.labels;
  const std::int64_t d = X.cols(), k = s.train.num_classes;
  auto ce = [sparse, fused](const CsrMatrix& x, const Tensor& xd, const Tensor& W, const std::vector<std::int64_t>& l) {
    if (fused) return sparse ? softmax_model_loss(x, W, l) : softmax_model_loss(xd, W, l);
    return cross_entropy(sparse ? sparse_matmul(x, W) : matmul(xd, W), l);
  };
  return Problem::gradient_descent(
      [=](const TensorList& w, const TensorList& lam) {
        return ce(X, Xd, w[0], y) + 0.5 * sum(unsqueeze(exp(lam[0]), 1) * square(w[0]));
      },
      step, [=](const TensorList& w, const TensorList&) { return ce(Xv, Xvd, w[0], yv); }, {zeros({d, k})});
}

void density_part(int reps, int t, int K) {
  fmt::print("AID-CG hypergradient, t = {}, K = {}, 2000 documents × 2000 terms, 10 classes (60 % training)\n", t, K);
  fmt::print("{:>10} {:>9} {:>13} {:>13} {:>13} {:>13} {:>13}\n", "density", "nnz/doc", "sparse fused", "sparse comp.",
             "dense fused", "dense comp.", "dense/sparse");
  std::vector<std::vector<std::string>> rows{{"density", "nnz_per_doc", "sparse_fused_ms", "sparse_composed_ms",
                                              "dense_fused_ms", "dense_composed_ms", "dense_over_sparse_fused"}};
  for (const std::int64_t length : {2, 7, 25, 90, 400, 1500, 6000}) {
    const SparseDataset ds = zipf_text(
        {.documents = 2000, .terms = 2000, .classes = 10, .min_length = length, .max_length = 2 * length, .seed = 1});
    const SparseSplits s = split(ds, {0.6, 0.2, 0.2}, 0, true);
    const double density = static_cast<double>(ds.features.nnz()) / (2000.0 * 2000.0);
    AID aid({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = K});
    // Sparse fused, sparse composed, dense fused, dense composed.
    const Problem problems[] = {classifier(s, true, true, 0.5), classifier(s, true, false, 0.5),
                                classifier(s, false, true, 0.5), classifier(s, false, false, 0.5)};
    const TensorList lambda{full({2000}, -4.0)};
    // The same result from all four, then interleaved timings.
    const TensorList h0 = aid.hypergradient(problems[0], lambda).grad;
    double diff = 0;
    for (int k = 1; k < 4; ++k) diff = std::max(diff, list::relative_error(aid.hypergradient(problems[k], lambda).grad, h0));
    std::vector<double> times[4];
    for (int r = 0; r < reps; ++r)
      for (int k = 0; k < 4; ++k) times[k].push_back(bench::elapsed_ms([&] { (void)aid.hypergradient(problems[k], lambda); }));
    double ms[4];
    for (int k = 0; k < 4; ++k) ms[k] = bench::median(times[k]);
    fmt::print("{:>10.2g} {:>9.1f} {:>13.1f} {:>13.1f} {:>13.1f} {:>13.1f} {:>13.2f}   (largest difference between the "
               "four hypergradients: {:.1e})\n",
               density, density * 2000, ms[0], ms[1], ms[2], ms[3], ms[2] / ms[0], diff);
    std::fflush(stdout);
    rows.push_back({fmt::format("{:.3g}", density), fmt::format("{:.1f}", density * 2000), fmt::format("{:.2f}", ms[0]),
                    fmt::format("{:.2f}", ms[1]), fmt::format("{:.2f}", ms[2]), fmt::format("{:.2f}", ms[3]),
                    fmt::format("{:.3f}", ms[2] / ms[0])});
  }
  bench::write_csv(bench::results_path("sparse_density.csv"), rows);
}

void wordnet_part(int t, int K, double tol, bool fd_check, const std::string& model) {
  const double rss0 = status_mib("VmRSS");
  Instance inst;
  const double load_ms = bench::elapsed_ms([&] { inst = make_problem("text_hpo", {.options = {{"model", model}}}); });
  fmt::print("{}\nbuilt in {:.0f} ms\n", inst.summary, load_ms);
  std::fflush(stdout);
  const StochasticProblem& sp = *inst.stochastic;
  const std::int64_t n = sp.n_inner(), d = inst.lambda0[0].numel();
  const TensorList lambda = inst.lambda0;

  const TensorList w0 = inst.problem.initial_state();
  std::vector<double> phi;
  for (int r = 0; r < 5; ++r)
    phi.push_back(bench::elapsed_ms([&] {
      NoGradGuard off;
      (void)inst.problem.phi(w0, lambda);
    }));
  fmt::print("one Φ (gradient step, no recording): {:.1f} ms (median of 5)\n", bench::median(phi));

  AID aid({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = K});
  Hypergradient h;
  const double h_ms = bench::elapsed_ms([&] { h = aid.hypergradient(inst.problem, lambda); });
  const double peak = status_mib("VmHWM");
  fmt::print("AID-CG, t = {}, K = {}: {:.1f} s; peak RSS {:.0f} MiB (before building: {:.0f} MiB); a dense training "
             "matrix alone would be {:.0f} MiB\n",
             t, K, h_ms / 1000, peak, rss0, static_cast<double>(n) * static_cast<double>(d) * 8 / (1 << 20));

  std::fflush(stdout);
  if (!fd_check) return;

  // Directional check: h·v against a central difference of f along v, v the hypergradient
  // restricted to 20 random terms (the direction of largest change within them). w* is
  // solved once from w0; the solves at λ ± εv start from it.
  const InnerOptions solve{.max_iterations = 20000, .tolerance = Tolerance::absolute(tol)};
  InnerResult star;
  const double star_ms = bench::elapsed_ms([&] { star = solve_inner(inst.problem, lambda, w0, solve); });
  AID cg({.solver = linsolve::cg(), .linear_steps = 5000, .linear_tolerance = Tolerance::relative(1e-11)});
  Hypergradient hx;
  const double hx_ms = bench::elapsed_ms([&] { hx = cg.hypergradient_at(inst.problem, lambda, star.state); });
  fmt::print("w*: {} accelerated steps to a step of {:.0e} ({:.0f} s); AID-CG at w* to 1e-11: {} CG steps ({:.0f} s)\n",
             star.steps, tol, star_ms / 1000, hx.diagnostics.linear.iterations, hx_ms / 1000);
  std::fflush(stdout);
  const std::vector<double> g = list::flatten(hx.grad);
  Generator gen(3);
  std::vector<double> v(g.size(), 0.0);
  for (int k = 0; k < 20; ++k) {
    const auto j = static_cast<std::size_t>(gen.below(g.size()));
    v[j] = g[j];
  }
  double nv = 0;
  for (double x : v) nv += x * x;
  nv = std::sqrt(nv);
  for (double& x : v) x /= nv;
  double hv = 0;
  for (std::size_t j = 0; j < g.size(); ++j) hv += g[j] * v[j];
  const TensorList dir = list::unflatten(v, lambda);
  const double eps = 0.02;
  TensorList plus = list::clone(lambda), minus = list::clone(lambda);
  list::axpy(eps, dir, plus);
  list::axpy(-eps, dir, minus);
  const auto f_at = [&](const TensorList& l) {
    const InnerResult r = solve_inner(inst.problem, l, star.state, solve);
    NoGradGuard off;
    return inst.problem.outer(r.state, l).item();
  };
  const double fd = (f_at(plus) - f_at(minus)) / (2 * eps);
  fmt::print("directional check on 20 random terms (ε = {}): h·v = {:.6e}, finite difference = {:.6e}, relative "
             "difference {:.1e}; peak RSS now {:.0f} MiB\n",
             eps, hv, fd, std::abs(hv - fd) / std::abs(fd), status_mib("VmHWM"));
  bench::write_csv(bench::results_path("sparse_wordnet.csv"),
                   {{"documents", "terms", "t", "K", "hypergradient_s", "peak_rss_mib", "hv", "fd"},
                    {std::to_string(n), std::to_string(d), std::to_string(t), std::to_string(K),
                     fmt::format("{:.2f}", h_ms / 1000), fmt::format("{:.0f}", peak), fmt::format("{:.8e}", hv),
                     fmt::format("{:.8e}", fd)}});
}

}  // namespace

int main(int argc, char** argv) {
  std::string part = "all";
  std::string model = "fused";
  int reps = 5, t = 100, K = 50, tol_exp = 10;
  std::string fd = "on";
  bench::parse_flags(argc, argv,
                     {{"--part", &part}, {"--reps", &reps}, {"--t", &t}, {"--K", &K}, {"--tol-exp", &tol_exp},
                      {"--fd", &fd}, {"--model", &model}});
  if (part != "all" && part != "density" && part != "wordnet") {
    fmt::print(stderr, "bench_sparse: --part must be all, density or wordnet, got '{}'\n", part);
    return 2;
  }
  if (part != "wordnet") density_part(reps, 50, 50);
  if (part != "density") wordnet_part(t, K, std::pow(10.0, -tol_exp), fd != "off", model);
  return 0;
}
