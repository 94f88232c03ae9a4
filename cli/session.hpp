#pragma once
// One outer run configured from the command line (run and tune share it): the problem
// instance, the method — a fixed problem's, or the episodic driver on a meta-batch of units —
// the outer loop's options (budgets, stationarity, schedules, validation) and the optimizer.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::cli {

struct Session {
  problems::Instance inst;
  problems::MethodConfig method_config;
  std::unique_ptr<bilevel::HypergradientMethod> method;          // a fixed problem's ...
  std::unique_ptr<bilevel::EpisodicHypergradient> episodic;      // ... or an episodic run's
  bilevel::OuterOptions options;
  std::unique_ptr<bilevel::OuterOptimizer> optimizer;
  std::string validation_name;
  std::string warm_start;  ///< the warm start in effect (a name)
  std::vector<std::string> notes;  ///< how the arguments were read, for the header lines

  bool is_episodic() const { return episodic != nullptr; }
  /// The method's name as the log shows it.
  std::string method_name() const;
  /// One line: "method …, update …, step size …, warm start …, …".
  std::string describe() const;
};

/// Whether `args` run `inst`'s episodic version: --meta-batch B > 0, or the problem's
/// preference without --meta-batch, or SID on a problem whose minibatches are its episodes
/// (equilibrium: there --batch-size is the meta-batch).
bool runs_episodic(const RunArgs& args, const problems::Instance& inst);

/// The session for `args` on `inst` (built by the caller for args.problem). ValueError for
/// settings that do not fit the problem or the method, with what to use instead.
Session make_session(const RunArgs& args, problems::Instance inst);

/// "<stem>.seed<k><extension>" for the k-th of several seeded runs ("" stays "").
std::string with_seed(const std::string& path, std::uint64_t seed);

}  // namespace hyperad::cli
