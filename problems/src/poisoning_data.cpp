// The data of the poisoning problem: Fashion-MNIST or the bundled digits, pixels in [0, 1],
// optionally average-pooled, split by a seeded permutation into training, validation and
// test sets.
#include "poisoning.hpp"

#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "hyperad/autodiff/ops/elementwise.hpp"

namespace hyperad::problems::detail {

namespace {

// Average-pools square images [n, s·s] by k×k blocks into [n, (s/k)²].
Tensor pool(const Tensor& x, std::int64_t k, const std::string& dataset) {
  const std::int64_t n = x.size(0), d = x.size(1);
  const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(d))));
  if (side * side != d || side % k != 0) {
    throw ValueError(fmt::format("problem 'poisoning': option downsample={} does not divide the {}×{} images of {}",
                                 k, side, side, dataset));
  }
  if (k == 1) return x;
  const std::int64_t s = side / k;
  std::vector<double> out(static_cast<std::size_t>(n * s * s), 0.0);
  const double* src = x.data<double>();
  const double scale = 1.0 / static_cast<double>(k * k);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t r = 0; r < side; ++r) {
      for (std::int64_t c = 0; c < side; ++c) {
        out[static_cast<std::size_t>(i * s * s + (r / k) * s + c / k)] += scale * src[i * d + r * side + c];
      }
    }
  }
  return tensor(out, Shape{n, s * s});
}

Dataset with_features(Dataset d, Tensor features) {
  d.features = std::move(features);
  d.feature_names.clear();
  for (std::int64_t j = 0; j < d.features.size(1); ++j) d.feature_names.push_back(fmt::format("p{}", j));
  return d;
}

// A seeded permutation of 0..n−1 (the same on every machine).
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  Generator gen(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    std::swap(p[static_cast<std::size_t>(i)], p[gen.below(static_cast<std::uint64_t>(i + 1))]);
  }
  return p;
}

std::vector<std::int64_t> slice_of(const std::vector<std::int64_t>& p, std::int64_t from, std::int64_t count) {
  return {p.begin() + from, p.begin() + from + count};
}

void check_total(std::int64_t need, std::int64_t have, const std::string& what) {
  if (need > have) {
    throw ValueError(fmt::format("problem 'poisoning': the requested sizes need {} examples but {} has {}", need,
                                 what, have));
  }
}

}  // namespace

PoisoningData load_poisoning_data(const std::string& dataset, const PoisoningSizes& sz,
                                  const std::filesystem::path& data_dir, std::uint64_t seed) {
  PoisoningData out;
  Dataset all, test;
  if (dataset == "fashion_mnist") {
    // Training and validation points come from the 60,000 training images, the test points
    // from the 10,000 test images; only the prefix that is needed is read.
    const std::filesystem::path dir = fashion_mnist_dir(data_dir);
    check_total(sz.train + sz.val, 60000, "the Fashion-MNIST training set");
    check_total(sz.test, 10000, "the Fashion-MNIST test set");
    all = load_fashion_mnist(FashionMnistPart::train, {.limit = sz.train + sz.val}, dir);
    test = load_fashion_mnist(FashionMnistPart::test, {.limit = sz.test}, dir);
  } else {
    all = load_builtin("digits");
    all.features = all.features * (1.0 / 16.0);  // pixel values 0–16
    check_total(sz.train + sz.val + sz.test, all.size(), "digits");
  }
  const std::vector<std::int64_t> p = permutation(all.size(), seed);
  out.train = subset(all, slice_of(p, 0, sz.train));
  out.val = subset(all, slice_of(p, sz.train, sz.val));
  out.test = dataset == "fashion_mnist" ? test : subset(all, slice_of(p, sz.train + sz.val, sz.test));
  for (Dataset* d : {&out.train, &out.val, &out.test}) {
    *d = with_features(std::move(*d), pool(d->features, sz.downsample, dataset));
  }
  return out;
}

}  // namespace hyperad::problems::detail
