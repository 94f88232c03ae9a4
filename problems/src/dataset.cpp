// Dataset checks and the transformations: subset, split, select_classes, standardization.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "data_util.hpp"
#include "hyperad/problems/data.hpp"

namespace hyperad::problems {

std::vector<std::int64_t> Dataset::class_counts() const {
  if (!is_classification())
    throw ValueError(fmt::format("Dataset::class_counts: \"{}\" is a regression dataset", source));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(num_classes), 0);
  for (std::int64_t l : labels)
    if (l >= 0 && l < num_classes) ++counts[static_cast<std::size_t>(l)];
  return counts;
}

void Dataset::validate() const {
  const auto bad = [&](const std::string& why) {
    throw ValueError(fmt::format("Dataset \"{}\": {}", source, why));
  };
  if (!features.defined() || features.rank() != 2)
    bad(features.defined() ? fmt::format("features must be [n, d], got {}", features.shape().str())
                           : "features are undefined");
  const std::int64_t n = size();
  if (!targets.defined() || targets.shape() != Shape{n})
    bad(fmt::format("targets must be [{}], got {}", n, targets.defined() ? targets.shape().str() : "undefined"));
  if (targets.dtype() != features.dtype()) bad("targets and features have different dtypes");
  if (static_cast<std::int64_t>(feature_names.size()) != num_features())
    bad(fmt::format("{} feature names for {} features", feature_names.size(), num_features()));
  if (num_classes < 0) bad(fmt::format("num_classes = {} is negative", num_classes));
  if (num_classes == 0 && !labels.empty()) bad("labels given but num_classes = 0");
  if (num_classes > 0) {
    if (static_cast<std::int64_t>(labels.size()) != n) bad(fmt::format("{} labels for {} examples", labels.size(), n));
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || labels[i] >= num_classes)
        bad(fmt::format("label {} of example {} is not in [0, {})", labels[i], i, num_classes));
    if (!class_names.empty() && static_cast<std::int64_t>(class_names.size()) != num_classes)
      bad(fmt::format("{} class names for {} classes", class_names.size(), num_classes));
  }
}

// ---- Standardization ---------------------------------------------------------------------

Standardizer Standardizer::fit(const Tensor& features) {
  if (!features.defined() || features.rank() != 2 || features.size(0) < 1)
    throw ValueError(fmt::format("Standardizer::fit: needs features [n, d] with n >= 1, got {}",
                                 features.defined() ? features.shape().str() : "undefined"));
  const std::int64_t n = features.size(0), d = features.size(1);
  const std::vector<double> x = features.to_vector();
  Standardizer s;
  s.mean.assign(static_cast<std::size_t>(d), 0.0);
  s.scale.assign(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) s.mean[j] += x[i * d + j];
  for (double& m : s.mean) m /= static_cast<double>(n);
  // Two passes: the variance of centered values does not cancel catastrophically.
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) {
      const double c = x[i * d + j] - s.mean[j];
      s.scale[j] += c * c;
    }
  for (std::int64_t j = 0; j < d; ++j) {
    const double sd = std::sqrt(s.scale[j] / static_cast<double>(n));
    // A constant column would be divided by (rounding noise of) zero: only center it.
    s.scale[j] = sd <= 1e-12 * std::max(1.0, std::abs(s.mean[j])) ? 1.0 : sd;
  }
  return s;
}

Tensor Standardizer::transform(const Tensor& features) const {
  const auto d = static_cast<std::int64_t>(mean.size());
  if (!features.defined() || features.rank() != 2 || features.size(1) != d)
    throw ShapeError(fmt::format("Standardizer::transform: features must be [n, {}] (the fitted width), got {}",
                                 d, features.defined() ? features.shape().str() : "undefined"));
  Tensor out(features.shape(), features.dtype());
  dispatch(features.dtype(), [&]<class T>() {
    const T* in = features.data<T>();
    T* o = out.mutable_data<T>();
    const std::int64_t n = features.size(0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j)
        o[i * d + j] = static_cast<T>((static_cast<double>(in[i * d + j]) - mean[j]) / scale[j]);
  });
  return out;
}

void Standardizer::apply(Dataset& dataset) const { dataset.features = transform(dataset.features); }

// ---- Subsets and splits -----------------------------------------------------------------

