#pragma once
// The outcome of an episode as bytes: what one process of a task-parallel meta-batch
// (UnitExchange, episodic.hpp) computed, read back by every process. Everything the
// meta-batch's aggregation reads travels — the hypergradient, objective, the whole
// Diagnostics, the final state and linear solution (warm starts), and a failure (its
// type and message) — so that every process aggregates the same values and throws the
// same error. Tensors travel as their bytes: the values are the same bits everywhere.
#include <cstdint>
#include <exception>
#include <string>

#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/sampling.hpp"

namespace hyperad::bilevel::detail {

struct EpisodeOutcome {
  Batch units;              // the episode's units, in meta-batch order
  std::int64_t first = 0;   // the position of units[0] in the meta-batch
  Hypergradient h;
  TensorList w, v;          // final state and linear solution (warm starts only)
  std::exception_ptr error;  // set when the episode failed (h, w, v then unset)
};

/// Appends `o` to `bytes`.
void pack(const EpisodeOutcome& o, std::string& bytes);

/// Reads one outcome from `bytes` at `pos` (advanced past it). ValueError when the bytes
/// end early or do not describe an outcome (`what` names their source in the message).
EpisodeOutcome unpack(const std::string& bytes, std::size_t& pos, const std::string& what);

}  // namespace hyperad::bilevel::detail
