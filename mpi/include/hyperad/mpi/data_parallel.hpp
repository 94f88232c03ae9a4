#pragma once
/// \file data_parallel.hpp
/// Data-parallel losses built from the collectives (collectives.hpp): what a bilevel
/// problem's inner and outer objectives are when the examples are spread over ranks in
/// fixed chunks (local_chunks) and the weights are replicated.
#include <cstdint>
#include <memory>

#include "hyperad/autodiff/ops/linear_model.hpp"
#include "hyperad/bilevel/shards.hpp"
#include "hyperad/autodiff/tensor.hpp"
#include "hyperad/mpi/communicator.hpp"

namespace hyperad::mpi {

/// The mean over every rank's examples of a linear model's loss ℓ(x·w, y) (LinearLoss:
/// logistic with labels ±1, or squared), data-parallel: `X` is this rank's chunks [c, n_c, d]
/// and `y` their labels [c, n_c] (local_chunks of the full data), `w` the replicated
/// weights [d], `total` the number of examples over all ranks. Each chunk gets its own copy
/// of w (replicate_chunks), each chunk's losses are summed, and the chunks' sums are added
/// over all ranks in chunk order (all_sum_chunks): the same bits on any number of ranks, and
/// differentiable to any order in w (and X, y). Collective. ShapeError for operands that do
/// not fit, ValueError for total < 1.
Tensor linear_model_mean_loss(const Tensor& X, const Tensor& y, const Tensor& w, LinearLoss loss, std::int64_t total,
                              const Communicator& comm);

/// The bilevel layer's ExampleShards over `comm` (bilevel/shards.hpp): every batch cut into
/// `chunks` fixed chunks, dealt to the ranks by Communicator::chunks; replicate_chunks and
/// sum_chunks are this file's collectives (so a problem written with bilevel::sum_over_batch
/// gives the same bits on any number of ranks for the same `chunks`). This is what
/// `mpirun -np N hyperad run poisoning` uses. ValueError for fewer chunks than ranks (every
/// rank must hold one at least: see bilevel::PartSum).
std::shared_ptr<const bilevel::ExampleShards> data_parallel(const Communicator& comm, std::int64_t chunks);

}  // namespace hyperad::mpi
