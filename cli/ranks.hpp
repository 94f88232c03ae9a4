#pragma once
// The MPI job the tool runs in, if any: `mpirun -np N hyperad run ...` spreads an episodic
// run's meta-batch over the N ranks (hyperad::mpi::task_parallel); rank 0 prints and writes
// the files. Without an MPI launcher (or in a build without HYPERAD_MPI) the tool is one
// process, as always.
#include <memory>
#include <string>

#include "hyperad/bilevel/episodic.hpp"

namespace hyperad::cli {

struct Ranks {
  int rank = 0, size = 1;
  /// The meta-batch exchange over all ranks (null for one process).
  std::shared_ptr<const bilevel::UnitExchange> exchange;
  bool root() const { return rank == 0; }
};

/// Starts MPI the first time when an MPI launcher started the tool (its environment says
/// so), and returns the job; one process otherwise.
const Ranks& ranks();

/// Ends the whole job with `code` after a failure on this rank when there are several
/// ranks (the others may be waiting in a collective); returns otherwise.
void abort_job_on_failure(int code);

}  // namespace hyperad::cli
