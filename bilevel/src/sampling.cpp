#include "hyperad/bilevel/sampling.hpp"

#include <map>
#include <mutex>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"

namespace hyperad::bilevel {

Batch full_batch(std::int64_t n) {
  if (n < 0) throw ValueError(fmt::format("full_batch: n must be >= 0, got {}", n));
  Batch b(static_cast<std::size_t>(n));
  std::iota(b.begin(), b.end(), std::int64_t{0});
  return b;
}

bool is_full_batch(const Batch& batch, std::int64_t n) {
  if (static_cast<std::int64_t>(batch.size()) != n) return false;
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

Tensor rows(const Tensor& data, const Batch& batch) {
  if (!data.defined()) throw ValueError("rows: the data tensor is undefined");
  if (data.rank() < 1) throw ShapeError(fmt::format("rows: the data must have rank >= 1, got shape {}", data.shape().str()));
  if (is_full_batch(batch, data.size(0))) return data;
  return index_select(data, 0, batch);
}

struct RowCache::Kept {
  std::mutex mutex;
  std::map<std::pair<std::int64_t, std::int64_t>, Tensor> copies;  // (first row, rows) → the rows
  std::int64_t rows = 0;                                            // rows kept in all
  std::uint64_t version = 0;                                        // the data's, when they were copied
};

RowCache::RowCache(Tensor data) : data_(std::move(data)), kept_(std::make_shared<Kept>()) {}

Tensor RowCache::rows(const Batch& batch) const {
  // Short ranges (a minibatch's parts of one or two rows) are not kept: they would use up the
  // budget the chunks of the full data set are kept for.
  const auto k = static_cast<std::int64_t>(batch.size());
  if (!kept_ || k < kMinRows || !data_.defined() || data_.rank() < 1 || data_.requires_grad() ||
      is_full_batch(batch, data_.size(0)))
    return bilevel::rows(data_, batch);
  const std::int64_t a = batch.front();
  for (std::int64_t i = 1; i < k; ++i)
    if (batch[static_cast<std::size_t>(i)] != a + i) return bilevel::rows(data_, batch);
  if (a < 0 || a + k > data_.size(0)) return bilevel::rows(data_, batch);  // its error message
  const std::lock_guard<std::mutex> lock(kept_->mutex);
  if (kept_->version != data_.version()) {  // the data were written in place: the copies are stale
    kept_->copies.clear();
    kept_->rows = 0;
    kept_->version = data_.version();
  }
  if (const auto it = kept_->copies.find({a, k}); it != kept_->copies.end()) return it->second;
  Tensor copy = narrow(data_, 0, a, k);
  if (kept_->rows + k <= data_.size(0)) {
    kept_->copies.emplace(std::pair{a, k}, copy);
    kept_->rows += k;
  }
  return copy;
}

CsrMatrix rows(const CsrMatrix& data, const Batch& batch) {
  if (is_full_batch(batch, data.rows())) return data;
  return data.select_rows(batch);
}

std::vector<std::int64_t> pick(const std::vector<std::int64_t>& values, const Batch& batch) {
  std::vector<std::int64_t> out;
  out.reserve(batch.size());
  for (std::int64_t i : batch) {
    if (i < 0 || i >= static_cast<std::int64_t>(values.size()))
      throw ValueError(fmt::format("pick: index {} outside [0, {}) of the values", i, values.size()));
    out.push_back(values[static_cast<std::size_t>(i)]);
  }
  return out;
}

const char* sampling_name(Sampling s) {
  return s == Sampling::with_replacement ? "with replacement" : "without replacement";
}

BatchSampler::BatchSampler(std::int64_t n, Sampling mode, std::uint64_t seed) : n_(n), mode_(mode), gen_(seed) {
  if (n < 1) throw ValueError(fmt::format("BatchSampler: the data set size must be >= 1, got {}", n));
  if (mode_ == Sampling::without_replacement) {
    perm_ = full_batch(n);
    pos_ = n;  // the first call shuffles
  }
}

// Fisher–Yates: uniform over permutations whatever the previous order was.
void BatchSampler::reshuffle() {
  for (std::int64_t i = n_ - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(gen_.below(static_cast<std::uint64_t>(i + 1)));
    std::swap(perm_[static_cast<std::size_t>(i)], perm_[static_cast<std::size_t>(j)]);
  }
  pos_ = 0;
}

Batch BatchSampler::next(std::int64_t size) {
  if (size < 1 || size > n_)
    throw ValueError(fmt::format("BatchSampler: batch size must be in [1, {}] (the data set size), got {}", n_, size));
  Batch b;
  if (mode_ == Sampling::with_replacement) {
    b.resize(static_cast<std::size_t>(size));
    for (auto& i : b) i = static_cast<std::int64_t>(gen_.below(static_cast<std::uint64_t>(n_)));
  } else {
    if (pos_ == n_) reshuffle();
    const std::int64_t take = std::min(size, n_ - pos_);
    b.assign(perm_.begin() + pos_, perm_.begin() + pos_ + take);
    pos_ += take;
    if (pos_ == n_) ++epoch_;  // counted when complete; the reshuffle waits for the next batch
  }
  drawn_ += static_cast<std::int64_t>(b.size());
  return b;
}

SamplerState BatchSampler::state() const { return {gen_.state(), perm_, pos_, epoch_, drawn_}; }

void BatchSampler::set_state(const SamplerState& s) {
  const bool perm_ok = mode_ == Sampling::with_replacement ? s.permutation.empty()
                                                            : static_cast<std::int64_t>(s.permutation.size()) == n_;
  if (!perm_ok || s.position < 0 || s.position > n_ || s.epoch < 0 || s.drawn < 0)
    throw ValueError(fmt::format("BatchSampler::set_state: the state does not belong to a sampler of n = {} {} "
                                 "(permutation of {} entries, position {})",
                                 n_, sampling_name(mode_), s.permutation.size(), s.position));
  gen_.set_state(s.rng);
  perm_ = s.permutation;
  pos_ = s.position;
  epoch_ = s.epoch;
  drawn_ = s.drawn;
}

void append_sampler_words(std::vector<std::uint64_t>& out, const SamplerState& s) {
  out.insert(out.end(), s.rng.begin(), s.rng.end());
  for (std::int64_t x : {s.position, s.epoch, s.drawn, static_cast<std::int64_t>(s.permutation.size())})
    out.push_back(static_cast<std::uint64_t>(x));
  for (std::int64_t i : s.permutation) out.push_back(static_cast<std::uint64_t>(i));
}

SamplerState read_sampler_words(const std::vector<std::uint64_t>& in, std::size_t& at, const char* who) {
  auto word = [&]() {
    if (at >= in.size()) throw ValueError(fmt::format("{}: the random state ends early ({} words)", who, in.size()));
    return in[at++];
  };
  SamplerState s;
  for (auto& r : s.rng) r = word();
  s.position = static_cast<std::int64_t>(word());
  s.epoch = static_cast<std::int64_t>(word());
  s.drawn = static_cast<std::int64_t>(word());
  const std::uint64_t n = word();
  if (n > in.size() - at)
    throw ValueError(fmt::format("{}: the random state holds a permutation of {} entries but only {} words remain", who,
                                 n, in.size() - at));
  for (std::uint64_t k = 0; k < n; ++k) s.permutation.push_back(static_cast<std::int64_t>(word()));
  return s;
}

namespace {
std::uint64_t finalize(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = finalize(seed + 0x9e3779b97f4a7c15ULL);
  z = finalize(z ^ (a + 0x632be59bd9b4e019ULL));
  return finalize(z ^ (b + 0x8cb92ba72f3d8dd7ULL));
}

}  // namespace hyperad::bilevel
