// Minibatch sampling: reproducibility from a seed, epochs without replacement, uniformity
// with replacement, row selection without copying the data, save/restore, misuse.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "hyperad/bilevel/sampling.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

TEST_CASE("the same seed gives the same batches, another seed other batches") {
  for (Sampling mode : {Sampling::with_replacement, Sampling::without_replacement}) {
    CAPTURE(sampling_name(mode));
    BatchSampler a(50, mode, 7), b(50, mode, 7), c(50, mode, 8);
    bool differs = false;
    for (int k = 0; k < 20; ++k) {
      const Batch x = a.next(9), y = b.next(9), z = c.next(9);
      CHECK(x == y);
      differs = differs || x != z;
      for (std::int64_t i : x) CHECK((i >= 0 && i < 50));
    }
    CHECK(differs);
  }
}

TEST_CASE("without replacement every epoch visits each index exactly once") {
  const std::int64_t n = 23, b = 5;  // 5 does not divide 23: each epoch ends with a batch of 3
  BatchSampler s(n, Sampling::without_replacement, 3);
  std::vector<Batch> orders;
  for (int epoch = 0; epoch < 4; ++epoch) {
    CHECK(s.epoch() == epoch);
    std::vector<std::int64_t> seen;
    std::vector<std::size_t> sizes;
    while (static_cast<std::int64_t>(seen.size()) < n) {
      const Batch x = s.next(b);
      sizes.push_back(x.size());
      seen.insert(seen.end(), x.begin(), x.end());
    }
    CHECK(sizes == std::vector<std::size_t>{5, 5, 5, 5, 3});
    orders.push_back(seen);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == full_batch(n));  // a permutation: each index once
    CHECK(s.epoch() == epoch + 1);
  }
  CHECK(orders[0] != orders[1]);  // reshuffled per epoch
  CHECK(orders[0] != full_batch(n));
  CHECK(s.drawn() == 4 * n);
}

TEST_CASE("with replacement indices are uniform and batches may repeat indices") {
  const std::int64_t n = 10;
  BatchSampler s(n, Sampling::with_replacement, 11);
  std::vector<int> counts(n, 0);
  bool repeat = false;
  const int draws = 20000, b = 8;
  for (int k = 0; k < draws / b; ++k) {
    Batch x = s.next(b);
    for (std::int64_t i : x) ++counts[static_cast<std::size_t>(i)];
    std::sort(x.begin(), x.end());
    repeat = repeat || std::adjacent_find(x.begin(), x.end()) != x.end();
  }
  CHECK(repeat);
  // Each count is Binomial(20000, 0.1): mean 2000, sd 42.4; allow 5 sd.
  for (int c : counts) CHECK(std::abs(c - 2000) < 212);
  CHECK(s.epoch() == 0);
}

TEST_CASE("a restored state continues the same stream") {
  for (Sampling mode : {Sampling::with_replacement, Sampling::without_replacement}) {
    BatchSampler a(17, mode, 5);
    for (int k = 0; k < 7; ++k) a.next(4);
    const SamplerState st = a.state();
    std::vector<Batch> expect;
    for (int k = 0; k < 10; ++k) expect.push_back(a.next(4));
    BatchSampler b(17, mode, 999);
    b.set_state(st);
    for (int k = 0; k < 10; ++k) CHECK(b.next(4) == expect[static_cast<std::size_t>(k)]);
    CHECK(b.epoch() == a.epoch());
    CHECK(b.drawn() == a.drawn());
  }
  BatchSampler with(17, Sampling::with_replacement, 1), other_n(18, Sampling::without_replacement, 1);
  BatchSampler without(17, Sampling::without_replacement, 1);
  CHECK_THROWS_WITH_AS(with.set_state(without.state()), doctest::Contains("n = 17 with replacement"), ValueError);
  CHECK_THROWS_WITH_AS(other_n.set_state(without.state()), doctest::Contains("n = 18"), ValueError);
}

