#pragma once
/// \file task_parallel.hpp
/// Task parallelism: the meta-batch of an episodic problem (bilevel/episodic.hpp) spread
/// over the ranks of a communicator.
///
/// \code
/// bilevel::EpisodicHypergradient method(tasks, bilevel::copies_of(aid),
///     {.meta_batch = 8, .execution = bilevel::Execution::sequential,
///      .exchange = mpi::task_parallel(comm)});
/// \endcode
///
/// Each rank solves and differentiates the tasks at its share of the meta-batch's
/// positions (Communicator::chunks: contiguous, in rank order), then one exchange hands
/// every rank every task's outcome — its hypergradient, diagnostics, final state and linear
/// solution, or its failure — and every rank averages them in task order. All ranks hold
/// the same hypergradient and the same warm-start buffers (so rank 0 can save them, and a
/// run may resume on another number of ranks); with sequential or threaded execution the
/// numbers are bit-identical to one process's, on any number of ranks. A failing task
/// makes every rank throw the same error (its type and message).
#include <memory>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/mpi/communicator.hpp"

namespace hyperad::mpi {

/// The UnitExchange over `comm`: each meta-batch makes two collectives on it (the outcomes'
/// sizes, then the outcomes), which must not run inside an OpenMP parallel region.
std::shared_ptr<const bilevel::UnitExchange> task_parallel(const Communicator& comm);

}  // namespace hyperad::mpi
