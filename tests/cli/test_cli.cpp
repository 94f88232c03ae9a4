// The `hyperad` tool, run as a user would: every subcommand exits 0; the CSV log parses;
// the figure is well-formed SVG with the expected series; bad input gives one line
// `hyperad: error: ...` and a non-zero code; a saved run resumes to the same numbers.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hyperad/bilevel/outer.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/registry.hpp"

// make_method (methods.hpp), which the tool is built on: names, refusals, defaults.
TEST_CASE("make_method builds every method by name and refuses what cannot work") {
  using hyperad::ValueError;
  using namespace hyperad::problems;
  const Instance logreg = make_problem("logreg", {.small = true});
  // Three ITD variants, one AID per built-in linear solver, SID.
  std::vector<std::string> names;
  for (const MethodInfo& m : method_names()) names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"itd", "itd-truncated", "itd-checkpointed", "aid-fp", "aid-neumann", "aid-cg",
                                          "aid-gmres", "aid-bicgstab", "aid-normal-cg", "aid-lu", "sid"});
  for (const MethodInfo& m : method_names()) {
    if (!method_unavailable_reason(m.name, logreg).empty()) continue;
    auto method = make_method({.name = m.name, .inner_steps = 5, .linear_steps = 3}, logreg);
    CHECK(method->hypergradient(logreg.problem, logreg.lambda0).grad.size() == logreg.lambda0.size());
  }
  CHECK_THROWS_WITH_AS(make_method({.name = "nope"}, logreg),
                       doctest::Contains("unknown method 'nope'; the methods are: itd, itd-truncated"), ValueError);
  CHECK_THROWS_WITH_AS(make_method({.name = "aid-cg", .batch_size = 4}, logreg),
                       doctest::Contains("applies to sid only"), ValueError);
  CHECK_THROWS_WITH_AS(make_method({.name = "aid-gmres", .reverse_steps = 4}, logreg),
                       doctest::Contains("reverse steps T apply to itd-truncated"), ValueError);
  CHECK_THROWS_WITH_AS(make_method({.name = "itd", .warm_start = hyperad::bilevel::WarmStart::inner_and_linear}, logreg),
                       doctest::Contains("ITD has no linear system to warm-start (warm start 'inner+linear')"),
                       ValueError);
  CHECK(make_method({.name = "aid-bicgstab"}, logreg)->name() == "AID-BiCGStab");
  CHECK(make_method({}, logreg)->name() == make_method({.name = logreg.defaults.method}, logreg)->name());
  // Problems without a stochastic version refuse sid; non-symmetric maps refuse aid-cg.
  for (const ProblemInfo& info : all_problems()) {
    const Instance inst = make_problem(info.name, {.small = true});
    if (!inst.stochastic)
      CHECK_THROWS_WITH_AS(make_method({.name = "sid"}, inst), doctest::Contains("needs a stochastic"), ValueError);
    if (!inst.problem.symmetric_jacobian())
      CHECK_THROWS_WITH_AS(make_method({.name = "aid-cg"}, inst), doctest::Contains("use aid-gmres"), ValueError);
    // aid-lu assembles the dense system: refused above 4000 unknowns, with the size.
    const std::int64_t n = hyperad::list::numel(inst.problem.initial_state());
    if (n > 4000)
      CHECK_THROWS_WITH_AS(make_method({.name = "aid-lu"}, inst), doctest::Contains("above its limit of 4000"),
                           ValueError);
  }
}

#ifdef HYPERAD_CLI

namespace fs = std::filesystem;

namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

