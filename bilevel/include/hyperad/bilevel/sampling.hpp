#pragma once
/// \file sampling.hpp
/// Minibatches as index lists. A data set is held once in memory (e.g. a [n, d] tensor);
/// a batch is a list of row indices into it, and the model code selects the rows it needs
/// with `rows(data, batch)` (index_select) each time it is evaluated. The data itself is
/// never copied per batch or per epoch: the sampler only shuffles indices.
///
/// `BatchSampler` draws batches from {0, …, n − 1} reproducibly from a seed (the stream is
/// the same on every machine: hyperad::Generator):
/// - with replacement: each index of a batch uniform and independent (batches are iid);
/// - without replacement: the indices of a random permutation in order, a fresh permutation
///   per epoch. A batch never crosses an epoch boundary (the last batch of an epoch is
///   short when the requested size does not divide what is left), so every epoch visits
///   each index exactly once.
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "hyperad/autodiff/csr.hpp"
#include "hyperad/autodiff/tensor.hpp"

namespace hyperad::bilevel {

/// A minibatch: row indices into a data set held once in memory.
using Batch = std::vector<std::int64_t>;

/// 0, 1, …, n − 1: the full data set in order.
Batch full_batch(std::int64_t n);
/// True when `batch` is 0, 1, …, n − 1 (the full data set in order).
bool is_full_batch(const Batch& batch, std::int64_t n);

/// The rows of `data` (axis 0) listed in `batch`: `data` itself (no copy) for the full
/// batch in order, otherwise index_select(data, 0, batch) — a temporary of the batch's size,
/// differentiable like any op. Throws ValueError for an index outside [0, data.size(0)).
Tensor rows(const Tensor& data, const Batch& batch);
/// rows(data, batch) that keeps its copies of contiguous batches [a, a + k), k ≥ kMinRows,
/// instead of copying the rows at every call: a data-parallel problem cuts the full data
/// set into the same chunks at every evaluation (bilevel::sum_over_batch). The copies kept
/// hold at most as many rows as the data; other batches, and data that requires gradients
/// (its rows must be recorded), are selected as by rows(). The rows returned are shared
/// with later calls: read them, never write them in place (data written in place drops the
/// copies). Copies of the cache share it: cheap to copy, safe to call from several threads.
/// A copy made inside a hypergradient call counts in that call's owned tape bytes
/// (Diagnostics), and as referenced in later calls.
class RowCache {
 public:
  static constexpr std::int64_t kMinRows = 16;
  RowCache() = default;
  explicit RowCache(Tensor data);
  Tensor rows(const Batch& batch) const;
  const Tensor& data() const { return data_; }

 private:
  struct Kept;
  Tensor data_;
  std::shared_ptr<Kept> kept_;
};

/// The same for sparse data: the matrix itself (sharing its cached transpose) for the full
/// batch in order, else a new CSR matrix of the batch's rows (CsrMatrix::select_rows).
CsrMatrix rows(const CsrMatrix& data, const Batch& batch);
/// The entries of `values` listed in `batch` (e.g. class labels for cross_entropy).
std::vector<std::int64_t> pick(const std::vector<std::int64_t>& values, const Batch& batch);

enum class Sampling { with_replacement, without_replacement };
/// "with replacement", "without replacement".
const char* sampling_name(Sampling s);

/// Everything a sampler needs to continue exactly where it was (for save/resume).
struct SamplerState {
  std::array<std::uint64_t, 4> rng{};
  Batch permutation;          ///< without replacement: the current epoch's order
  std::int64_t position = 0;  ///< next unused position in `permutation`
  std::int64_t epoch = 0;     ///< completed epochs (without replacement)
  std::int64_t drawn = 0;     ///< indices handed out so far
};

class BatchSampler {
 public:
  /// Batches of {0, …, n − 1} (n ≥ 1). Throws ValueError for n < 1.
  BatchSampler(std::int64_t n, Sampling mode, std::uint64_t seed);

  /// The next batch of `size` indices, 1 ≤ size ≤ n (ValueError otherwise); without
  /// replacement it is shorter when fewer than `size` indices are left in the epoch.
  Batch next(std::int64_t size);

  std::int64_t n() const { return n_; }
  Sampling mode() const { return mode_; }
  /// Without replacement: epochs completed so far (with replacement: 0).
  std::int64_t epoch() const { return epoch_; }
  /// Indices handed out so far.
  std::int64_t drawn() const { return drawn_; }

  SamplerState state() const;
  /// Restores a state taken from a sampler of the same n and mode (ValueError otherwise).
  void set_state(const SamplerState& s);

 private:
  void reshuffle();

  std::int64_t n_;
  Sampling mode_;
  Generator gen_;
  Batch perm_;
  std::int64_t pos_ = 0, epoch_ = 0, drawn_ = 0;
};

/// Appends a sampler's state to `words` as integers — 4 RNG words, position, epoch, drawn,
/// the permutation's length and entries — for save files (HypergradientMethod's random state).
void append_sampler_words(std::vector<std::uint64_t>& words, const SamplerState& s);
/// Reads a state written by append_sampler_words from words[at…] and advances `at`.
/// ValueError naming `who` when the words end early.
SamplerState read_sampler_words(const std::vector<std::uint64_t>& words, std::size_t& at, const char* who);

/// A seed derived from `seed` and two counters (a splitmix64 finalizer of each in turn):
/// distinct streams for, e.g., each task id or each episode of a run, the same on every machine.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0);

}  // namespace hyperad::bilevel
