#pragma once
// The MPI job the tool runs in, if any: `mpirun -np N hyperad run ...` spreads an episodic
// run's meta-batch over the N ranks (hyperad::mpi::task_parallel), or a data-parallel
// problem's examples (hyperad::mpi::data_parallel); rank 0 prints and writes the files.
// Without an MPI launcher (or in a build without HYPERAD_MPI) the tool is one process, as
// always.
#include <cstdint>
#include <functional>
#include <memory>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/shards.hpp"

namespace hyperad::cli {

struct Ranks {
  int rank = 0, size = 1;
  /// Started by an MPI launcher (even as one rank): MPI is initialized.
  bool launched = false;
  /// The meta-batch exchange over all ranks (null without an MPI launcher).
  std::shared_ptr<const bilevel::UnitExchange> exchange;
  /// Examples cut into this many chunks, dealt to all ranks (set when launched).
  std::function<std::shared_ptr<const bilevel::ExampleShards>(std::int64_t chunks)> data_parallel;
  /// Collective over the job (every rank calls it alike): true when `mine` is the same on
  /// every rank. One process: true.
  std::function<bool(bool mine)> same_everywhere = [](bool) { return true; };
  bool root() const { return rank == 0; }
};

/// Starts MPI the first time when an MPI launcher started the tool (its environment says
/// so), and returns the job; one process otherwise.
const Ranks& ranks();

/// Ends the whole job with `code` after a failure on this rank when there are several
/// ranks (the others may be waiting in a collective); returns otherwise.
void abort_job_on_failure(int code);

}  // namespace hyperad::cli