// A scratch directory for this process, removed at exit.
const fs::path& scratch() {
  static const struct Dir {
    fs::path path = fs::temp_directory_path() / ("hyperad_test_cli_" + std::to_string(getpid()));
    Dir() { fs::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } dir;
  return dir.path;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `hyperad ARGS` with stdout and stderr captured apart (`launcher`: a command put in
// front, e.g. mpiexec).
Result cli(const std::string& args, const std::string& launcher = "") {
  const fs::path out = scratch() / "stdout", err = scratch() / "stderr";
  // Built with += (GCC 12 warns falsely about "literal" + std::string chains under -O3).
  std::string cmd = launcher;
  cmd += " '";
  cmd += HYPERAD_CLI;
  cmd += "' ";
  cmd += args;
  cmd += " >'";
  cmd += out.string();
  cmd += "' 2>'";
  cmd += err.string();
  cmd += "'";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read(out);
  r.err = read(err);
  return r;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> f;
  std::istringstream in(line);
  for (std::string s; std::getline(in, s, ',');) f.push_back(s);
  if (!line.empty() && line.back() == ',') f.emplace_back();
  return f;
}

// Expects a failure with exactly one line on stderr, `hyperad: error: ...` containing `what`.
void expect_error(const Result& r, int code, const std::string& what) {
  CHECK(r.code == code);
  const auto l = lines(r.err);
  REQUIRE(l.size() == 1);
  CHECK(l[0].rfind("hyperad: error: ", 0) == 0);
  INFO("stderr: ", r.err);
  CHECK(l[0].find(what) != std::string::npos);
}

// Well-formed XML, enough for our writer's output: balanced, properly nested tags, quoted
// attributes, one root. Returns the root element's name, or "" when malformed.
std::string xml_root(const std::string& s) {
  std::vector<std::string> stack;
  std::string root;
  for (std::size_t i = s.find('<'); i != std::string::npos; i = s.find('<', i)) {
    if (s.compare(i, 2, "<?") == 0 || s.compare(i, 4, "<!--") == 0) {
      const std::size_t end = s.find(s[i + 1] == '?' ? "?>" : "-->", i);
      if (end == std::string::npos) return "";
      i = end + 2;
      continue;
    }
    // The tag's end: the first '>' outside a quoted attribute value.
    std::size_t j = i + 1;
    for (char quote = 0; j < s.size() && (quote || s[j] != '>'); ++j)
      if (s[j] == '"') quote = quote ? 0 : '"';
    if (j >= s.size()) return "";
    const std::string tag = s.substr(i + 1, j - i - 1);
    const bool closing = tag[0] == '/', empty = tag.back() == '/';
    const std::string name = tag.substr(closing, tag.find_first_of(" \t\n/>", 1) - closing);
    if (closing) {
      if (stack.empty() || stack.back() != name) return "";
      stack.pop_back();
    } else {
      if (stack.empty() && !root.empty()) return "";  // a second root
      if (root.empty()) root = name;
      if (!empty) stack.push_back(name);
    }
    i = j + 1;
  }
  return stack.empty() ? root : "";
}

}  // namespace

TEST_CASE("hyperad list and --help exit 0 and show the problems, methods and datasets") {
  const Result r = cli("list");
  CHECK(r.code == 0);
  for (const char* word : {"logreg", "breast_cancer", "aid-cg", "itd-checkpointed", "sid", "Datasets", "fashion_mnist"})
    CHECK_MESSAGE(r.out.find(word) != std::string::npos, word);
  CHECK(cli("list methods").out.find("logreg") == std::string::npos);
  CHECK(cli("run --help").code == 0);
  CHECK(cli("--version").code == 0);
}

TEST_CASE("hyperad run writes a parsable CSV and a well-formed SVG, and the objective falls") {
  const fs::path csv = scratch() / "run.csv", svg = scratch() / "run.svg";
  const Result r = cli("run logreg --small --outer-steps 4 --threads 1 --csv '" + csv.string() + "' --plot '" +
                           svg.string() + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("test_accuracy") != std::string::npos);  // the evaluation in the summary
  CHECK(r.out.find(svg.string()) != std::string::npos);     // where the plot went

  const auto rows = lines(read(csv));
  REQUIRE(rows.size() == 5);
  CHECK(rows[0] == hyperad::bilevel::kOuterCsvHeader);
  const std::size_t columns = split(rows[0]).size();
  std::vector<double> objective;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto f = split(rows[i]);
    REQUIRE(f.size() == columns);
    CHECK(std::stoll(f[0]) == static_cast<long long>(i - 1));
    for (std::size_t c = 0; c + 1 < columns; ++c) {  // all but the warnings
      std::size_t used = 0;
      CHECK_NOTHROW(std::stod(f[c], &used));
      CHECK(used == f[c].size());
    }
    objective.push_back(std::stod(f[1]));
  }
  CHECK(objective.back() < objective.front());

  const std::string doc = read(svg);
  CHECK(xml_root(doc) == "svg");
  const auto inst = hyperad::problems::make_problem("logreg", {.small = true});
  for (const std::string& label : {std::string("outer objective"), inst.validation_name, std::string("‖h‖")})
    CHECK_MESSAGE(doc.find("data-label=\"" + label + "\"") != std::string::npos, label);
}

TEST_CASE("hyperad check agrees with the exact and finite-difference hypergradients") {
  const Result r = cli("check logreg --tolerance 1e-6 --threads 1");
  INFO("stdout: ", r.out, "\nstderr: ", r.err);
  CHECK(r.code == 0);
  for (const char* m : {"itd", "itd-checkpointed", "aid-fp", "aid-cg", "aid-gmres", "aid-normal-cg", "sid"})
    CHECK_MESSAGE(r.out.find(m) != std::string::npos, m);
  CHECK(r.out.find("within --tolerance") != std::string::npos);
  CHECK(r.out.find("hypergradient at λ0") != std::string::npos);
  // -q keeps the table and the verdict only.
  const Result q = cli("check logreg -q --tolerance 1e-6 --threads 1");
  CHECK(q.code == 0);
  CHECK(q.out.find("hypergradient at λ0") == std::string::npos);
  CHECK(q.out.find("aid-cg") != std::string::npos);
  CHECK(q.out.find("within --tolerance") != std::string::npos);
  // An impossible tolerance fails, naming the methods.
  expect_error(cli("check logreg -t 50 --tolerance 1e-30"), 1, "relative error above --tolerance");
  // Finite differences say how accurate they are.
  CHECK(r.out.find("estimated relative error") != std::string::npos);
  // Poisoning contracts slowly (q ≈ 0.978): t and K follow q, so the fixed-point methods are
  // not cut short. With t = K = the inner solve's 282 steps ITD, FP, Neumann and SID were
  // 1.2e-3 off without a note.
  const Result p = cli("check poisoning --max-fd 1 --tolerance 1e-9 --threads 1");
  INFO("poisoning: ", p.out, p.err);
  CHECK(p.code == 0);
  CHECK(p.out.find("the contraction estimate q ≈ 0.97") != std::string::npos);
  // Cut short on purpose (-t 300), the table says why the errors are large.
  const Result cut = cli("check poisoning --max-fd 1 -t 300 --threads 1 -q");
  CHECK(cut.out.find("truncated: q^300") != std::string::npos);
}

TEST_CASE("hyperad reports bad input in one line with a non-zero exit code") {
  struct Bad {
    const char* args;
    int code;  // 2: rejected by the command-line parser, 1: by the run itself
    const char* message;
  };
  const Bad cases[] = {
      {"run logreg --bogus", 2, "--bogus"},
      {"run no_such_problem", 2, "unknown problem 'no_such_problem'; the problems are: logreg"},
      {"check no_such_problem", 2, "unknown problem 'no_such_problem'"},
      {"frobnicate", 2, "unknown subcommand 'frobnicate'; the subcommands are: list, run, check"},
      {"run logreg --seed -1", 2, "--seed: expected a whole number in [0, 18446744073709551615], got '-1'"},
      {"run logreg --seed 12345678901234567890123", 2, "got '12345678901234567890123'"},
      {"run logreg --small -n 1 --save-state /tmp", 1, "--save-state '/tmp' is a directory"},
      {"run logreg --method nope", 1, "unknown method 'nope'; the methods are: itd"},
      {"run logreg --outer-steps abc", 2, "--outer-steps: expected a whole number >= 0, got 'abc'"},
      {"run logreg -t 0", 2, "--inner-steps"},
      {"run logreg --update sideways", 2, "--update"},
      {"run logreg --option nonsense", 1, "--option 'nonsense': expected key=value"},
      {"run logreg --option no_key=1", 1, "unknown option 'no_key'"},
      {"run logreg --resume", 2, "--save-state"},
      {"run logreg --plot /nonexistent_dir/x.svg", 1, "does not exist"},
      {"check", 2, "problem is required"},
      {"", 2, "subcommand"},
  };
  for (const Bad& c : cases) {
    INFO("hyperad ", c.args);
    expect_error(cli(c.args), c.code, c.message);
  }
  // A problem reading Fashion-MNIST from a directory without it says how to get it.
  for (const auto& p : hyperad::problems::all_problems()) {
    if (std::find(p.datasets.begin(), p.datasets.end(), "fashion_mnist") == p.datasets.end()) continue;
    expect_error(cli("run " + p.name + " --small --dataset fashion_mnist --data-dir /nonexistent_dir"), 1,
                 "apt-get install dataset-fashion-mnist");
    break;
  }
}

// The n-th field of every data row of a CSV log (header skipped).
std::vector<std::string> column(const fs::path& csv, std::size_t n) {
  std::vector<std::string> out;
  const auto rows = lines(read(csv));
  for (std::size_t i = 1; i < rows.size(); ++i) out.push_back(split(rows[i]).at(n));
  return out;
}

TEST_CASE("episodic runs: meta-batches by default for meta-learning, warm starts none/naive/full, resume") {
  const std::string common = " --small --threads 1 -q ";
  const Result r = cli("run meta_biased" + common + "-n 5");
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("AID-CG over tasks (meta-batch 4, warm start none, batched)") != std::string::npos);
  CHECK(r.out.find("test_accuracy_ci95") != std::string::npos);
  // --meta-batch 0: the fixed problem of T tasks.
  const Result fixed = cli("run meta_biased" + common + "-n 3 --meta-batch 0");
  REQUIRE(fixed.code == 0);
  CHECK(fixed.out.find("over tasks") == std::string::npos);
  CHECK(cli("run meta_hyperrep" + common + "-n 3 --meta-batch 2 --warm-start naive --execution sequential").code == 0);
  CHECK(cli("run meta_hyperrep" + common + "-n 3 -o task_pool=6 --warm-start full --execution threaded").code == 0);
  expect_error(cli("run meta_biased" + common + "-n 2 --warm-start full"), 1, "needs a bounded population");
  expect_error(cli("run meta_biased" + common + "-n 2 --warm-start inner"), 1, "is for the fixed problem");
  expect_error(cli("run logreg" + common + "-n 2 --warm-start naive"), 1,
               "applies to episodic runs (--meta-batch B); problem 'logreg' has none");
  expect_error(cli("run logreg" + common + "--meta-batch 3"), 1, "problem 'logreg' has no episodic version");
  expect_error(cli("run meta_biased" + common + "--meta-batch 3 -o task_pool=2"), 1,
               "meta-batch 3 exceeds the population of 2 tasks");
  expect_error(cli("run logreg" + common + "-n 1 --execution threaded"), 1, "apply to episodic runs");
  expect_error(cli("run meta_biased" + common + "-n 1 --with-replacement"), 1,
               "sampling with replacement needs a bounded population");
  CHECK(cli("run meta_biased" + common + "-n 2 -o task_pool=4 --with-replacement").code == 0);

  // Save and resume with full per-task buffers and the task sampler: the same numbers.
  const fs::path full = scratch() / "ep_full.csv", cut = scratch() / "ep_cut.csv", state = scratch() / "ep.state";
  const std::string run = "run meta_biased" + common + "-o task_pool=5 --meta-batch 2 --warm-start full ";
  REQUIRE(cli(run + "-n 6 --csv '" + full.string() + "'").code == 0);
  REQUIRE(cli(run + "-n 3 --csv '" + cut.string() + "' --save-state '" + state.string() + "'").code == 0);
  const Result resumed = cli(run + "-n 6 --csv '" + cut.string() + "' --save-state '" + state.string() + "' --resume");
  INFO("stderr: ", resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(column(full, 1) == column(cut, 1));  // objective, 17 digits
  CHECK(column(full, 3) == column(cut, 3));  // ‖h‖
  CHECK(column(full, 11) == column(cut, 11));  // total samples
  expect_error(cli("run meta_biased" + common + "-o task_pool=5 --meta-batch 2 --warm-start naive -n 6 --save-state '" +
                   state.string() + "' --resume"),
               1, "episode warm start = 'full', but this run has 'naive'");
}

TEST_CASE("equilibrium: SID on minibatches of 100 examples trains (it diverged at step 35 before)") {
  const fs::path csv = scratch() / "eq_sid.csv";
  const Result r = cli("run equilibrium --method sid --batch-size 100 -n 60 --threads 1 --csv '" + csv.string() + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("SID's minibatches are episodes of examples: 100 examples per step") != std::string::npos);
  const auto objective = column(csv, 1);
  REQUIRE(objective.size() == 60);
  for (const auto& o : objective) CHECK(std::isfinite(std::stod(o)));
  CHECK(std::stod(objective.back()) < 0.5 * std::stod(objective.front()));
  CHECK(column(csv, 10).front() == std::to_string(100 * (3 + 3 + 1 + 1)));  // T = K = 3 per example
  // --batch-size 0, the full batch: every example in each step.
  const Result all = cli("run equilibrium --small --method sid --batch-size 0 -n 2 -q --threads 1 --csv '" + csv.string() + "'");
  REQUIRE(all.code == 0);
  CHECK(column(csv, 10).front() == std::to_string(24 * (3 + 3 + 1 + 1)));
}

TEST_CASE("protocol flags: budgets, stationarity, seeds, schedules, SID's steps, the JMLR variants, tune") {
  const std::string common = " --small --threads 1 -q ";
  const fs::path csv = scratch() / "protocol.csv";
  // A sample budget ends the run at the first step that reaches it.
  Result r = cli("run logreg" + common + "--budget-samples 50000 --csv '" + csv.string() + "'");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("(budget spent)") != std::string::npos);
  auto totals = column(csv, 11);
  REQUIRE(totals.size() >= 2);
  CHECK(std::stoll(totals.back()) >= 50000);
  CHECK(std::stoll(totals[totals.size() - 2]) < 50000);
  // The stationarity column every 2 steps, NaN between; its cost is not in the seconds.
  r = cli("run logreg" + common + "-n 5 --stationarity-every 2 --csv '" + csv.string() + "'");
  REQUIRE(r.code == 0);
  CHECK(lines(read(csv))[0].find(",stationarity,") != std::string::npos);
  const auto st = column(csv, 14);
  REQUIRE(st.size() == 5);
  CHECK(std::stod(st[0]) > 0);
  CHECK(st[1] == "nan");
  CHECK(std::stod(st[4]) > 0);
  CHECK(r.out.find("stationarity") != std::string::npos);
  // Several seeds: per-seed logs and the median with its quartiles.
  r = cli("run logreg" + common + "-n 2 --seeds 3 --csv '" + csv.string() + "'");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("3 seeds (0 to 2)") != std::string::npos);
  CHECK(r.out.find("median [Q1, Q3]") != std::string::npos);
  for (int k = 0; k < 3; ++k) CHECK(fs::exists(scratch() / ("protocol.seed" + std::to_string(k) + ".csv")));
  // t growing linearly with the outer step, capped; SID's own step sizes and momentum.
  r = cli("run poisoning" + common + "-n 4 -m sid -t 2 --t-growth linear:1:4 --inner-step 0.5 --step-decay 10 "
          "--inner-momentum 0.3 --csv '" + csv.string() + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(column(csv, 7) == std::vector<std::string>{"2", "3", "4", "4"});
  expect_error(cli("run logreg" + common + "-n 1 --t-growth cubic:2"), 1, "--t-growth 'cubic:2'");
  expect_error(cli("run logreg" + common + "-n 1 -m aid-cg --inner-step 0.5"), 1, "apply to sid only");
  // Every variant of the JMLR 2023 comparison runs from the command line.
  for (const char* v : {"no-warm", "decreasing", "warm", "stocbio", "alset", "deterministic"}) {
    INFO("variant ", v);
    CHECK(cli("run poisoning" + common + "-n 2 -t 3 --variant " + v).code == 0);
  }
  expect_error(cli("run poisoning" + common + "--variant nope"), 1, "unknown variant 'nope'; the variants are: no-warm");
  expect_error(cli("run poisoning" + common + "--variant no-warm -t 3 -K 4"), 1, "ties t = K = J");
  expect_error(cli("run poisoning" + common + "--variant warm --warm-start none"), 1, "sets the warm start");
  // Random search at an equal budget: a row per candidate, every trial in the CSV.
  const fs::path trials = scratch() / "trials.csv";
  r = cli("tune poisoning" + common + "--trials 2 --budget-samples 3000 --candidates no-warm,deterministic --csv '" +
          trials.string() + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("no-warm") != std::string::npos);
  CHECK(r.out.find("deterministic") != std::string::npos);
  CHECK(r.out.find("median [Q1, Q3]") != std::string::npos);
  CHECK(lines(read(trials)).size() == 5);
  expect_error(cli("tune logreg" + common + "--trials 2"), 1, "give --budget-samples");
  expect_error(cli("tune logreg" + common + "--trials 2 --budget-samples 100 --candidates zzz"), 1,
               "unknown variant or method 'zzz'");
  expect_error(cli("tune meta_biased" + common + "--trials 2 --budget-samples 100 --candidates warm"), 1,
               "variant 'warm' applies to a problem's fixed (minibatch) version");
  // `hyperad list` says each problem's default warm start and why.
  const Result l = cli("list problems");
  CHECK(l.out.find("warm start: none — each step draws fresh tasks") != std::string::npos);
  CHECK(l.out.find("warm start: inner+linear — ") != std::string::npos);
}

