#include "hyperad/bilevel/shards.hpp"

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/ops/shape_ops.hpp"

namespace hyperad::bilevel {

Tensor sum_over_batch(const ExampleShards* shards, const Batch& batch, const TensorList& inputs,
                      const PartSum& part_sum, const TensorList& per_example) {
  if (shards == nullptr) {
    TensorList all = inputs;
    all.insert(all.end(), per_example.begin(), per_example.end());
    return part_sum(all, batch);
  }
  const auto [first, last] = shards->mine();
  const std::int64_t chunks = shards->chunks(), size = static_cast<std::int64_t>(batch.size());
  // Every process takes part in these collectives, whatever fails below. Inputs every part
  // reads get a copy per chunk (their gradient is summed over the chunks in chunk order);
  // per-example inputs, whose elements one part reads at most, one copy per process (their
  // gradient sums one non-zero term and zeros: exact in any order).
  TensorList copies, mine_per_example;
  for (const Tensor& x : inputs) copies.push_back(shards->replicate_chunks(x));
  for (const Tensor& x : per_example) mine_per_example.push_back(shards->replicate(x));
  std::exception_ptr failure;
  Tensor parts;
  try {
    // Every part is summed, an empty one too (B < C): each process's chunks must record the
    // same ops reading the same copies, or its backward passes would call other collectives
    // (or the same ones in another order) than the other processes'.
    TensorList sums;
    for (std::int64_t k = first; k < last; ++k) {
      const Batch part(batch.begin() + k * size / chunks, batch.begin() + (k + 1) * size / chunks);
      TensorList mine;
      for (const Tensor& c : copies) mine.push_back(squeeze(narrow(c, 0, k - first, 1), 0));
      mine.insert(mine.end(), mine_per_example.begin(), mine_per_example.end());
      sums.push_back(part_sum(mine, part));
    }
    if (sums.empty())
      throw ValueError(
          fmt::format("sum_over_batch: this process holds none of the {} chunks ({})", chunks, shards->describe()));
    parts = stack(sums, 0);
  } catch (...) {
    failure = std::current_exception();
  }
  return shards->sum_chunks(parts, failure);
}

}  // namespace hyperad::bilevel
