// hyperad: the command-line tool. Parses the subcommands (list, run, check) with CLI11 and
// turns every failure into one line `hyperad: error: ...` on stderr and a non-zero exit
// code (2 for a bad command line, 1 for anything that fails while running).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "common.hpp"
#include "ranks.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/data.hpp"

#ifndef HYPERAD_VERSION
#define HYPERAD_VERSION "unknown"
#endif

namespace {

using namespace hyperad::cli;

// Messages on one line: the tool's contract for scripts and tests.
int fail(const std::string& message, int code) {
  std::string line = message;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  while (!line.empty() && line.back() == ' ') line.pop_back();
  fmt::print(stderr, "hyperad: error: {}\n", line);
  abort_job_on_failure(code);  // under mpirun: the other ranks may wait in a collective
  return code;
}

// Under mpirun: `run` of an episodic problem spreads its meta-batch over the ranks, that of
// a data-parallel problem (without --meta-batch) its examples, in --chunks chunks, also on
// one rank (so that 1, 2, 4 ranks give the same bits); rank 0 prints and writes the files
// (the CSV, the plot, the state), the others stay silent; every rank reads a state it
// resumes from.
void join_ranks(RunArgs& a) {
  const Ranks& job = ranks();
  const bool data_parallel = hyperad::problems::find_problem(a.problem.problem).data_parallel;
  const bool episodic = a.meta_batch && *a.meta_batch > 0;
  if (a.chunks && !(job.launched && data_parallel && !episodic))
    throw hyperad::ValueError(fmt::format(
        "--chunks applies to a data-parallel problem's fixed run under mpirun{}",
        !job.launched    ? std::string()
        : !data_parallel ? fmt::format(" ('{}' is not data-parallel)", a.problem.problem)
                         : fmt::format(" (--meta-batch {} asks for an episodic run)", *a.meta_batch)));
  if (job.launched && data_parallel && !episodic) {
    const std::int64_t chunks = a.chunks.value_or(8);
    if (chunks < job.size)
      throw hyperad::ValueError(fmt::format("--chunks {}{} is fewer than the {} ranks: every rank needs a chunk at "
                                            "least (give --chunks {} or more)",
                                            chunks, a.chunks ? "" : " (the default)", job.size, job.size));
    a.shards = job.data_parallel(chunks);
  }
  a.exchange = job.exchange;
  if (job.size == 1) return;
  if (a.budget_seconds)
    throw hyperad::ValueError(fmt::format("--budget-seconds under mpirun ({} ranks) would stop each rank on its own "
                                          "clock, at different steps: give --outer-steps or --budget-samples",
                                          job.size));
  a.ranks = job.size;
  // Every rank holds the same state: rank 0 saves it, every rank resumes from it.
  a.writes_state = job.root();
  if (!job.root()) {
    a.csv.clear(), a.plot.clear();
    a.quiet = true;
    if (!std::freopen("/dev/null", "w", stdout)) throw hyperad::Error("cannot silence rank's standard output");
  }
}

// The settings of an outer run that `run` and `tune` share.
void add_method_flags(CLI::App* sub, RunArgs& a) {
  add_problem_args(*sub, a.problem);
  sub->add_flag("--small", a.problem.small, "Tiny sizes (for trying things out)");
  sub->add_option("--batch-size", a.batch_size,
                  "SID minibatch size (0: full batches; default: the problem's; within a unit for episodic runs)")
      ->check(whole_number(0));
  sub->add_option("--meta-batch", a.meta_batch,
                  "Episodic run: tasks / examples drawn per outer step (0: the fixed problem; default: the problem's "
                  "choice, see 'hyperad list')")
      ->check(whole_number(0));
  sub->add_option("--warm-start", a.warm_start,
                  "What each hypergradient starts from: none, inner, linear or inner+linear (fixed problem), none, "
                  "naive or full (episodic run); default: the problem's (see 'hyperad list')")
      ->check(CLI::IsMember({"none", "inner", "linear", "inner+linear", "naive", "full"}));
  sub->add_option("--execution", a.execution, "Episodic run: batched (default), sequential or threaded")
      ->check(CLI::IsMember(names_of(hyperad::bilevel::kExecutionNames)));
  sub->add_flag("--with-replacement", a.with_replacement,
                "Episodic run over a finite population: draw units with replacement (default: without)");
  sub->add_option("--update", a.update, "Outer update rule (default: the problem's)")
      ->check(CLI::IsMember(names_of(hyperad::bilevel::kOuterUpdateNames)));
  sub->add_option("--inner-momentum", a.inner_momentum, "SID: heavy-ball momentum of the inner iteration, in [0, 1)")
      ->check(real_number(0));
  sub->add_option("--budget-samples", a.budget_samples, "Stop once the run has used this many sample-gradients")
      ->check(whole_number(1));
  sub->add_option("--budget-seconds", a.budget_seconds, "Stop once the outer loop has run this many seconds")
      ->check(real_number(0));
  sub->add_option("--reverse-steps,-T", a.reverse_steps, "Steps reversed through (itd-truncated, itd-checkpointed)")
      ->check(whole_number(1));
}

CLI::App* add_run(CLI::App& app, RunArgs& a) {
  CLI::App* run = app.add_subcommand("run", "Optimize a problem's outer variable (hyperparameters, ...)");
  add_method_flags(run, a);
  run->add_option("--chunks", a.chunks,
                  "Under mpirun, a data-parallel problem (poisoning): cut every batch of examples into this many "
                  "chunks, dealt to the ranks; the numbers depend on it, not on the rank count (default 8)")
      ->check(whole_number(1));
  run->add_option("--method,-m", a.method, "Hypergradient method (default: the problem's; see 'hyperad list methods')");
  run->add_option("--variant", a.variant,
                  "A method variant of the JMLR 2023 comparison: no-warm, decreasing, warm, stocbio, alset, "
                  "deterministic (see 'hyperad list methods')");
  run->add_option("--inner-steps,-t", a.inner_steps, "Inner steps t per hypergradient")->check(whole_number(1));
  run->add_option("--linear-steps,-K", a.linear_steps, "Linear-system iterations K (AID, SID)")
      ->check(whole_number(0));
  run->add_option("--cross-batches,-J", a.cross_batches, "SID cross-term batches J")->check(whole_number(1));
  run->add_option("--inner-step", a.inner_step, "SID: η₀ of the inner iteration, in (0, 1] (default 1)")
      ->check(real_number(0));
  run->add_option("--linear-step", a.linear_step, "SID: η₀ of the linear iteration, in (0, 1] (default 1)")
      ->check(real_number(0));
  run->add_option("--step-decay", a.step_decay, "SID: steps decrease as η₀γ/(γ + s) with this γ (0: constant)")
      ->check(real_number(0));
  run->add_option("--t-growth", a.t_growth, "t over the outer steps s: constant, linear:RATE[:CAP] or sqrt:RATE[:CAP]");
  run->add_option("--K-growth", a.k_growth, "K over the outer steps, as --t-growth");
  run->add_option("--J-growth", a.j_growth, "J over the outer steps, as --t-growth");
  run->add_option("--outer-steps,-n", a.outer_steps, "Outer steps (default: the problem's; with a budget: until it is spent)")
      ->check(whole_number(0));
  run->add_option("--step-size,-a", a.step_size, "Outer step size α (default: the problem's)")
      ->check(real_number(0));
  run->add_option("--stationarity-every", a.stationarity_every,
                  "Log the gradient-mapping norm (∇f from a converged reference) every N steps; not counted in "
                  "the budget")
      ->check(whole_number(0));
  run->add_option("--validation-every", a.validation_every, "Evaluate the validation metric every N steps")
      ->check(whole_number(1));
  run->add_option("--seeds", a.seeds, "Run seeds --seed … --seed + N − 1 and summarize (median, quartiles)")
      ->check(whole_number(1));
  run->add_option("--csv", a.csv, "Write the per-step log (CSV) to FILE");
  run->add_option("--plot", a.plot, "Write a figure of the run (SVG) to FILE");
  auto* state = run->add_option("--save-state", a.state, "Save the optimizer state to FILE (periodically and at the end)");
  run->add_option("--save-every", a.save_every, "With --save-state: save every N steps (0: only at the end)")
      ->check(whole_number(0))
      ->capture_default_str();
  run->add_flag("--resume", a.resume, "Continue from the --save-state file if it exists")->needs(state);
  run->add_flag("--quiet,-q", a.quiet, "No progress display (the summary is still printed)");
  run->add_flag("--strict", a.strict,
                "Stop with an error at the first hypergradient that fails a check (see 'trusted' in docs/cli.md)");
  return run;
}

CLI::App* add_tune(CLI::App& app, TuneArgs& a) {
  CLI::App* tune = app.add_subcommand(
      "tune", "Random search over method settings at an equal sample budget (the JMLR 2023 variants by default)");
  add_method_flags(tune, a.run);
  tune->add_option("--candidates", a.candidates,
                   "Variants (no-warm, decreasing, warm, stocbio, alset, deterministic) or methods to tune; "
                   "default: the variants when the problem has a stochastic version, else its default method")
      ->delimiter(',');
  tune->add_option("--trials", a.trials, "Trials per candidate")->check(whole_number(1))->capture_default_str();
  tune->add_option("--max-count", a.max_count, "t, K and J are drawn log-uniformly in [1, N]")
      ->check(whole_number(1))
      ->capture_default_str();
  tune->add_option("--step-size,-a", a.run.step_size, "α₀: α is drawn log-uniformly in [α₀/10, 10 α₀] (default: the problem's)")
      ->check(real_number(0));
  tune->add_option("--csv", a.csv, "Write every trial (settings, score, samples, time) to FILE");
  tune->add_flag("--quiet,-q", a.run.quiet, "No line per trial");
  return tune;
}

CLI::App* add_check(CLI::App& app, CheckArgs& a) {
  CLI::App* check = app.add_subcommand(
      "check", "Compare every method's hypergradient with finite differences and the exact one (small sizes)");
  add_problem_args(*check, a.problem);
  check->add_flag("--full", a.full, "Use the problem's default sizes instead of the small ones");
  check->add_option("--inner-steps,-t", a.inner_steps, "Inner steps t (default: the problem's)")
      ->check(whole_number(1));
  check->add_option("--linear-steps,-K", a.linear_steps, "Linear-system iterations K (default: the problem's)")
      ->check(whole_number(0));
  check->add_option("--max-fd", a.max_fd, "Finite differences only up to this many outer variables")
      ->check(whole_number(1))
      ->capture_default_str();
  check->add_option("--tolerance", a.tolerance, "Exit 1 if a method's relative error exceeds this (0: report only)")
      ->check(real_number(0));
  check->add_flag("--quiet,-q", a.quiet, "Only the table of methods and the verdict");
  check->add_flag("--strict,!--no-strict", a.strict,
                  "A method whose hypergradient fails a check is reported failed (default; --no-strict: a note)")
      ->capture_default_str();
  return check;
}

}  // namespace