TEST_CASE("hyperad run --save-state then --resume continues to the uninterrupted run's numbers") {
  const fs::path state = scratch() / "run.state", csv = scratch() / "resumed.csv", full = scratch() / "full.csv";
  const std::string common = "run logreg --small --threads 1 -q ";
  REQUIRE(cli(common + "-n 6 --csv '" + full.string() + "'").code == 0);
  REQUIRE(cli(common + "-n 3 --save-state '" + state.string() + "' --csv '" + csv.string() + "'").code == 0);
  CHECK(fs::exists(state));
  const Result r = cli(common + "-n 6 --save-state '" + state.string() + "' --resume --csv '" + csv.string() + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("steps 3–5 in this run") != std::string::npos);
  const auto a = lines(read(full)), b = lines(read(csv));
  REQUIRE(a.size() == 7);
  REQUIRE(b.size() == 7);
  for (std::size_t i = 1; i < a.size(); ++i) {
    const auto fa = split(a[i]), fb = split(b[i]);
    CHECK(fa[0] == fb[0]);  // step
    CHECK(fa[1] == fb[1]);  // objective, to 17 digits
    CHECK(fa[3] == fb[3]);  // ‖h‖
  }
  // A different method cannot continue this state.
  expect_error(cli(common + "-n 8 -m itd --save-state '" + state.string() + "' --resume"), 1, "state file");
}

