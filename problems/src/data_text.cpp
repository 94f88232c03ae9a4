// Sparse text features: tf-idf weighting of term counts and the synthetic Zipf corpus.
#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "data_text.hpp"
#include "hyperad/problems/data.hpp"

namespace hyperad::problems {

CsrMatrix tfidf(const CsrMatrix& counts) {
  const std::vector<double> c = counts.values().to_vector();
  const std::vector<std::int64_t>& indptr = counts.indptr();
  const std::vector<std::int64_t>& cols = counts.indices();
  std::vector<double> df(static_cast<std::size_t>(counts.cols()), 0.0);
  for (std::size_t k = 0; k < c.size(); ++k) {
    if (!(c[k] >= 0))
      throw ValueError(fmt::format("tfidf: count {} at entry {} (row {}) is not a non-negative number", c[k], k,
                                   std::upper_bound(indptr.begin(), indptr.end(), static_cast<std::int64_t>(k)) -
                                       indptr.begin() - 1));
    if (c[k] > 0) df[static_cast<std::size_t>(cols[k])] += 1;
  }
  const double n = static_cast<double>(counts.rows());
  for (double& x : df) x = std::log((1 + n) / (1 + x)) + 1;  // df becomes idf

  std::vector<double> v(c.size());
  for (std::int64_t r = 0; r < counts.rows(); ++r) {
    const auto lo = static_cast<std::size_t>(indptr[static_cast<std::size_t>(r)]);
    const auto hi = static_cast<std::size_t>(indptr[static_cast<std::size_t>(r) + 1]);
    double norm2 = 0;
    for (std::size_t k = lo; k < hi; ++k) {
      v[k] = c[k] * df[static_cast<std::size_t>(cols[k])];
      norm2 += v[k] * v[k];
    }
    const double scale = norm2 > 0 ? 1 / std::sqrt(norm2) : 0;
    for (std::size_t k = lo; k < hi; ++k) v[k] *= scale;
  }
  return CsrMatrix(counts.rows(), counts.cols(), indptr, cols,
                   tensor(v, {static_cast<std::int64_t>(v.size())}, counts.dtype()));
}

namespace detail {

void CountRows::add_document(std::vector<std::int64_t>& terms) {
  std::sort(terms.begin(), terms.end());
  for (std::size_t k = 0; k < terms.size();) {
    std::size_t end = k;
    while (end < terms.size() && terms[end] == terms[k]) ++end;
    columns.push_back(terms[k]);
    counts.push_back(static_cast<double>(end - k));
    k = end;
  }
  indptr.push_back(static_cast<std::int64_t>(columns.size()));
}

CsrMatrix CountRows::matrix(std::int64_t cols, Dtype dtype) && {
  const auto rows = static_cast<std::int64_t>(indptr.size()) - 1;
  const auto nnz = static_cast<std::int64_t>(counts.size());
  return CsrMatrix(rows, cols, std::move(indptr), std::move(columns), tensor(counts, {nnz}, dtype));
}

}  // namespace detail

namespace {

// Samples ranks 0 … m − 1 with P(r) ∝ 1 / (r + 1)^s by inverting the cumulative sum.
class ZipfSampler {
 public:
  ZipfSampler(std::int64_t m, double s) : cdf_(static_cast<std::size_t>(m)) {
    double total = 0;
    for (std::int64_t r = 0; r < m; ++r) cdf_[static_cast<std::size_t>(r)] = total += std::pow(r + 1.0, -s);
  }
  std::int64_t operator()(Generator& gen) const {
    const double u = gen.uniform() * cdf_.back();
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return std::min<std::int64_t>(it - cdf_.begin(), static_cast<std::int64_t>(cdf_.size()) - 1);
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace

SparseDataset zipf_text(const ZipfTextOptions& o) {
  const auto bad = [](const std::string& why) { throw ValueError("zipf_text: " + why); };
  if (o.documents < 1) bad(fmt::format("documents = {}, expected at least 1", o.documents));
  if (o.classes < 1) bad(fmt::format("classes = {}, expected at least 1", o.classes));
  if (o.terms < o.classes) bad(fmt::format("terms = {} is fewer than classes = {} (each class needs a topic term)", o.terms, o.classes));
  if (o.min_length < 1 || o.max_length < o.min_length)
    bad(fmt::format("lengths [{}, {}]: expected 1 <= min_length <= max_length", o.min_length, o.max_length));
  if (!(o.exponent > 0 && std::isfinite(o.exponent))) bad(fmt::format("exponent = {}, expected > 0", o.exponent));
  if (!(o.topic_share >= 0 && o.topic_share <= 1)) bad(fmt::format("topic_share = {}, expected in [0, 1]", o.topic_share));

  Generator gen(o.seed);
  const ZipfSampler global(o.terms, o.exponent);
  // Class c's topic terms are c, c + C, c + 2C, …: (terms − c − 1) / C + 1 of them.
  std::vector<ZipfSampler> topic;
  for (std::int64_t c = 0; c < o.classes; ++c) topic.emplace_back((o.terms - c - 1) / o.classes + 1, o.exponent);

  detail::CountRows rows;
  std::vector<std::int64_t> labels, terms;
  std::vector<double> targets;
  for (std::int64_t i = 0; i < o.documents; ++i) {
    const auto c = static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(o.classes)));
    const auto length = o.min_length + static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(o.max_length - o.min_length + 1)));
    terms.clear();
    for (std::int64_t k = 0; k < length; ++k)
      terms.push_back(gen.uniform() < o.topic_share ? c + o.classes * topic[static_cast<std::size_t>(c)](gen)
                                                    : global(gen));
    rows.add_document(terms);
    labels.push_back(c);
    targets.push_back(static_cast<double>(c));
  }
  SparseDataset ds;
  ds.features = tfidf(std::move(rows).matrix(o.terms, o.dtype));
  ds.targets = tensor(targets, {o.documents}, o.dtype);
  ds.labels = std::move(labels);
  ds.target_name = "class";
  for (std::int64_t c = 0; c < o.classes; ++c) ds.class_names.push_back(fmt::format("topic{}", c));
  ds.num_classes = o.classes;
  ds.source = fmt::format("zipf_text({} documents, {} terms, {} classes, seed {})", o.documents, o.terms, o.classes, o.seed);
  for (std::int64_t j = 0; j < o.terms; ++j) ds.feature_names.push_back(fmt::format("t{}", j));
  return ds;
}

}  // namespace hyperad::problems
