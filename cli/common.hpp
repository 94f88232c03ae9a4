#pragma once
// What the `hyperad` subcommands share: the problem arguments (PROBLEM, --dataset,
// --option key=value, ...), the thread count, number formatting and aligned tables.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/shards.hpp"
#include "hyperad/problems/registry.hpp"

namespace hyperad::cli {

/// Arguments that select and configure a problem (run and check).
struct ProblemArgs {
  std::string problem;
  std::string dataset, data_dir;
  std::uint64_t seed = 0;
  bool small = false;
  std::vector<std::string> options;  ///< "key=value"
  int threads = 0;                   ///< 0: the default (OMP_NUM_THREADS or the cores)
};

/// Adds PROBLEM and the problem flags to a subcommand.
void add_problem_args(CLI::App& sub, ProblemArgs& args);
/// The ProblemConfig the arguments describe (ValueError for an option without '=').
problems::ProblemConfig problem_config(const ProblemArgs& args);
/// Sets the compute thread count (0 keeps the default).
void apply_threads(int threads);

/// A number in a table: 6 significant digits, "-" for NaN.
std::string num(double v);
/// A relative error or other small positive quantity: 2 digits in scientific notation.
std::string sci(double v);
/// Seconds as "850 ms", "12.3 s" or "4 min 05 s".
std::string duration(double seconds);

/// Validators with one-line messages naming the expected value ("--outer-steps: expected
/// a whole number >= 0, got 'abc'"), in place of CLI11's range checks.
CLI::Validator whole_number(long long min);
CLI::Validator real_number(double min);

/// A plain text table. `align` has one letter per column, 'l' or 'r'; by default the first
/// column is left-aligned and the others right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::string align = {})
      : header_(std::move(header)), align_(std::move(align)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  /// The table, each line starting with `indent`.
  std::string str(const std::string& indent = "  ") const;

 private:
  std::vector<std::string> header_;
  std::string align_;
  std::vector<std::vector<std::string>> rows_;
};

// The subcommands (each returns the process exit code).
struct ListArgs {
  std::string what = "all";  ///< all, problems, methods, datasets
};
int list_command(const ListArgs& args);

struct RunArgs {
  ProblemArgs problem;
  std::string method;
  std::string variant;  ///< a JMLR 2023 variant (problems::variants()) instead of --method
  std::optional<int> inner_steps{}, linear_steps{}, reverse_steps{}, cross_batches{};  ///< unset: the method's default
  std::optional<std::int64_t> outer_steps{}, batch_size{};                        ///< unset: the problem's default
  std::int64_t save_every = 10;
  std::optional<double> step_size{};  ///< unset: the problem's default
  /// unset: the update rule of the problem; the warm start: the problem's (hyperad list).
  std::string update, warm_start;
  /// Episodic runs: units per step (0: the fixed problem; unset: the problem's choice),
  /// how a meta-batch is computed, and a bounded population drawn with replacement.
  std::optional<std::int64_t> meta_batch{};
  std::string execution;
  bool with_replacement = false;
  /// SID: η₀ of the inner and linear iterations, γ of decreasing steps, inner momentum.
  std::optional<double> inner_step{}, linear_step{}, step_decay{}, inner_momentum{};
  /// t, K, J schedules: "constant", "linear:RATE[:CAP]" or "sqrt:RATE[:CAP]" from the base count.
  std::string t_growth, k_growth, j_growth;
  std::optional<std::int64_t> budget_samples{};
  std::optional<double> budget_seconds{};
  std::int64_t stationarity_every = 0;
  std::optional<std::int64_t> validation_every{};
  int seeds = 1;  ///< runs with seeds seed, seed + 1, …; the summary gives medians and quartiles
  std::string csv, plot, state;
  bool resume = false, quiet = false;
  bool strict = false;  ///< stop at the first hypergradient that fails a check
  /// Under mpirun: the meta-batch exchange over the ranks and their number (ranks.hpp); a
  /// data-parallel problem's examples in `chunks` chunks over the ranks (unset: 8).
  std::shared_ptr<const bilevel::UnitExchange> exchange{};
  int ranks = 1;
  std::optional<std::int64_t> chunks{};
  std::shared_ptr<const bilevel::ExampleShards> shards{};
  /// Writes the state file (--save-state): rank 0 only under mpirun; every rank reads it
  /// (--resume), all holding the same state.
  bool writes_state = true;
};
int run_command(const RunArgs& args);

struct TuneArgs {
  RunArgs run;                        ///< the problem and the settings shared by every trial
  std::vector<std::string> candidates;  ///< variants or method names; empty: the problem's comparison
  int trials = 10;
  int max_count = 100;                ///< t, K, J drawn in [1, max_count]
  std::string csv;                    ///< every trial's settings and score
};
int tune_command(const TuneArgs& args);

struct CheckArgs {
  ProblemArgs problem;
  bool full = false;            ///< default sizes instead of --small ones
  std::optional<int> inner_steps{}, linear_steps{};  ///< unset: the problem's defaults
  std::int64_t max_fd = 1000;   ///< finite differences only up to this many outer variables
  double tolerance = 0;         ///< > 0: exit 1 when a method's relative error exceeds it
  bool quiet = false;           ///< only the table and the verdict
  bool strict = true;           ///< a method whose hypergradient fails a check is reported failed
};
int check_command(const CheckArgs& args);

}  // namespace hyperad::cli