TEST_CASE("hyperad run refuses colliding outputs, reports a full disk, and resumes only its own run") {
  const fs::path csv = scratch() / "a.csv", state = scratch() / "a.state";
  const std::string common = "run logreg --small --threads 1 -q ";
  expect_error(cli(common + "-n 1 --csv '" + csv.string() + "' --plot '" + csv.string() + "'"), 1,
               "--csv '" + csv.string() + "' and --plot '" + csv.string() + "' name the same file");
  const std::string other_spelling = (scratch() / "." / "a.csv").string();
  expect_error(cli(common + "-n 1 --csv '" + csv.string() + "' --save-state '" + other_spelling + "'"), 1,
               "name the same file");
  if (fs::exists("/dev/full")) expect_error(cli(common + "-n 2 --csv /dev/full"), 1, "No space left on device");

  REQUIRE(cli(common + "-n 3 --save-state '" + state.string() + "'").code == 0);
  const std::string resume = "--save-state '" + state.string() + "' --resume";
  expect_error(cli(common + "-n 5 --seed 1 " + resume), 1, "seed = '0', but this run has '1'");
  expect_error(cli(common + "-n 5 --dataset synthetic " + resume), 1, "dataset = 'breast_cancer', but this run has 'synthetic'");
  expect_error(cli(common + "-n 5 --step-size 0.5 " + resume), 1, "step size = ");
  expect_error(cli(common + "-n 5 -t 7 " + resume), 1, "t (--inner-steps) = 'default', but this run has '7'");
  expect_error(cli(common + "-n 2 " + resume), 1, "is at step 3, past this run's end (outer_steps = 2)");
  const Result done = cli(common + "-n 3 " + resume);
  CHECK(done.code == 0);
  CHECK(done.out.find("all done before this run") != std::string::npos);
}

