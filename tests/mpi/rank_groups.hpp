#pragma once
// For the MPI tests: runs a computation on communicators of 1, 2 and 4 ranks (those the
// world can hold, consecutive ranks grouped), so that one mpirun compares rank counts.
#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "hyperad/mpi/communicator.hpp"

namespace hyperad::testing {

/// compute(comm) on each group size g in {1, 2, 4} dividing the world's size; the results
/// by g.
template <class F>
auto on_each_rank_count(const mpi::Communicator& world, F&& compute) {
  std::map<int, decltype(compute(world))> out;
  for (int group : {1, 2, 4}) {
    if (world.size() % group != 0) continue;
    const mpi::Communicator comm = world.split(world.rank() / group, world.rank());
    REQUIRE(comm.size() == group);
    out.emplace(group, compute(comm));
  }
  return out;
}

}  // namespace hyperad::testing
