// hyperad against libtorch's sparse tensors on the text_hpo hypergradient, in one process on
// identical data (optional: built only when CMake finds Torch).
//
// Problem: multinomial logistic regression without intercept on a sparse tf-idf corpus
// (a Zipf corpus, or WordNet's glosses with --dataset wordnet), one ℓ2 strength e^{λ_j} per
// term: inner L(W; λ) = mean CE(XW, y) + ½ Σ_jc e^{λ_j} W_jc², Φ = W − ηL's gradient,
// outer E = the validation cross-entropy. AID-CG with t inner steps from W = 0 and K CG
// steps from v = 0 (no tolerance: both run exactly t and K). libtorch: X a sparse COO
// tensor (and CSR, when its products support the double backward), torch::mm, the
// products ∂_WΦᵀv and ∂_λΦᵀv by double backward through a recorded ∇_WL (what hypertorch
// does). hyperad: the fused softmax_model op on the CSR matrix, and the composition
// cross_entropy(sparse_matmul(X, W), y). Reps alternate between the implementations;
// reported: median wall times per hypergradient, the median of the per-rep ratios
// torch / hyperad, and the largest relative difference of the hypergradients.
//
//   bench_sparse_torch [--dataset zipf|wordnet] [--documents N] [--terms N] [--t T] [--K K]
//                      [--reps N] [--threads N]
// writes bench/results/sparse_torch_<dataset>_<threads>t.csv
#include <omp.h>
#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <thread>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel.hpp"
#include "hyperad/problems/data.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

using Labels = std::vector<std::int64_t>;

torch::Tensor dense_to_torch(const Tensor& t) {
  std::vector<double> v = t.to_vector();
  std::vector<std::int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.size(i));
  return torch::from_blob(v.data(), shape, torch::kFloat64).clone();
}

torch::Tensor labels_to_torch(const Labels& y) {
  return torch::from_blob(const_cast<std::int64_t*>(y.data()), {static_cast<std::int64_t>(y.size())}, torch::kInt64)
      .clone();
}

// The matrix as a coalesced COO tensor, or in CSR layout.
torch::Tensor sparse_to_torch(const CsrMatrix& x, bool csr) {
  const auto nnz = x.nnz();
  std::vector<std::int64_t> rows(static_cast<std::size_t>(nnz));
  for (std::int64_t r = 0; r < x.rows(); ++r)
    for (std::int64_t k = x.indptr()[static_cast<std::size_t>(r)]; k < x.indptr()[static_cast<std::size_t>(r) + 1]; ++k)
      rows[static_cast<std::size_t>(k)] = r;
  auto i64 = [](const std::vector<std::int64_t>& v) {
    return torch::from_blob(const_cast<std::int64_t*>(v.data()), {static_cast<std::int64_t>(v.size())}, torch::kInt64)
        .clone();
  };
  const torch::Tensor values = dense_to_torch(x.values());
  if (csr) return torch::sparse_csr_tensor(i64(x.indptr()), i64(x.indices()), values, {x.rows(), x.cols()},
                                           torch::TensorOptions().dtype(torch::kFloat64));
  return torch::sparse_coo_tensor(torch::stack({i64(rows), i64(x.indices())}), values, {x.rows(), x.cols()})
      .coalesce();
}

struct Data {
  CsrMatrix X, Xv;
  Labels y, yv;
  std::int64_t C;
  double step;
};

// ---- hyperad -------------------------------------------------------------------------

Problem hyperad_problem(const Data& d, bool fused) {
  auto ce = [fused](const CsrMatrix& x, const Tensor& W, const Labels& y) {
    return fused ? softmax_model_loss(x, W, y) : cross_entropy(sparse_matmul(x, W), y);
  };
  return Problem::gradient_descent(
      [d, ce](const TensorList& w, const TensorList& lam) {
        return ce(d.X, w[0], d.y) + 0.5 * sum(unsqueeze(exp(lam[0]), 1) * square(w[0]));
      },
      d.step, [d, ce](const TensorList& w, const TensorList&) { return ce(d.Xv, w[0], d.yv); },
      {zeros({d.X.cols(), d.C})});
}

// ---- libtorch --------------------------------------------------------------------------

struct TorchProblem {
  torch::Tensor X, Xv, y, yv;
  double step;

  torch::Tensor inner(const torch::Tensor& W, const torch::Tensor& lam) const {
    return torch::nn::functional::cross_entropy(torch::mm(X, W), y) +
           0.5 * (lam.exp().unsqueeze(1) * W.square()).sum();
  }
  torch::Tensor outer(const torch::Tensor& W) const { return torch::nn::functional::cross_entropy(torch::mm(Xv, W), yv); }
};