TEST_CASE("a resume killed at any moment leaves a whole CSV log that covers the saved steps") {
  const fs::path base_state = scratch() / "k.state", base_csv = scratch() / "k.csv";
  // A long log (3000 rows, ~400 kB), so that rewriting it on resume takes a while.
  const std::string common = "run logreg --small --threads 1 -q -t 5 -K 2 ";
  REQUIRE(cli(common + "-n 3000 --save-every 0 --save-state '" + base_state.string() + "' --csv '" + base_csv.string() +
              "'")
              .code == 0);
  const std::size_t fields = split(lines(read(base_csv)).at(0)).size();
  int killed_during_run = 0;
  for (int trial = 0; trial < 80; ++trial) {
    CAPTURE(trial);
    const fs::path state = scratch() / "kk.state", csv = scratch() / "kk.csv";
    fs::copy_file(base_state, state, fs::copy_options::overwrite_existing);
    fs::copy_file(base_csv, csv, fs::copy_options::overwrite_existing);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      const std::string st = state.string(), cs = csv.string();
      execl(HYPERAD_CLI, HYPERAD_CLI, "run", "logreg", "--small", "--threads", "1", "-q", "-t", "5", "-K", "2", "-n",
            "3400", "--save-every", "1", "--save-state", st.c_str(), "--resume", "--csv", cs.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    usleep(static_cast<useconds_t>(1000 * trial));  // 0 to 79 ms: start-up, the log rewrite, the first steps
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFSIGNALED(status)) ++killed_during_run;
    const std::int64_t saved = hyperad::bilevel::read_state_file(state.string()).step;
    const auto rows = lines(read(csv));
    REQUIRE(!rows.empty());
    CHECK(rows[0] == lines(read(base_csv))[0]);
    // Every row is whole except perhaps the last (an append cut by the kill); the steps
    // before the saved one are all there, once, in order.
    std::int64_t next = 0;
    bool cut_inside = false, out_of_order = false;
    for (std::size_t i = 1; i < rows.size(); ++i) {
      const auto f = split(rows[i]);
      if (f.size() != fields) {
        cut_inside = i + 1 != rows.size();
        break;
      }
      out_of_order = out_of_order || std::stoll(f[0]) != next;
      ++next;
    }
    CHECK(!cut_inside);
    CHECK(!out_of_order);
    CHECK(next >= saved);
  }
  CHECK(killed_during_run > 0);  // the kills landed while the run was going
}