TEST_CASE("rows selects a batch without copying the data for the full batch") {
  Tensor X = arange(12).to(Dtype::f64);
  X = reshape(X, {4, 3});
  Tensor all = rows(X, full_batch(4));
  CHECK(all.shares_storage(X));  // the full batch in order is the data itself
  Tensor some = rows(X, {2, 0, 2});
  CHECK(some.shape() == Shape{3, 3});
  CHECK(some.to_vector() == std::vector<double>{6, 7, 8, 0, 1, 2, 6, 7, 8});
  CHECK(!rows(X, {3, 2, 1, 0}).shares_storage(X));  // a permutation is not the identity
  // differentiable: the gradient of sum(rows) counts how often each row was selected
  Tensor Xg = X.clone().requires_grad_();
  Tensor gx = grad(sum(rows(Xg, {1, 1, 3})), {Xg})[0];
  CHECK(gx.to_vector() == std::vector<double>{0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1});
  CHECK(pick({10, 11, 12, 13}, {3, 0, 3}) == std::vector<std::int64_t>{13, 10, 13});
  CHECK(is_full_batch(full_batch(5), 5));
  CHECK(!is_full_batch({0, 1, 2}, 4));
}

TEST_CASE("RowCache keeps the copies of contiguous batches, up to the data's rows") {
  constexpr std::int64_t k = RowCache::kMinRows;
  const Tensor X = reshape(arange(6 * k * 2).to(Dtype::f64), {6 * k, 2});
  const auto range = [](std::int64_t a, std::int64_t n) {
    Batch b(static_cast<std::size_t>(n));
    std::iota(b.begin(), b.end(), a);
    return b;
  };
  const RowCache cache(X);
  const Tensor a = cache.rows(range(k, 3 * k));
  CHECK(a.to_vector() == narrow(X, 0, k, 3 * k).to_vector());
  CHECK(cache.rows(range(k, 3 * k)).shares_storage(a));  // kept
  const RowCache copy = cache;
  CHECK(copy.rows(range(k, 3 * k)).shares_storage(a));  // copies share what is kept
  CHECK(cache.rows(full_batch(6 * k)).shares_storage(X));
  Batch reversed = range(0, k);
  std::reverse(reversed.begin(), reversed.end());
  const Tensor b = cache.rows(reversed);  // not contiguous: selected afresh each time
  CHECK(b.to_vector() == index_select(X, 0, reversed).to_vector());
  CHECK(!cache.rows(reversed).shares_storage(b));
  const Tensor short_range = cache.rows(range(0, k - 1));  // too short to be kept
  CHECK(!cache.rows(range(0, k - 1)).shares_storage(short_range));
  // Kept: 3k rows, then 3k more (the data's 6k); a third range is copied, not kept.
  CHECK(cache.rows(range(2 * k, 3 * k)).shares_storage(cache.rows(range(2 * k, 3 * k))));
  CHECK(!cache.rows(range(0, k)).shares_storage(cache.rows(range(0, k))));
  CHECK(cache.rows(range(0, k)).to_vector() == narrow(X, 0, 0, k).to_vector());
  CHECK_THROWS_AS(cache.rows(range(5 * k + 1, k)), ValueError);  // past the data: rows()' own error
  // Data written in place: the stale copies are dropped.
  Tensor W = X.clone();
  const RowCache written(W);
  const Tensor before = written.rows(range(0, k));
  W.mutable_data<double>()[0] = -1.0;
  CHECK(written.rows(range(0, k)).to_vector()[0] == -1.0);
  CHECK(before.to_vector()[0] == 0.0);
  // Data that requires gradients is selected (recorded) every time.
  const Tensor Xg = X.clone().requires_grad_();
  const RowCache recorded(Xg);
  const Tensor g = grad(sum(recorded.rows(range(k, k))), {Xg})[0];
  CHECK(sum(g).item() == 2.0 * k);
  CHECK(sum(narrow(g, 0, k, k)).item() == 2.0 * k);
}

TEST_CASE("misuse is reported with the numbers") {
  CHECK_THROWS_WITH_AS(BatchSampler(0, Sampling::with_replacement, 1), doctest::Contains("size must be >= 1, got 0"),
                       ValueError);
  BatchSampler s(10, Sampling::without_replacement, 1);
  CHECK_THROWS_WITH_AS(s.next(0), doctest::Contains("batch size must be in [1, 10]"), ValueError);
  CHECK_THROWS_WITH_AS(s.next(11), doctest::Contains("got 11"), ValueError);
  CHECK_THROWS_WITH_AS(rows(zeros({4, 2}), {0, 4}), doctest::Contains("index_select"), ValueError);
  CHECK_THROWS_WITH_AS(pick({1, 2}, {2}), doctest::Contains("index 2 outside [0, 2)"), ValueError);
  CHECK_THROWS_WITH_AS(full_batch(-1), doctest::Contains("got -1"), ValueError);
}