// AID-CG: t gradient steps, then K CG steps on (I − ∂_WΦᵀ)v = ∇_WE, then h = ∂_λΦᵀv.
torch::Tensor torch_aid_cg(const TorchProblem& p, const torch::Tensor& lam0, std::int64_t d, std::int64_t C, int t,
                           int K) {
  torch::Tensor W = torch::zeros({d, C}, torch::kFloat64);
  for (int s = 0; s < t; ++s) {
    torch::Tensor w = W.detach().requires_grad_();
    const torch::Tensor g = torch::autograd::grad({p.inner(w, lam0)}, {w})[0];
    W = (w - p.step * g).detach();
  }
  torch::Tensor w = W.detach().requires_grad_(), lam = lam0.detach().requires_grad_();
  const torch::Tensor gE = torch::autograd::grad({p.outer(w)}, {w})[0];
  const torch::Tensor g = torch::autograd::grad({p.inner(w, lam)}, {w}, {}, /*retain_graph=*/true,
                                                /*create_graph=*/true)[0];
  const torch::Tensor phi = w - p.step * g;
  auto jt = [&](const torch::Tensor& v) {  // ∂_WΦᵀv
    return torch::autograd::grad({phi}, {w}, {v}, /*retain_graph=*/true)[0];
  };
  torch::Tensor v = torch::zeros_like(gE), r = gE.clone(), q = r.clone();
  double rr = r.square().sum().item<double>();
  for (int k = 0; k < K && rr > 0; ++k) {
    const torch::Tensor Aq = q - jt(q);
    const double alpha = rr / (q * Aq).sum().item<double>();
    v = v + alpha * q;
    r = r - alpha * Aq;
    const double rr_new = r.square().sum().item<double>();
    q = r + (rr_new / rr) * q;
    rr = rr_new;
  }
  return torch::autograd::grad({phi}, {lam}, {v})[0];
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dataset = "zipf";
  int documents = 6000, terms = 20000, t = 20, K = 20, reps = 5, threads = 1;
  bench::parse_flags(argc, argv,
                     {{"--dataset", &dataset}, {"--documents", &documents}, {"--terms", &terms}, {"--t", &t},
                      {"--K", &K}, {"--reps", &reps}, {"--threads", &threads}});
  torch::set_num_threads(threads);
  omp_set_num_threads(threads);
  const problems::SparseDataset ds =
      dataset == "wordnet" ? problems::wordnet_glosses()
                           : problems::zipf_text({.documents = documents, .terms = terms, .classes = 20, .seed = 1});
  const problems::SparseSplits s = problems::split(ds, {0.6, 0.2, 0.2}, 0, true);
  // tf-idf rows have unit norm: the cross-entropy's curvature is at most ½, the penalty's 1.
  const Data data{s.train.features, s.validation.features, s.train.labels, s.validation.labels,
                  s.train.num_classes, 1.0 / 1.5};
  const std::int64_t d = data.X.cols(), C = data.C;
  fmt::print("{}: {} training / {} validation documents, {} terms, {} classes, {} non-zeros (density {:.2g}); "
             "AID-CG t = {}, K = {}, {} thread(s), libtorch {}\n",
             dataset, data.X.rows(), data.Xv.rows(), d, C, data.X.nnz(),
             double(data.X.nnz()) / double(data.X.rows() * d), t, K, threads, TORCH_VERSION);

  const TensorList lambda{full({d}, -4.0)};
  const torch::Tensor tlam = dense_to_torch(lambda[0]);
  AID aid({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = K, .probe_symmetry = false});
  const Problem fused = hyperad_problem(data, true), composed = hyperad_problem(data, false);

  struct Variant {
    std::string name;
    std::function<std::vector<double>()> run;
    std::vector<double> ms, ratio;
    std::vector<double> result;
  };
  std::vector<Variant> vs;
  vs.push_back({"hyperad fused", [&] { return list::flatten(aid.hypergradient(fused, lambda).grad); }, {}, {}, {}});
  vs.push_back({"hyperad composed", [&] { return list::flatten(aid.hypergradient(composed, lambda).grad); }, {}, {}, {}});
  for (bool csr : {false, true}) {
    const TorchProblem tp{sparse_to_torch(data.X, csr), sparse_to_torch(data.Xv, csr), labels_to_torch(data.y),
                          labels_to_torch(data.yv), data.step};
    const std::string name = csr ? "libtorch CSR" : "libtorch COO";
    auto run = [tp, tlam, d, C, t, K] {
      const torch::Tensor h = torch_aid_cg(tp, tlam, d, C, t, K);
      torch::Tensor c = h.contiguous();
      return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    };
    try {
      vs.push_back({name, run, {}, {}, run()});
    } catch (const std::exception& e) {
      fmt::print("{}: not measured, libtorch refuses: {}\n", name, std::string(e.what()).substr(0, 200));
    }
  }
  for (auto& v : vs)
    if (v.result.empty()) v.result = v.run();
  for (int r = 0; r < reps; ++r)
    for (auto& v : vs) {
      if (threads > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250));  // other library's threads idle
      v.ms.push_back(bench::elapsed_ms([&] { (void)v.run(); }));
    }
  std::vector<std::vector<std::string>> rows{{"implementation", "median_ms", "ratio_to_hyperad_fused", "rel_diff"}};
  fmt::print("{:<18} {:>12} {:>22} {:>24}\n", "implementation", "median ms", "÷ hyperad fused (med.)",
             "hypergradient rel. diff.");
  for (auto& v : vs) {
    std::vector<double> ratio;
    for (int r = 0; r < reps; ++r) ratio.push_back(v.ms[static_cast<std::size_t>(r)] / vs[0].ms[static_cast<std::size_t>(r)]);
    const double diff = max_rel_diff(v.result, vs[0].result);
    fmt::print("{:<18} {:>12.1f} {:>22.2f} {:>24.1e}\n", v.name, bench::median(v.ms), bench::median(ratio), diff);
    rows.push_back({v.name, fmt::format("{:.2f}", bench::median(v.ms)), fmt::format("{:.3f}", bench::median(ratio)),
                    fmt::format("{:.2e}", diff)});
  }
  bench::write_csv(bench::results_path(fmt::format("sparse_torch_{}_{}t.csv", dataset, threads)), rows);
  return 0;
}
