#pragma once
// The registry's parts: each family of problems lists its entries in its own files.
#include <vector>

#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::detail {

std::vector<ProblemInfo> hyperparameter_problems();  // hpo_*.cpp
std::vector<ProblemInfo> meta_learning_problems();   // meta_*.cpp
std::vector<ProblemInfo> poisoning_problems();       // poisoning*.cpp
std::vector<ProblemInfo> equilibrium_problems();     // equilibrium*.cpp

}  // namespace hyperad::problems::detail
