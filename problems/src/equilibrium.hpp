#pragma once
// The equilibrium family's entries (equilibrium*.cpp), gathered by equilibrium_list.cpp.
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::detail {

/// `equilibrium`: a deep-equilibrium classifier z = tanh(A z + B x + c) trained by
/// implicit differentiation (docs/problems/equilibrium.md).
ProblemInfo equilibrium_classifier();

}  // namespace hyperad::problems::detail
