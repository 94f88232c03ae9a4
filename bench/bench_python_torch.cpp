// hyperad against PyTorch used from Python, the way hypertorch users run it: the
// hypergradients of bench_torch_baseline (logistic regression with one ℓ2 strength e^{λ_j}
// per feature, gradient-descent inner map, validation logistic loss; ITD, AID-FP and
// AID-CG, t inner steps from w = 0) on identical data, at the size of hypertorch's
// logistic-regression example (d = 100, n = 500, t = T = K = 100).
//
// The torch side is bench/python/torch_hypergradients.py, run by the Python interpreter
// given (Debian's /usr/bin/python3 with `apt-get install python3-torch`) as a child
// process: this program writes the data to a temporary file, then asks the child for one
// hypergradient at a time over a pipe; the child times the call itself, so the pipe is
// not counted against PyTorch. Reps alternate hyperad (the losses written as
// logistic_loss(matmul(X, w), y), the same ops as torch's), hyperad fused
// (linear_model_loss) and PyTorch, so all see the same machine load; reported are median
// times and the medians of the per-rep ratios PyTorch / hyperad, and the largest relative
// difference between the hypergradients. Without Python or torch the program says so
// and exits with status 0 (nothing to compare).
//
// Threads: hyperad's and torch's (torch.set_num_threads; OMP_NUM_THREADS and
// OPENBLAS_NUM_THREADS are set for the child too, so its BLAS keeps to the same count).
//
//   bench_python_torch [--reps N] [--n N] [--d D] [--t T] [--threads N] [--python PATH] [--timeout S]
//                      writes bench/results/python_torch_<N>t.csv (S: seconds to wait for an answer, 600)
#include <omp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bench_util.hpp"
#include "hyperad/autodiff/runtime.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/hyperad.hpp"
#include "logistic_fixture.hpp"

namespace hb = hyperad::bilevel;
using namespace hyperad;

namespace {

// A child process with its stdin and stdout on pipes, read and written a line at a time.
// SIGPIPE is ignored (a child that died makes writes fail instead of killing the bench), and
// a read that waits longer than `timeout_s` for the next line gives up.
class Child {
 public:
  Child(const std::vector<std::string>& argv, int timeout_s) : timeout_ms_(1000 * timeout_s) {
    std::signal(SIGPIPE, SIG_IGN);
    int in[2], out[2];
    if (pipe(in) != 0) throw std::runtime_error("bench_python_torch: pipe failed");
    if (pipe(out) != 0) {
      for (int fd : in) close(fd);
      throw std::runtime_error("bench_python_torch: pipe failed");
    }
    std::vector<char*> args;  // built before fork: the child only calls async-signal-safe functions
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) {
      for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
      throw std::runtime_error("bench_python_torch: fork failed");
    }
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
      execv(args[0], args.data());
      static const char msg[] = "error cannot run the interpreter\n";  // reaches the parent through the pipe
      [[maybe_unused]] const auto n = write(STDOUT_FILENO, msg, sizeof msg - 1);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    send("quit");  // fails quietly if the child is gone
    close(to_);
    close(from_);
    // A child that answers no more (timed out, stuck in a call) would never read "quit":
    // after two seconds it is killed, so the bench always ends.
    for (int waited = 0; waitpid(pid_, nullptr, WNOHANG) == 0; ++waited) {
      if (waited == 200) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        return;
      }
      usleep(10000);
    }
  }

  void send(const std::string& line) {
    const std::string text = line + "\n";
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = write(to_, text.data() + done, text.size() - done);
      if (n <= 0) return;  // the child has gone; receive() will say so
      done += static_cast<std::size_t>(n);
    }
  }
  /// The next line; "" when the child has closed its output or did not answer in time.
  std::string receive() {
    for (;;) {
      if (const auto eol = buffer_.find('\n'); eol != std::string::npos) {
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        return line;
      }
      pollfd p{from_, POLLIN, 0};
      const int ready = poll(&p, 1, timeout_ms_);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return "";
      char chunk[65536];
      const ssize_t n = read(from_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  int timeout_ms_;
  std::string buffer_;
};

// n, d, t, K, η, X, y, Xv, yv, λ as little-endian float64 (what the script reads).
void write_data(const std::string& path, const bench::Logistic& D, double eta, int t, int K, const Tensor& lam) {
  std::vector<double> v{double(D.X.size(0)), double(D.X.size(1)), double(t), double(K), eta};
  for (const Tensor* x : {&D.X, &D.y, &D.Xv, &D.yv, &lam}) {
    const std::vector<double> e = x->to_vector();
    v.insert(v.end(), e.begin(), e.end());
  }
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
  if (!f) throw std::runtime_error("bench_python_torch: cannot write " + path);
}

double rel_diff(const std::vector<double>& a, const Tensor& b) {
  const std::vector<double> bv = b.to_vector();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < bv.size(); ++i) num += (a[i] - bv[i]) * (a[i] - bv[i]), den += bv[i] * bv[i];
  return std::sqrt(num / den);
}

}  // namespace

