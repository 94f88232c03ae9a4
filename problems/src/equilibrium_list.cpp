// The equilibrium family: deep-equilibrium models whose inner state is a fixed point of a
// general (non-symmetric) map.
#include "equilibrium.hpp"
#include "families.hpp"

namespace hyperad::problems::detail {

std::vector<ProblemInfo> equilibrium_problems() { return {equilibrium_classifier()}; }

}  // namespace hyperad::problems::detail
