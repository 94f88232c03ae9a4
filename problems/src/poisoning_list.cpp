// The data-poisoning family: an attacker perturbs a fraction of the training points
// within a budget to maximize the trained model's validation loss.
#include "families.hpp"
#include "poisoning.hpp"

namespace hyperad::problems::detail {

std::vector<ProblemInfo> poisoning_problems() { return {poisoning_info()}; }

}  // namespace hyperad::problems::detail
