#pragma once
// What the layer's own data-parallel functions need beyond the public collectives.
#include <exception>

#include "hyperad/mpi/collectives.hpp"

namespace hyperad::mpi::detail {

/// MpiError naming `op` unless MPI is initialized, not finalized, and the caller is outside
/// any OpenMP parallel region (collectives from worker threads would run in a different
/// order on each rank).
void require_usable(const char* op);

/// all_sum_chunks for a caller whose local computation of x may have failed: with
/// `local_error` set, this rank still takes part in the operands' exchange, so that every
/// rank throws (this one its own error, the others an Error naming this rank) instead of
/// the others waiting in the collective forever.
Tensor all_sum_chunks_or_fail(const Tensor& x, const std::exception_ptr& local_error, const Communicator& comm);

}  // namespace hyperad::mpi::detail
