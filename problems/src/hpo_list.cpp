// The hyperparameter-optimization family: regularization and kernel hyperparameters tuned
// on validation data (docs/problems/hyperparameters.md).
#include "families.hpp"
#include "hpo_common.hpp"

namespace hyperad::problems::detail {

std::vector<ProblemInfo> hyperparameter_problems() {
  return {logreg_problem(), ridge_problem(), multinomial_problem(), kernel_ridge_problem()};
}

}  // namespace hyperad::problems::detail