namespace {

// Copies rows `rows` of a [n, w] (or [n], w = 1) tensor.
Tensor gather_rows(const Tensor& t, std::span<const std::int64_t> rows, std::int64_t w) {
  const auto m = static_cast<std::int64_t>(rows.size());
  Tensor out(t.rank() == 1 ? Shape{m} : Shape{m, w}, t.dtype());
  const std::size_t row_bytes = static_cast<std::size_t>(w) * dtype_size(t.dtype());
  const auto* src = static_cast<const unsigned char*>(t.raw());
  auto* dst = static_cast<unsigned char*>(out.raw_mut());
  if (row_bytes > 0)
    for (std::int64_t i = 0; i < m; ++i)
      std::memcpy(dst + i * row_bytes, src + rows[i] * row_bytes, row_bytes);
  return out;
}

void shuffle(std::vector<std::int64_t>& v, Generator& gen) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.below(i)]);
}

// Sizes of the three parts of n items: floor of each share, the remainder going to the
// largest fractional parts (earlier part first on ties), so they sum to n exactly.
std::array<std::int64_t, 3> part_sizes(std::int64_t n, const std::array<double, 3>& f) {
  std::array<std::int64_t, 3> size{};
  std::array<double, 3> frac{};
  std::int64_t used = 0;
  for (int k = 0; k < 3; ++k) {
    const double share = f[k] * static_cast<double>(n);
    size[k] = std::min(n, static_cast<std::int64_t>(std::floor(share)));
    frac[k] = share - static_cast<double>(size[k]);
    used += size[k];
  }
  for (std::int64_t left = n - used; left > 0; --left) {
    int best = -1;
    for (int k = 0; k < 3; ++k)
      if (f[k] > 0 && (best < 0 || frac[k] > frac[best])) best = k;
    if (best < 0) break;
    ++size[best];
    frac[best] = -1.0;  // at most one extra item per part
  }
  // Fractions summing to slightly more than 1 can overshoot by one: take it from the largest part.
  while (size[0] + size[1] + size[2] > n) --*std::max_element(size.begin(), size.end());
  return size;
}

// ValueError naming the first index outside [0, n).
void check_rows(std::span<const std::int64_t> indices, std::int64_t n, const std::string& source) {
  for (std::int64_t i : indices)
    if (i < 0 || i >= n)
      throw ValueError(fmt::format("subset: index {} out of range for \"{}\" with {} examples", i, source, n));
}

}  // namespace

Dataset subset(const Dataset& dataset, std::span<const std::int64_t> indices) {
  check_rows(indices, dataset.size(), dataset.source);
  Dataset out;
  out.features = gather_rows(dataset.features, indices, dataset.num_features());
  out.targets = gather_rows(dataset.targets, indices, 1);
  if (!dataset.labels.empty()) {
    out.labels.reserve(indices.size());
    for (std::int64_t i : indices) out.labels.push_back(dataset.labels[static_cast<std::size_t>(i)]);
  }
  out.feature_names = dataset.feature_names;
  out.target_name = dataset.target_name;
  out.class_names = dataset.class_names;
  out.num_classes = dataset.num_classes;
  out.source = dataset.source;
  return out;
}

namespace {

// The row indices of the three parts (the rows themselves are copied by subset): one
// implementation for dense and sparse datasets, so the same seed splits both alike.
template <class D>
std::array<std::vector<std::int64_t>, 3> split_rows(const D& dataset, const SplitFractions& fractions,
                                                    std::uint64_t seed, bool stratified) {
  const std::array<double, 3> f{fractions.train, fractions.validation, fractions.test};
  const double sum = f[0] + f[1] + f[2];
  if (!std::all_of(f.begin(), f.end(), [](double x) { return std::isfinite(x) && x >= 0; }) ||
      std::abs(sum - 1.0) > 1e-9)
    throw ValueError(fmt::format("split: fractions must be >= 0 and sum to 1, got train {}, validation {}, "
                                 "test {} (sum {})", f[0], f[1], f[2], sum));
  if (stratified && !dataset.is_classification())
    throw ValueError(fmt::format("split: stratified split of \"{}\", which has no classes", dataset.source));

  Generator gen(seed);
  std::array<std::vector<std::int64_t>, 3> parts;
  const auto deal = [&](std::vector<std::int64_t> items) {
    shuffle(items, gen);
    const auto sizes = part_sizes(static_cast<std::int64_t>(items.size()), f);
    auto it = items.begin();
    for (int k = 0; k < 3; ++k) {
      parts[k].insert(parts[k].end(), it, it + sizes[k]);
      it += sizes[k];
    }
  };
  if (!stratified) {
    std::vector<std::int64_t> all(static_cast<std::size_t>(dataset.size()));
    std::iota(all.begin(), all.end(), 0);
    deal(std::move(all));
  } else {
    std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(dataset.num_classes));
    for (std::size_t i = 0; i < dataset.labels.size(); ++i)
      by_class[static_cast<std::size_t>(dataset.labels[i])].push_back(static_cast<std::int64_t>(i));
    for (auto& members : by_class) deal(std::move(members));
    for (auto& p : parts) shuffle(p, gen);  // interleave the classes
  }
  return parts;
}

}  // namespace

