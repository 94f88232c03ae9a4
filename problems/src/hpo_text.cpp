// text_hpo: multinomial logistic regression on sparse tf-idf text with one ℓ2 strength e^λ
// per term (or per term and class) — the ICML 2020 paper's 20-newsgroups experiment, on
// WordNet's glosses (45 classes, 33,496 terms) or a synthetic Zipf corpus.
//   inner  L(W, b; λ) = mean_i CE(x_iᵀW + (b, 0), y_i) + ½ Σ_jk e^{λ} W_jk²   (training)
//   outer  E(W, b)    = mean_i CE(x_iᵀW + (b, 0), y_i)                       (validation)
// X stays a CSR matrix throughout: X·W and, in every backward, Xᵀ·G are sparse products, so
// time and memory follow the non-zeros (a dense WordNet matrix would be 31 GB). The last
// class's bias is 0, as in `multinomial`, so that ∇²L is non-singular. The cross-entropy is
// the fused softmax_model op on [X 1] and [W; (b, 0)] (model=fused, the default), or
// cross_entropy of sparse_matmul (model=composed), the same numbers to rounding.
#include <cmath>

#include <fmt/format.h>

#include "families.hpp"
#include "hpo_common.hpp"
#include "metrics.hpp"

namespace hyperad::problems::detail {

namespace {

using namespace hyperad::bilevel;

const char* const kName = "text_hpo";
// The box of every log-strength. The upper end bounds the curvature, hence the step size;
// tf-idf rows have unit norm, so the data's own curvature is at most 1 and below e^0.
constexpr double kLamMin = -12.0, kLamMax = 0.0;

struct Parts {
  SparseDataset train, validation, test;
};

SparseDataset corpus(const ProblemConfig& c, const std::string& dataset) {
  const bool zipf = dataset == "zipf";
  if (!zipf && c.options.count("terms"))
    hpo::reject_option(kName, "terms", fmt::format(" applies to dataset zipf only, not {}", dataset));
  if (c.small)  // tiny, for finite differences: 90 documents, 12 terms, 3 classes, whatever the dataset
    return zipf_text({.documents = 90, .terms = 12, .classes = 3, .min_length = 3, .max_length = 8, .seed = c.seed});
  if (zipf)
    return zipf_text({.documents = 6000,
                      .terms = option_int(c, kName, "terms", 20000, 20, 10'000'000),
                      .classes = 20,
                      .seed = c.seed});
  return wordnet_glosses();
}

Parts load(const ProblemConfig& c, const std::string& dataset) {
  SparseDataset ds = corpus(c, dataset);
  const std::int64_t documents = option_int(c, kName, "documents", 0, 0, 100'000'000);
  if (documents > 0 && documents < ds.size()) {  // a stratified sample of the corpus
    const double keep = static_cast<double>(documents) / static_cast<double>(ds.size());
    ds = split(ds, {keep, 1 - keep, 0}, c.seed ^ 0x5a5a, true).train;
  }
  SparseSplits s = split(ds, {0.6, 0.2, 0.2}, c.seed, true);
  if (s.train.size() < 2 || s.validation.size() < 1)
    hpo::reject_option(kName, "documents",
                       fmt::format("={} leaves {} training and {} validation documents (of {} classes, each split on "
                                   "its own); ask for more", documents, s.train.size(), s.validation.size(),
                                   ds.num_classes));
  return {std::move(s.train), std::move(s.validation), std::move(s.test)};
}

// Largest eigenvalue of [X 1]ᵀ[X 1]/n by power iteration on sparse products (+5 %).
double sparse_gram_max_eigenvalue(const CsrMatrix& x) {
  NoGradGuard off;
  const auto n = static_cast<double>(x.rows());
  Generator gen(17);
  Tensor v = randn({x.cols()}, gen), c = ones({1});
  double lam = 0;
  for (int k = 0; k < 60; ++k) {
    const Tensor xv = sparse_matmul(x, v) + c;
    const Tensor u = sparse_matmul(x, xv, true) / n, uc = sum(xv, {0}, true) / n;
    const double scale = std::sqrt(squared_norm(u).item() + squared_norm(uc).item());
    lam = scale / std::sqrt(squared_norm(v).item() + squared_norm(c).item());
    v = u / scale;
    c = uc / scale;
  }
  return 1.05 * lam;
}

// x W + (b, 0).
Tensor logits(const CsrMatrix& x, const TensorList& w) { return sparse_matmul(x, w[0]) + pad(w[1], 0, 0, 1); }

// [x 1]: the intercept as a last column of ones, for the fused op.
CsrMatrix with_ones_column(const CsrMatrix& x) {
  std::vector<std::int64_t> indptr{0}, indices;
  indices.reserve(static_cast<std::size_t>(x.nnz() + x.rows()));
  const std::vector<double> v = x.values().to_vector();
  std::vector<double> values;
  values.reserve(indices.capacity());
  for (std::int64_t r = 0; r < x.rows(); ++r) {
    for (std::int64_t k = x.indptr()[static_cast<std::size_t>(r)]; k < x.indptr()[static_cast<std::size_t>(r) + 1]; ++k) {
      indices.push_back(x.indices()[static_cast<std::size_t>(k)]);
      values.push_back(v[static_cast<std::size_t>(k)]);
    }
    indices.push_back(x.cols());
    values.push_back(1.0);
    indptr.push_back(static_cast<std::int64_t>(indices.size()));
  }
  const auto nnz = static_cast<std::int64_t>(values.size());
  return CsrMatrix(x.rows(), x.cols() + 1, std::move(indptr), std::move(indices), tensor(values, {nnz}, x.dtype()));
}

// [W; (b, 0)], the weights of [x 1].
Tensor stacked(const TensorList& w) { return concat({w[0], unsqueeze(pad(w[1], 0, 0, 1), 0)}, 0); }

// Mean cross-entropy of the model on rows `batch` of x (x1 = [x 1]), fused or composed.
Tensor data_loss(bool fused, const CsrMatrix& x, const CsrMatrix& x1, const std::vector<std::int64_t>& y,
                 const TensorList& w, const Batch& batch) {
  if (fused) return softmax_model_loss(rows(x1, batch), stacked(w), pick(y, batch));
  return cross_entropy(logits(rows(x, batch), w), pick(y, batch));
}

Instance make(const ProblemConfig& c) {
  const std::string dataset = c.dataset.empty() ? "wordnet" : c.dataset;
  const std::string reg = option_string(c, "reg", "per-term");
  if (reg != "per-term" && reg != "per-term-class")
    hpo::reject_option(kName, "reg", fmt::format("='{}' is not one of: per-term, per-term-class", reg));
  const bool per_class = reg == "per-term-class";
  const std::string model = option_string(c, "model", "fused");
  if (model != "fused" && model != "composed")
    hpo::reject_option(kName, "model", fmt::format("='{}' is not one of: fused, composed", model));
  const bool fused = model == "fused";
  const double lambda0 = option_double(c, kName, "lambda0", -6.0, kLamMin, kLamMax);
  const Parts parts = load(c, dataset);

  const CsrMatrix X = parts.train.features, Xv = parts.validation.features, Xt = parts.test.features;
  const CsrMatrix X1 = fused ? with_ones_column(X) : CsrMatrix(), Xv1 = fused ? with_ones_column(Xv) : CsrMatrix();
  const std::vector<std::int64_t> y = parts.train.labels, yv = parts.validation.labels, yt = parts.test.labels;
  const std::int64_t d = X.cols(), k = parts.train.num_classes;

  // The softmax cross-entropy's Hessian in the logits is ⪯ ½ I.
  const double step = 1.0 / (0.5 * sparse_gram_max_eigenvalue(X) + std::exp(kLamMax));

  auto inner = [X, X1, y, per_class, fused](const TensorList& w, const TensorList& lam, const Batch& xi) {
    const Tensor strength = per_class ? exp(lam[0]) : unsqueeze(exp(lam[0]), 1);  // [d, C] or [d, 1]
    return data_loss(fused, X, X1, y, w, xi) + 0.5 * sum(strength * square(w[0]));
  };
  auto outer = [Xv, Xv1, yv, fused](const TensorList& w, const TensorList&, const Batch& zeta) {
    return data_loss(fused, Xv, Xv1, yv, w, zeta);
  };
  StochasticProblem sp =
      StochasticProblem::gradient_descent(inner, step, X.rows(), outer, Xv.rows(), {zeros({d, k}), zeros({k - 1})});

  Instance inst{.problem = hpo::accelerated(sp.full_batch())};
  inst.summary = fmt::format(
      "{}: {} train / {} validation / {} test documents, {} terms ({} non-zeros in training, density {:.2g}), "
      "{} classes; w: {}×{} weights + {} biases; λ: {} log ℓ2 strengths ({}) in [{}, {}]; inner step {:.3g}, "
      "inner solves by restarted Nesterov; {} cross-entropy",
      c.small ? "zipf (small)" : dataset, X.rows(), Xv.rows(), Xt.rows(), d, X.nnz(),
      static_cast<double>(X.nnz()) / static_cast<double>(std::max<std::int64_t>(1, X.rows() * d)), k, d, k, k - 1,
      per_class ? d * k : d, reg, kLamMin, kLamMax, step, model);
  inst.lambda0 = {per_class ? full({d, k}, lambda0) : full({d}, lambda0)};
  inst.projections = {Projection::box(kLamMin, kLamMax)};
  inst.stochastic = sp;
  auto scorer = [](const CsrMatrix& x, const std::vector<std::int64_t>& labels) -> hpo::Scorer {
    return [x, labels](const TensorList& w) {
      const Tensor z = logits(x, w);
      return hpo::Score{cross_entropy(z, labels).item(), multiclass_accuracy(z, labels)};
    };
  };
  // Retraining to a step of 1e-6 (1e-10 on the small version): accuracy and loss are
  // settled far above 1e-10, which would take thousands of passes over the corpus.
  hpo::set_classification_metrics(inst, scorer(Xv, yv), scorer(Xt, yt), 5000, c.small ? 1e-10 : 1e-6);
  inst.defaults = {.method = "aid-cg",
                   .inner_steps = 100,
                   .linear_steps = 50,
                   .outer_steps = 20,
                   .outer_step_size = 0.3,
                   .update = OuterUpdate::adam,
                   .batch_size = std::min<std::int64_t>(256, X.rows())};
  return inst;
}

}  // namespace

ProblemInfo text_hpo_problem() {
  return {.name = kName,
          .family = "hyperparameters",
          .summary = "multinomial logistic regression on sparse tf-idf text, an ℓ2 strength e^λ per term",
          .datasets = {"wordnet", "zipf"},
          .options = {{"reg", "per-term", "per-term (λ has one entry per term) or per-term-class (one per term and class)"},
                      {"lambda0", "-6", "initial log ℓ2 strength, in [-12, 0]"},
                      {"model", "fused", "fused (the softmax_model op) or composed (cross_entropy of sparse_matmul)"},
                      {"documents", "0", "use a stratified sample of about this many documents (0: all)"},
                      {"terms", "20000", "zipf only: the vocabulary size (at least 20, one topic term per class)"}},
          .make = make};
}

}  // namespace hyperad::problems::detail