#endif  // HYPERAD_CLI

#ifdef HYPERAD_CLI_MPIEXEC
TEST_CASE("under mpirun, an episodic run spreads its meta-batch over the ranks with one process's numbers") {
  const std::string mpi2 = std::string(HYPERAD_CLI_MPI_ENV) + " '" + HYPERAD_CLI_MPIEXEC + "' -n 2";
  const fs::path spread = scratch() / "mpi_spread.csv", alone = scratch() / "mpi_alone.csv";
  const std::string run = "run meta_biased --small --threads 1 -q -n 3 --meta-batch 4 ";
  const Result r = cli(run + "--csv '" + spread.string() + "'", mpi2);
  INFO("stderr: ", r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("sequential, shared by 2 MPI ranks") != std::string::npos);
  std::size_t logs = 0;
  for (const std::string& l : lines(r.out)) logs += l.rfind("CSV log:", 0) == 0 ? 1 : 0;
  CHECK(logs == 1);  // rank 0 alone prints and writes
  REQUIRE(cli(run + "--execution sequential --csv '" + alone.string() + "'").code == 0);
  CHECK(column(spread, 1) == column(alone, 1));    // objective, 17 digits
  CHECK(column(spread, 3) == column(alone, 3));    // ‖h‖
  CHECK(column(spread, 11) == column(alone, 11));  // total samples
  // What does not spread is refused on every rank, with the reason.
  const Result fixed = cli("run logreg --small -n 2", mpi2);
  CHECK(fixed.code != 0);
  CHECK(fixed.err.find("hyperad: error: under mpirun (2 ranks) an episodic run spreads its meta-batch over the ranks "
                        "(--meta-batch B; 'hyperad list' says which problems have one) and a data-parallel problem its "
                        "examples; problem 'logreg' runs its fixed problem, which cannot be spread") != std::string::npos);
  const Result other = cli("list", mpi2);
  CHECK(other.code != 0);
  CHECK(other.err.find("only 'hyperad run' spreads over the ranks; run 'hyperad list' as one process") !=
        std::string::npos);
}