// Installed (prefix/bin/hyperad), the tool reads the datasets installed with it; in the
// build tree nothing is there and the library falls back to the source tree.
void find_installed_data() {
#ifdef HYPERAD_BIN_TO_DATA
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  const std::filesystem::path data = (exe.parent_path() / HYPERAD_BIN_TO_DATA).lexically_normal();
  if (std::filesystem::is_regular_file(data / "breast_cancer.csv", ec))
    hyperad::problems::detail::register_installed_data_dir(data.c_str());
#endif
}

int main(int argc, char** argv) {
  find_installed_data();
  CLI::App app{"hyperad: bilevel optimization with hypergradients (hyperparameters, meta-learning, poisoning, "
               "equilibrium models)",
               "hyperad"};
  app.set_version_flag("--version", HYPERAD_VERSION);
  app.require_subcommand(1);

  ListArgs list_args;
  CLI::App* list = app.add_subcommand("list", "List the problems, the methods and the datasets");
  list->add_option("what", list_args.what, "all, problems, methods or datasets")
      ->check(CLI::IsMember({"all", "problems", "methods", "datasets"}))
      ->capture_default_str();
  RunArgs run_args;
  const CLI::App* run = add_run(app, run_args);
  CheckArgs check_args;
  const CLI::App* check = add_check(app, check_args);
  TuneArgs tune_args;
  const CLI::App* tune = add_tune(app, tune_args);

  // CLI11 says only "A subcommand is required" for a misspelled one: name the word.
  const auto known = [&](const char* word) {
    const CLI::App& root = app;
    const auto subs = root.get_subcommands([](const CLI::App*) { return true; });
    return std::any_of(subs.begin(), subs.end(), [&](const CLI::App* s) { return s->check_name(word); });
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1]))
    return fail(fmt::format("unknown subcommand '{}'; the subcommands are: list, run, check, tune (see 'hyperad --help')",
                            argv[1]),
                2);
  try {
    app.parse(argc, argv);
    if (ranks().size > 1 && !run->parsed())
      throw hyperad::ValueError(fmt::format("under mpirun ({} ranks) only 'hyperad run' spreads over the ranks; run "
                                            "'hyperad {}' as one process",
                                            ranks().size, app.get_subcommands().front()->get_name()));
    if (run->parsed()) {
      join_ranks(run_args);
      return run_command(run_args);
    }
    if (check->parsed()) return check_command(check_args);
    if (tune->parsed()) return tune_command(tune_args);
    return list_command(list_args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    const CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    return fail(fmt::format("{} (see 'hyperad {}--help')", e.what(), sub ? sub->get_name() + " " : ""), 2);
  } catch (const hyperad::Error& e) {
    return fail(e.what(), 1);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  } catch (...) {
    return fail("unexpected failure", 1);
  }
}
