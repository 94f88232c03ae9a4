#pragma once
// The registry's entries, one per problem, each defined in the file named beside it and
// gathered in this order by registry.cpp (docs/problems/*.md describe the families).
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems::detail {

// Hyperparameter optimization: regularization and kernel hyperparameters tuned on
// validation data.
ProblemInfo logreg_problem();        // hpo_logreg.cpp
ProblemInfo ridge_problem();         // hpo_ridge.cpp
ProblemInfo multinomial_problem();   // hpo_multinomial.cpp
ProblemInfo kernel_ridge_problem();  // hpo_kernel_ridge.cpp
ProblemInfo text_hpo_problem();      // hpo_text.cpp (sparse tf-idf text)

// Data poisoning: perturb a fraction of the training points within a budget to maximize
// the trained model's validation loss.
ProblemInfo poisoning_info();  // poisoning.cpp

// Equilibrium models: a deep-equilibrium classifier z = tanh(A z + B x + c) trained by
// implicit differentiation; its inner map is not symmetric.
ProblemInfo equilibrium_classifier();  // equilibrium.cpp

}  // namespace hyperad::problems::detail

namespace hyperad::problems::meta {

// Meta-learning on N-way K-shot tasks: biased regularization and hyper-representation.
ProblemInfo biased_info();    // meta_biased.cpp
ProblemInfo hyperrep_info();  // meta_hyperrep.cpp

}  // namespace hyperad::problems::meta
