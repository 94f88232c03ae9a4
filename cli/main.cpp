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
  return code;
}

CLI::App* add_run(CLI::App& app, RunArgs& a) {
  CLI::App* run = app.add_subcommand("run", "Optimize a problem's outer variable (hyperparameters, ...)");
  add_problem_args(*run, a.problem);
  run->add_flag("--small", a.problem.small, "Tiny sizes (for trying things out)");
  run->add_option("--method,-m", a.method, "Hypergradient method (default: the problem's; see 'hyperad list methods')");
  run->add_option("--inner-steps,-t", a.inner_steps, "Inner steps t per hypergradient")->check(whole_number(1));
  run->add_option("--linear-steps,-K", a.linear_steps, "Linear-system iterations K (AID, SID)")
      ->check(whole_number(0));
  run->add_option("--reverse-steps,-T", a.reverse_steps, "Steps reversed through (itd-truncated, itd-checkpointed)")
      ->check(whole_number(1));
  run->add_option("--outer-steps,-n", a.outer_steps, "Outer steps (default: the problem's)")->check(whole_number(0));
  run->add_option("--step-size,-a", a.step_size, "Outer step size α (default: the problem's)")
      ->check(real_number(0));
  run->add_option("--update", a.update, "Outer update rule (default: the problem's)")
      ->check(CLI::IsMember(names_of(hyperad::bilevel::kOuterUpdateNames)));
  run->add_option("--warm-start", a.warm_start,
                  "What each hypergradient starts from: none, inner, linear or inner+linear "
                  "(default: inner+linear; ITD: inner)")
      ->check(CLI::IsMember(names_of(hyperad::bilevel::kWarmStartNames)));
  run->add_option("--batch-size", a.batch_size, "SID minibatch size (0: full batches; default: the problem's)")
      ->check(whole_number(0));
  run->add_option("--cross-batches,-J", a.cross_batches, "SID cross-term batches J")->check(whole_number(1));
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

  // CLI11 says only "A subcommand is required" for a misspelled one: name the word.
  const auto known = [&](const char* word) {
    const CLI::App& root = app;
    const auto subs = root.get_subcommands([](const CLI::App*) { return true; });
    return std::any_of(subs.begin(), subs.end(), [&](const CLI::App* s) { return s->check_name(word); });
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1]))
    return fail(fmt::format("unknown subcommand '{}'; the subcommands are: list, run, check (see 'hyperad --help')",
                            argv[1]),
                2);
  try {
    app.parse(argc, argv);
    if (run->parsed()) return run_command(run_args);
    if (check->parsed()) return check_command(check_args);
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
