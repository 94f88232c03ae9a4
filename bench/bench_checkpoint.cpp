// Peak memory and time to the hypergradient of n_steps of gradient descent on a logistic
// regression (d = 100 features, n = 500 samples; per-feature L2 penalties exp(ℓ) are the
// hyperparameters; the outer loss is a validation logistic loss), for:
//   full           — every step recorded on the tape, one reverse sweep;
//   binomial_sqrt  — checkpointed_loop with binomial(⌈√n⌉) snapshots;
//   binomial_log   — checkpointed_loop with binomial(⌈log2 n⌉) snapshots;
//   fixed_point    — fixed_point with max_iter = n_steps (tolerance 0), default adjoint.
//
// Each (method, n_steps) runs in a child process (this program re-run with --run), so that
// its peak resident memory is its own. Reported per configuration: median times over the
// repetitions, the tape's peak memory_bytes() during one gradient (a saved tensor counts
// its full size each time it is saved, so the data matrix X counts once per matmul
// step), the state tuples held outside the tape (snapshots, w*), the peak RSS growth
// during one gradient, and the gradient's max relative difference from the full one.
//
//   bench_checkpoint [--quick] [--out FILE.csv]     (default bench/results/checkpoint.csv)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "hyperad/hyperad.hpp"

using namespace hyperad;
using V = TensorList;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int64_t kD = 100, kN = 500, kNval = 200;
constexpr double kEta = 1.0;

struct Data {
  Tensor X, y01, Xv, yv;
};

Data make_data() {
  Generator g(2024);
  Tensor w_true = randn({kD}, g) * (3.0 / std::sqrt(double(kD)));
  auto labels = [&](const Tensor& X, bool pm) {
    std::vector<double> p = sigmoid(matmul(X, w_true)).to_vector(), y(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) y[i] = g.uniform() < p[i] ? 1.0 : (pm ? -1.0 : 0.0);
    return tensor(y, Shape{static_cast<std::int64_t>(y.size())});
  };
  Data D;
  D.X = randn({kN, kD}, g);
  D.y01 = labels(D.X, false);
  D.Xv = randn({kNval, kD}, g);
  D.yv = labels(D.Xv, true);
  return D;
}

// One gradient-descent step on the penalized training loss.
V gd_step(const Data& D, const V& w, const V& p) {
  Tensor r = sigmoid(matmul(D.X, w[0])) - D.y01;
  Tensor g = matmul(r, D.X) * (1.0 / double(kN)) + exp(p[0]) * w[0];
  return {w[0] - kEta * g};
}

Tensor outer_loss(const Data& D, const Tensor& w) { return logistic_loss(matmul(D.Xv, w), D.yv); }

std::size_t proc_status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoul(line.substr(std::strlen(key)));
  return 0;
}

double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::int64_t snapshots_for(const std::string& method, std::int64_t n) {
  if (method == "binomial_sqrt") return static_cast<std::int64_t>(std::ceil(std::sqrt(double(n))));
  if (method == "binomial_log") return static_cast<std::int64_t>(std::ceil(std::log2(double(n))));
  return 0;
}

// Child: one configuration, `reps` repetitions; prints a RESULT line and a GRAD line.
int run_one(const std::string& method, std::int64_t n, int reps) {
  const Data D = make_data();
  const Tensor ell0 = full({kD}, std::log(0.05));
  const Tensor w0 = zeros({kD});
  Tape& tape = Tape::current();
  std::vector<double> t_fwd, t_bwd;
  std::size_t tape_peak = 0, held = 0, rss_growth = 0;
  std::int64_t iters = n, recomputed = 0;
  Tensor grad_out;
  for (int rep = 0; rep < reps; ++rep) {
    std::size_t rss0 = 0;
    if (rep == 0) {
      std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM where permitted
      rss0 = proc_status_kb("VmRSS:");
    }
    TapeScope scope;
    Tensor ell = ell0.detach();
    ell.requires_grad_();
    tape.reset_peak_memory();
    const std::size_t base = tape.memory_bytes();
    const auto t0 = Clock::now();
    Tensor w;
    CheckpointStats cs;
    FixedPointStats fs;
    if (method == "full") {
      V s{w0};
      for (std::int64_t i = 0; i < n; ++i) s = gd_step(D, s, {ell});
      w = s[0];
    } else if (method == "fixed_point") {
      FixedPointOptions o;
      o.tolerance = {};  // exactly n iterations (unless the step becomes exactly 0)
      o.max_iterations = static_cast<int>(n);
      o.divergence_factor = INFINITY;
      o.on_failure = OnFailure::quiet;
      o.adjoint.linear.max_iterations = 100000;
      w = fixed_point([&D](const V& x, const V& p) { return gd_step(D, x, p); }, {w0}, {ell}, o, &fs)[0];
    } else {
      w = checkpointed_loop([&D](const V& x, const V& p) { return gd_step(D, x, p); }, {w0}, {ell}, n,
                            CheckpointPolicy::binomial(snapshots_for(method, n)), &cs)[0];
    }
    Tensor L = outer_loss(D, w);
    const auto t1 = Clock::now();
    Tensor g = grad(L, {ell})[0];
    const auto t2 = Clock::now();
    t_fwd.push_back(ms(t0, t1));
    t_bwd.push_back(ms(t1, t2));
    if (rep == 0) {
      rss_growth = (proc_status_kb("VmHWM:") - std::min(rss0, proc_status_kb("VmHWM:"))) * 1024;
      tape_peak = tape.peak_memory_bytes() - base;
      if (cs) {
        held = cs->peak_stored_bytes;
        recomputed = cs->recomputed_steps;
      }
      if (fs) {
        held = 2 * kD * sizeof(double);  // w* and the parameters, kept by the record
        iters = fs->forward_iterations;
        recomputed = fs->adjoint.iterations;  // for fixed_point: adjoint iterations
      }
      grad_out = g;
    }
  }
  std::vector<double> tot;
  for (std::size_t i = 0; i < t_fwd.size(); ++i) tot.push_back(t_fwd[i] + t_bwd[i]);
  fmt::print("RESULT {} {} {} {} {:.3f} {:.3f} {:.3f} {} {} {} {}\n", method, n, snapshots_for(method, n), iters,
             median(t_fwd), median(t_bwd), median(tot), tape_peak, held, rss_growth, recomputed);
  fmt::print("GRAD");
  for (double v : grad_out.to_vector()) fmt::print(" {:.17g}", v);
  fmt::print("\n");
  return 0;
}