int run(int argc, char** argv) {
  int reps = 21, t = 100, threads = 1, timeout = 600;
  std::int64_t n = 500, d = 100;
  std::string python = "/usr/bin/python3";
  bench::parse_flags(argc, argv, {{"--reps", &reps}, {"--n", &n}, {"--d", &d}, {"--t", &t}, {"--threads", &threads},
                                  {"--python", &python}, {"--timeout", &timeout}});
  const int K = t;
  runtime::set_num_threads(threads);
  omp_set_num_threads(threads);

  // bench_torch_baseline's data and scales (rows of norm ≈ 1).
  const bench::Logistic D(n, d, 21, {.features = 1.0 / std::sqrt(double(d)), .weights = 3.0, .noise = 0.5});
  Generator g(4);
  const Tensor lam = -1.0 - rand({d}, g);
  char path[] = "/tmp/hyperad_python_torch_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("bench_python_torch: mkstemp failed");
  close(fd);
  write_data(path, D, D.step(), t, K, lam);

  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  setenv("OPENBLAS_NUM_THREADS", std::to_string(threads).c_str(), 1);
  Child py({python, std::string(HYPERAD_BENCH_DIR) + "/python/torch_hypergradients.py", path, std::to_string(threads)},
           timeout);
  const std::string hello = py.receive();
  std::remove(path);
  if (hello.rfind("ready ", 0) != 0) {
    fmt::print("bench_python_torch: no PyTorch to compare with ({}): install python3-torch (apt-get install "
               "python3-torch) or name an interpreter that has torch with --python\n",
               hello.empty() ? fmt::format("{} gave no answer within {} s", python, timeout) : hello);
    return 0;
  }
  fmt::print("## hyperad vs PyTorch {} from Python: logistic regression, n = {}, d = {}, t = K = {}, {} thread(s), "
             "median of {} interleaved reps\n\n",
             hello.substr(6), n, d, t, threads, reps);
  fmt::print("| method | hyperad (ms) | fused (ms) | PyTorch (ms) | PyTorch / hyperad | PyTorch / fused | rel. diff |\n");
  fmt::print("|---|---|---|---|---|---|---|\n");

  const hb::Problem p = D.problem(), pf = D.problem(true);
  hb::ITD itd({.inner_steps = t});
  hb::AID fp({.inner_steps = t, .solver = linsolve::richardson(), .linear_steps = K});
  hb::AID cg({.inner_steps = t, .solver = linsolve::cg(), .linear_steps = K,
              .linear_tolerance = Tolerance::relative(1e-10)});
  struct Method {
    const char* name;  // also the script's name for it
    hb::HypergradientMethod* ours;
  };
  std::vector<std::vector<std::string>> csv{{"method", "n", "d", "t", "threads", "hyperad_ms", "fused_ms", "torch_ms",
                                             "ratio", "fused_ratio", "rel_diff"}};
  for (const Method& m : {Method{"itd", &itd}, Method{"aid-fp", &fp}, Method{"aid-cg", &cg}}) {
    std::vector<double> ours, fused, theirs, ratio, fused_ratio;
    double diff = 0;
    hb::Hypergradient h, hf;
    for (int r = -1; r < reps; ++r) {  // r = -1: warm-up, not kept
      const double a = bench::elapsed_ms([&] { h = m.ours->hypergradient(p, {lam}); });
      const double b = bench::elapsed_ms([&] { hf = m.ours->hypergradient(pf, {lam}); });
      py.send(m.name);
      std::istringstream answer(py.receive());
      double c = 0;
      std::vector<double> th(static_cast<std::size_t>(d));
      answer >> c;
      for (double& x : th) answer >> x;
      if (!answer)
        throw std::runtime_error(fmt::format("bench_python_torch: no answer from the script for {} (it died, or took "
                                             "over {} s)",
                                             m.name, timeout));
      diff = std::max({diff, rel_diff(th, h.grad[0]), rel_diff(th, hf.grad[0])});
      if (r < 0) continue;
      ours.push_back(a), fused.push_back(b), theirs.push_back(c);
      ratio.push_back(c / a), fused_ratio.push_back(c / b);
    }
    const double mo = bench::median(ours), mf = bench::median(fused), mt = bench::median(theirs);
    const double mr = bench::median(ratio), mfr = bench::median(fused_ratio);
    fmt::print("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f}× | {:.2f}× | {:.1e} |\n", m.name, mo, mf, mt, mr, mfr, diff);
    std::fflush(stdout);
    csv.push_back({m.name, std::to_string(n), std::to_string(d), std::to_string(t), std::to_string(threads),
                   fmt::format("{:.3f}", mo), fmt::format("{:.3f}", mf), fmt::format("{:.3f}", mt),
                   fmt::format("{:.2f}", mr), fmt::format("{:.2f}", mfr), fmt::format("{:.1e}", diff)});
  }
  bench::write_csv(bench::results_path(fmt::format("python_torch_{}t.csv", threads)), csv);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // after the child was told to quit (or killed) and reaped
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
}