Splits split(const Dataset& dataset, const SplitFractions& fractions, std::uint64_t seed, bool stratified) {
  const auto parts = split_rows(dataset, fractions, seed, stratified);
  return {subset(dataset, parts[0]), subset(dataset, parts[1]), subset(dataset, parts[2])};
}

SparseDataset subset(const SparseDataset& dataset, std::span<const std::int64_t> indices) {
  check_rows(indices, dataset.size(), dataset.source);
  SparseDataset out = dataset;
  out.features = dataset.features.select_rows(indices);
  out.targets = gather_rows(dataset.targets, indices, 1);
  out.labels.clear();
  for (std::int64_t i : indices)
    if (!dataset.labels.empty()) out.labels.push_back(dataset.labels[static_cast<std::size_t>(i)]);
  return out;
}

SparseSplits split(const SparseDataset& dataset, const SplitFractions& fractions, std::uint64_t seed,
                   bool stratified) {
  const auto parts = split_rows(dataset, fractions, seed, stratified);
  return {subset(dataset, parts[0]), subset(dataset, parts[1]), subset(dataset, parts[2])};
}

Dataset select_classes(const Dataset& dataset, const std::vector<std::int64_t>& classes) {
  if (!dataset.is_classification())
    throw ValueError(fmt::format("select_classes: \"{}\" is a regression dataset", dataset.source));
  if (classes.empty()) throw ValueError("select_classes: no classes given");
  std::vector<std::int64_t> position(static_cast<std::size_t>(dataset.num_classes), -1);
  for (std::size_t k = 0; k < classes.size(); ++k) {
    const std::int64_t c = classes[k];
    if (c < 0 || c >= dataset.num_classes)
      throw ValueError(fmt::format("select_classes: class {} is not in [0, {}) of \"{}\"", c,
                                   dataset.num_classes, dataset.source));
    if (position[static_cast<std::size_t>(c)] >= 0)
      throw ValueError(fmt::format("select_classes: class {} is listed twice", c));
    position[static_cast<std::size_t>(c)] = static_cast<std::int64_t>(k);
  }
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < dataset.labels.size(); ++i)
    if (position[static_cast<std::size_t>(dataset.labels[i])] >= 0) rows.push_back(static_cast<std::int64_t>(i));
  Dataset out = subset(dataset, rows);
  std::vector<double> targets;
  targets.reserve(rows.size());
  for (std::int64_t& l : out.labels) {
    l = position[static_cast<std::size_t>(l)];
    targets.push_back(static_cast<double>(l));
  }
  out.targets = detail::matrix(targets, static_cast<std::int64_t>(rows.size()), 1, dataset.dtype())
                    .alias_with_shape(Shape{static_cast<std::int64_t>(rows.size())});
  out.num_classes = static_cast<std::int64_t>(classes.size());
  if (!dataset.class_names.empty()) {
    out.class_names.clear();
    for (std::int64_t c : classes) out.class_names.push_back(dataset.class_names[static_cast<std::size_t>(c)]);
  }
  return out;
}

Tensor binary_signs(const Dataset& dataset) {
  if (dataset.num_classes != 2)
    throw ValueError(fmt::format("binary_signs: \"{}\" has {} classes, not 2", dataset.source, dataset.num_classes));
  std::vector<double> s;
  s.reserve(dataset.labels.size());
  for (std::int64_t l : dataset.labels) s.push_back(l == 1 ? 1.0 : -1.0);
  return tensor(s, Shape{static_cast<std::int64_t>(s.size())}, dataset.dtype());
}

}  // namespace hyperad::problems
