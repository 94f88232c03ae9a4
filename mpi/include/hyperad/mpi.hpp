#pragma once
/// \file mpi.hpp
/// Umbrella header of the optional MPI layer (target hyperad::mpi, -DHYPERAD_MPI=ON): the
/// MPI environment and communicators, and the differentiable collectives that make a
/// bilevel problem data-parallel (docs/mpi.md).
#include "hyperad/mpi/collectives.hpp"
#include "hyperad/mpi/communicator.hpp"
#include "hyperad/mpi/data_parallel.hpp"
#include "hyperad/mpi/task_parallel.hpp"
