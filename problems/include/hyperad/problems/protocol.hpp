#pragma once
/// \file protocol.hpp
/// The tools of the thesis's comparisons, on the registered problems:
///
/// - `reference_gradient`: ∇f(λ) from a converged method, for the stationarity measure
///   (OuterOptions::reference_gradient, the gradient-mapping norm);
/// - `quartiles`: the median and quartiles of a figure over seeds;
/// - `variants`: the method variants of the JMLR 2023 comparison (SID without warm start,
///   with decreasing steps, warm-started, stocBiO-like, ALSET-like, deterministic);
/// - `random_search`: settings drawn log-uniformly for a variant, so that each is tuned at
///   one equal sample budget, as the paper tunes its variants.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::problems {

/// ∇f(λ) by AID solved to convergence on the instance's fixed problem (the full batch; for
/// the meta problems the average over their T fixed tasks, a sample-average estimate of the
/// task expectation): the inner solve to a step of 1e-11·max(1, ‖w‖), CG for a symmetric
/// inner Jacobian and GMRES otherwise to a relative residual of 1e-10, each call
/// warm-started from the previous one (the stationarity measure calls it along a run), in
/// strict mode (an untrusted reference throws UntrustedError).
bilevel::ReferenceGradient reference_gradient(const Instance& instance);

/// Median and quartiles (linear interpolation between order statistics, as NumPy's default);
/// NaN entries are ignored; all NaN for no finite value.
struct Quartiles {
  double q1 = 0, median = 0, q3 = 0;
  std::size_t count = 0;  ///< finite values used
};
Quartiles quartiles(std::vector<double> values);

/// A method variant of the JMLR 2023 comparison: a method with its warm start and the ties
/// between its counts (t = K = J for SID without warm start, J = K for stocBiO, t = J = 1
/// for ALSET).
struct Variant {
  std::string name;         ///< e.g. "stocbio"
  std::string description;  ///< one line
  MethodConfig method;      ///< name, warm start and fixed counts
  bool tie_counts = false;  ///< t = K = J (SID) or t = K (deterministic)
  bool j_equals_k = false;  ///< J = K
  bool decreasing = false;  ///< η_s = η₀γ/(γ + s) on the inner and linear iterations
};

/// The variants, in the paper's order: no-warm, decreasing, warm, stocbio, alset,
/// deterministic. The SID ones need a stochastic version of the problem.
const std::vector<Variant>& variants();
/// The variant named `name`; ValueError listing the names otherwise.
const Variant& find_variant(const std::string& name);
/// The method of variant `v` with counts t (and K, J by its ties), SID's η₀ and γ.
MethodConfig variant_method(const Variant& v, int t, int K, int J, double eta0, double gamma);

/// Settings drawn for one trial of a random search.
struct Trial {
  MethodConfig method;
  double step_size = 0;  ///< the outer α
  std::string describe() const;
};
/// The search space: α log-uniform in [α₀/10, 10α₀] (α₀ the problem's default); t, K, J
/// log-uniform integers in [1, max_count] (tied as the variant says; ALSET's t = J = 1);
/// SID's η₀ log-uniform in [0.05, 1] and, for decreasing steps, γ log-uniform in [1, 1000].
struct SearchSpace {
  double step_size = 0.1;  ///< α₀
  int max_count = 100;
};
/// `trials` settings of variant `v`, drawn from `seed` (the same on every machine).
std::vector<Trial> random_search(const Variant& v, const SearchSpace& space, int trials, std::uint64_t seed);

}  // namespace hyperad::problems