struct Row {
  std::string method;
  std::int64_t n = 0, snaps = 0, iters = 0, recomputed = 0;
  double fwd = 0, bwd = 0, total = 0;
  std::size_t tape = 0, held = 0, rss = 0;
  std::vector<double> grad;
};

Row run_child(const std::string& self, const std::string& method, std::int64_t n, int reps) {
  std::string cmd = fmt::format("'{}' --run {} {} {}", self, method, n, reps);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) throw std::runtime_error("failed: " + cmd + "\n" + out);
  Row r;
  std::istringstream in(out);
  std::string tag;
  while (in >> tag) {
    if (tag == "RESULT") {
      in >> r.method >> r.n >> r.snaps >> r.iters >> r.fwd >> r.bwd >> r.total >> r.tape >> r.held >> r.rss >>
          r.recomputed;
    } else if (tag == "GRAD") {
      std::string line;
      std::getline(in, line);
      std::istringstream ls(line);
      double v;
      while (ls >> v) r.grad.push_back(v);
    }
  }
  return r;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0, s = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    e = std::max(e, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return s > 0 ? e / s : e;
}

std::string mib(std::size_t b) { return fmt::format("{:.3f}", double(b) / (1024.0 * 1024.0)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::string(argv[1]) == "--run") return run_one(argv[2], std::stoll(argv[3]), std::stoi(argv[4]));

  bool quick = false;
  std::string out_csv = std::string(HYPERAD_BENCH_DIR) + "/results/checkpoint.csv";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--out" && i + 1 < argc) out_csv = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--quick] [--out FILE.csv]\n", argv[0]);
      return 2;
    }
  }
  // This executable's absolute path, for re-running it per configuration.
  char exe[4096] = {0};
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  const std::string self = len > 0 ? std::string(exe, static_cast<std::size_t>(len)) : std::string(argv[0]);
  std::vector<std::int64_t> ns = quick ? std::vector<std::int64_t>{100, 1000} : std::vector<std::int64_t>{100, 1000, 10000};
  const std::vector<std::string> methods{"full", "binomial_sqrt", "binomial_log", "fixed_point"};

  std::vector<Row> rows;
  for (std::int64_t n : ns) {
    const int reps = n <= 100 ? 41 : n <= 1000 ? 15 : 5;
    for (const std::string& m : methods) {
      fmt::print(stderr, "running {} n_steps={} ({} reps)\n", m, n, reps);
      rows.push_back(run_child(self, m, n, reps));
    }
  }

  std::map<std::int64_t, const Row*> full;
  for (const Row& r : rows)
    if (r.method == "full") full[r.n] = &r;

  std::ofstream csv(out_csv);
  csv << "n_steps,method,snapshots,forward_iterations,recomputed_or_adjoint_iterations,time_forward_ms,"
         "time_backward_ms,time_total_ms,time_ratio_vs_full,tape_peak_bytes,held_state_bytes,memory_ratio_vs_full,"
         "rss_growth_bytes,rss_ratio_vs_full,grad_rel_diff_vs_full\n";
  fmt::print("| n_steps | method | snapshots | fwd iters | recomputed / adjoint iters | time fwd (ms) | time bwd (ms) "
             "| time total (ms) | × full | tape peak (MiB) | held states (MiB) | (tape+held) / full | RSS growth (MiB) "
             "| RSS / full | grad rel. diff |\n");
  fmt::print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    const Row& f = *full.at(r.n);
    const double tratio = r.total / f.total;
    const double mratio = double(r.tape + r.held) / double(f.tape + f.held);
    const double rratio = f.rss ? double(r.rss) / double(f.rss) : 0.0;
    const double gd = rel_diff(r.grad, f.grad);
    csv << fmt::format("{},{},{},{},{},{:.3f},{:.3f},{:.3f},{:.4f},{},{},{:.6f},{},{:.6f},{:.3e}\n", r.n, r.method,
                       r.snaps, r.iters, r.recomputed, r.fwd, r.bwd, r.total, tratio, r.tape, r.held, mratio, r.rss,
                       rratio, gd);
    fmt::print("| {} | {} | {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.2f} | {} | {} | {:.5f} | {} | {:.4f} | {:.1e} |\n",
               r.n, r.method, r.snaps ? std::to_string(r.snaps) : "–", r.iters, r.recomputed, r.fwd, r.bwd, r.total,
               tratio, mib(r.tape), mib(r.held), mratio, mib(r.rss), rratio, gd);
  }
  fmt::print(stderr, "wrote {}\n", out_csv);
  return 0;
}