TEST_CASE("under mpirun, a data-parallel problem spreads its examples: the same numbers on 1 and 2 ranks") {
  const std::string mpi = std::string(HYPERAD_CLI_MPI_ENV) + " '" + HYPERAD_CLI_MPIEXEC + "' -n ";
  const std::string run = "run poisoning --small --threads 1 -n 3 ";  // not quiet: the note on the chunks
  for (const std::string method : {"--method aid-cg", "--method sid --batch-size 9"}) {
    CAPTURE(method);
    std::vector<std::vector<std::string>> by_ranks;
    for (int np : {1, 2}) {
      const fs::path csv = scratch() / fmt::format("mpi_examples_{}.csv", np);
      const Result r = cli(run + method + " --chunks 4 --csv '" + csv.string() + "'", mpi + std::to_string(np));
      INFO("stderr: ", r.err);
      REQUIRE(r.code == 0);
      CHECK(r.err.find("poisoning: data parallel, every batch of examples in 4 chunks over " + std::to_string(np) +
                       " MPI rank") != std::string::npos);
      by_ranks.push_back(column(csv, 1));  // the objective, 17 digits
      by_ranks.push_back(column(csv, 3));  // ‖h‖
    }
    CHECK(by_ranks[0] == by_ranks[2]);  // bit for bit
    CHECK(by_ranks[1] == by_ranks[3]);
    // One process without MPI sums in another order: the same run to rounding.
    const fs::path alone = scratch() / "mpi_examples_alone.csv";
    REQUIRE(cli(run + method + " --csv '" + alone.string() + "'").code == 0);
    const std::vector<std::string> plain = column(alone, 1);
    REQUIRE(plain.size() == by_ranks[0].size());
    for (std::size_t i = 0; i < plain.size(); ++i)
      CHECK(std::stod(plain[i]) == doctest::Approx(std::stod(by_ranks[0][i])).epsilon(1e-9));
  }
  // Saved on 2 ranks (rank 0 writes, every rank reads), resumed on 2, then on 1: the
  // uninterrupted run's numbers.
  const fs::path whole = scratch() / "mpi_whole.csv", cut = scratch() / "mpi_cut.csv", state = scratch() / "mpi.state";
  const std::string resumable = "run poisoning --small --threads 1 -q --chunks 4 ";
  const std::string files = " --csv '" + cut.string() + "' --save-state '" + state.string() + "'";
  REQUIRE(cli(resumable + "-n 4 --csv '" + whole.string() + "'", mpi + "1").code == 0);
  REQUIRE(cli(resumable + "-n 2" + files, mpi + "2").code == 0);
  for (const auto& [steps, np] : {std::pair{3, 2}, std::pair{4, 1}}) {
    const Result resumed = cli(resumable + "-n " + std::to_string(steps) + files + " --resume", mpi + std::to_string(np));
    INFO("stderr: ", resumed.err);
    REQUIRE(resumed.code == 0);
  }
  CHECK(column(whole, 1) == column(cut, 1));
  CHECK(column(whole, 3) == column(cut, 3));
  // --chunks is part of the run's identity: another count cannot continue the state.
  const Result other = cli("run poisoning --small --threads 1 -q --chunks 2 -n 6 --save-state '" + state.string() +
                               "' --resume",
                           mpi + "2");
  CHECK(other.code != 0);
  CHECK(other.err.find("--chunks (data parallel) = '4', but this run has '2'") != std::string::npos);
  CHECK(other.err.find("resume needs a state_path") == std::string::npos);  // every rank read the state

  const Result one = cli(run + "--chunks 4");
  CHECK(one.code != 0);
  CHECK(one.err.find("hyperad: error: --chunks applies to a data-parallel problem's fixed run under mpirun\n") !=
        std::string::npos);
  const Result few = cli(run + "--chunks 1", mpi + "2");
  CHECK(few.code != 0);
  CHECK(few.err.find("--chunks 1 is fewer than the 2 ranks: every rank needs a chunk at least (give --chunks 2 or "
                     "more)") != std::string::npos);
  const Result episodic = cli("run meta_biased --small -n 1 --chunks 2", mpi + "1");
  CHECK(episodic.code != 0);
  CHECK(episodic.err.find("--chunks applies to a data-parallel problem's fixed run under mpirun ('meta_biased' is "
                          "not data-parallel)") != std::string::npos);
  const Result asks = cli(run + "--meta-batch 4 --chunks 2", mpi + "1");
  CHECK(asks.code != 0);
  CHECK(asks.err.find("--chunks applies to a data-parallel problem's fixed run under mpirun (--meta-batch 4 asks for an "
                      "episodic run)") != std::string::npos);
}
#endif
