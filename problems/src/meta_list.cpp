// The meta-learning family: biased regularization and hyper-representation on N-way
// K-shot tasks (docs/problems/meta-learning.md).
#include "families.hpp"
#include "meta_tasks.hpp"

namespace hyperad::problems::detail {

std::vector<ProblemInfo> meta_learning_problems() { return {meta::biased_info(), meta::hyperrep_info()}; }

}  // namespace hyperad::problems::detail
