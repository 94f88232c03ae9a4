// The projected inexact hypergradient method: convergence to constrained optima found
// independently by a grid search over λ (box, ℓ2 ball; minimization and maximization;
// gradient, momentum and Adam updates), schedules of α, t, K, J, warm-start modes, CSV
// logging, and bit-identical save/resume.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "temp_files.hpp"
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/hyperad.hpp"

using namespace hyperad;
using namespace hyperad::bilevel;

namespace {

// Ridge regression in 2-D with one regularization e^{λ_j} per feature, noisy enough that
// the validation loss has an interior minimizer near λ ≈ (−0.9, 2.2):
//   L(w, λ) = ½ mean((Xw − y)²) + ½ Σ e^{λ_j} w_j²,   E(w) = ½ mean((X_v w − y_v)²).
// f(λ) = E(w*(λ)) in closed form from 2 × 2 moments — the grid search's reference.
struct Ridge2 {
  static constexpr std::int64_t n = 12;
  Tensor X, y, Xv, yv;
  std::array<double, 4> H{}, A{};  // XᵀX/n, X_vᵀX_v/n
  std::array<double, 2> b{}, c{};  // Xᵀy/n, X_vᵀy_v/n
  double cc = 0;                   // y_vᵀy_v/n

  Ridge2() {
    Generator g(6);
    Tensor wt = tensor({1.0, 0.3});
    X = randn({n, 2}, g);
    Xv = randn({n, 2}, g);
    y = matmul(X, wt) + randn({n}, g);
    yv = matmul(Xv, wt) + randn({n}, g);
    const auto x = X.to_vector(), yy = y.to_vector(), xv = Xv.to_vector(), yvv = yv.to_vector();
    for (std::int64_t k = 0; k < n; ++k) {
      for (int i = 0; i < 2; ++i) {
        b[i] += x[k * 2 + i] * yy[k] / n;
        c[i] += xv[k * 2 + i] * yvv[k] / n;
        for (int j = 0; j < 2; ++j) {
          H[i * 2 + j] += x[k * 2 + i] * x[k * 2 + j] / n;
          A[i * 2 + j] += xv[k * 2 + i] * xv[k * 2 + j] / n;
        }
      }
      cc += yvv[k] * yvv[k] / n;
    }
  }
  Tensor outer_loss(const TensorList& w) const { return 0.5 * mean(square(matmul(Xv, w[0]) - yv)); }
  Problem problem() const {
    const double eta = 1.0 / (H[0] + H[3] + std::exp(3.0));  // 1 / (trace H + max e^λ) < 1 / L
    return Problem::gradient_descent(
        [this](const TensorList& w, const TensorList& l) {
          return 0.5 * mean(square(matmul(X, w[0]) - y)) + 0.5 * sum(exp(l[0]) * square(w[0]));
        },
        eta, [this](const TensorList& w, const TensorList&) { return outer_loss(w); }, {zeros({2})});
  }
  double f(double l0, double l1) const {
    const double h00 = H[0] + std::exp(l0), h11 = H[3] + std::exp(l1), h01 = H[1], det = h00 * h11 - h01 * h01;
    const double w0 = (h11 * b[0] - h01 * b[1]) / det, w1 = (h00 * b[1] - h01 * b[0]) / det;
    return 0.5 * (A[0] * w0 * w0 + 2 * A[1] * w0 * w1 + A[3] * w1 * w1 - 2 * (c[0] * w0 + c[1] * w1) + cc);
  }
};

// Best point of f (sign −1: maximize) over {λ in [lo0, hi0] × [lo1, hi1], inside(λ)} by a
// grid of spacing 0.01, refined by one of spacing 1e-4 around the best point.
std::array<double, 2> grid_search(const Ridge2& r, double lo0, double hi0, double lo1, double hi1, double sign,
                                  const std::function<bool(double, double)>& inside) {
  std::array<double, 2> best{};
  double best_v = INFINITY;
  auto scan = [&](double a0, double b0, double a1, double b1, double h) {
    for (double l0 = a0; l0 <= b0 + 1e-12; l0 += h)
      for (double l1 = a1; l1 <= b1 + 1e-12; l1 += h) {
        const double x0 = std::min(l0, hi0), x1 = std::min(l1, hi1);
        if (!inside(x0, x1)) continue;
        const double v = sign * r.f(x0, x1);
        if (v < best_v) best_v = v, best = {x0, x1};
      }
  };
  scan(lo0, hi0, lo1, hi1, 0.01);
  const auto c = best;
  scan(std::max(lo0, c[0] - 0.02), std::min(hi0, c[0] + 0.02), std::max(lo1, c[1] - 0.02), std::min(hi1, c[1] + 0.02), 1e-4);
  return best;
}

AIDOptions precise_aid() {
  return {.inner_steps = 20000,
          .inner_tolerance = Tolerance::absolute(1e-13),
          .solver = linsolve::cg(),
          .linear_steps = 50,
          .linear_tolerance = Tolerance::relative(1e-13)};
}

std::array<double, 2> lam2(const OuterOptimizer& o) {
  const auto v = o.lambda()[0].to_vector();
  return {v[0], v[1]};
}

// A method that wraps AID and records what the outer loop did to it before each call.
class Spy final : public HypergradientMethod {
 public:
  explicit Spy(AIDOptions o) : aid_(o) {}
  std::string name() const override { return "spy(" + aid_.name() + ")"; }
  Hypergradient hypergradient(const Problem& p, const TensorList& l) override {
    const WarmState ws = aid_.warm_state();
    seen_inner.push_back(!ws.inner.empty());
    seen_linear.push_back(!ws.linear.empty());
    Hypergradient h = aid_.hypergradient(p, l);
    h.diagnostics.samples = 7 + static_cast<std::int64_t>(calls++);
    if (calls == 2) h.diagnostics.warnings = {"first, with a comma", "second"};
    return h;
  }
  Hypergradient hypergradient_at(const Problem& p, const TensorList& l, const TensorList& w) override {
    return aid_.hypergradient_at(p, l, w);
  }
  void reset() override {
    ++resets;
    aid_.reset();
  }
  void set_warm_start(WarmStart w) override {
    warm = w;
    ++warm_calls;
    aid_.set_warm_start(w);
  }
  WarmState warm_state() const override { return aid_.warm_state(); }
  void set_warm_state(const WarmState& s) override { aid_.set_warm_state(s); }
  void set_iterations(const IterationCounts& c) override { aid_.set_iterations(c); }

  AID aid_;
  std::vector<bool> seen_inner, seen_linear;
  int resets = 0, calls = 0, warm_calls = 0;
  WarmStart warm = WarmStart::none;
};

// AID plus Gaussian noise from its own generator: a stand-in for a stochastic method whose
// random state must be saved and restored.
class Noisy final : public HypergradientMethod {
 public:
  Noisy(AIDOptions o, std::uint64_t seed) : aid_(o), gen_(seed) {}
  std::string name() const override { return "noisy " + aid_.name(); }
  Hypergradient hypergradient(const Problem& p, const TensorList& l) override {
    Hypergradient h = aid_.hypergradient(p, l);
    for (Tensor& g : h.grad) g = g + 0.05 * randn(g.shape(), gen_, g.dtype());
    h.diagnostics.samples = 100;
    return h;
  }
  Hypergradient hypergradient_at(const Problem& p, const TensorList& l, const TensorList& w) override {
    return aid_.hypergradient_at(p, l, w);
  }
  void reset() override { aid_.reset(); }
  void set_warm_start(WarmStart w) override { aid_.set_warm_start(w); }
  WarmState warm_state() const override { return aid_.warm_state(); }
  void set_warm_state(const WarmState& s) override { aid_.set_warm_state(s); }
  void set_iterations(const IterationCounts& c) override { aid_.set_iterations(c); }
  std::vector<std::uint64_t> export_random_state() const override {
    const auto s = gen_.state();
    return {s.begin(), s.end()};
  }
  void import_random_state(const std::vector<std::uint64_t>& s) override {
    REQUIRE(s.size() == 4);
    gen_.set_state({s[0], s[1], s[2], s[3]});
  }

 private:
  AID aid_;
  Generator gen_;
};

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("hyperad_test_outer_" + name)).string();
}

}  // namespace

// Step sizes that suit this problem (its curvature along λ₁ is small): plain gradient,
// heavy ball (β = 0.9: effective step ×10), and Adam with a decreasing step.
StepSizeSchedule step_for(OuterUpdate u) {
  return u == OuterUpdate::adam       ? StepSizeSchedule::inverse(0.05, 30.0)
         : u == OuterUpdate::momentum ? StepSizeSchedule::constant(0.5)
                                      : StepSizeSchedule::constant(5.0);
}

TEST_CASE("projected gradient, momentum and Adam on a box converge to the grid-search constrained minimizer") {
  const Ridge2 r;
  // Unconstrained, the minimizer has λ₁ ≈ 2.2: the box [−3, 3] × [−3, 1] makes λ₁ = 1 active.
  const auto best = grid_search(r, -3, 3, -3, 1, 1.0, [](double, double) { return true; });
  CHECK(best[1] == doctest::Approx(1.0));
  CHECK(best[0] > -2.9);  // λ₀ interior

  for (OuterUpdate u : {OuterUpdate::gradient, OuterUpdate::momentum, OuterUpdate::adam}) {
    CAPTURE(outer_update_name(u));
    AID aid(precise_aid());
    OuterOptions o;
    o.outer_steps = 300;
    o.update = u;
    o.step_size = step_for(u);
    o.warm_start = WarmStart::inner_and_linear;
    // Per-coordinate bounds: a box with elementwise limits.
    OuterOptimizer opt(r.problem(), aid, {tensor({0.0, 0.0})}, o,
                       {Projection("box [-3, 3] x [-3, 1]", [](const Tensor& x) {
                         return project_box(x, tensor({-3.0, -3.0}), tensor({3.0, 1.0}));
                       })});
    opt.run();
    const auto lam = lam2(opt);
    CHECK(lam[1] == 1.0);  // exactly on the bound
    CHECK(std::abs(lam[0] - best[0]) <= (u == OuterUpdate::adam ? 1e-3 : 2e-4));
    CHECK(r.f(lam[0], lam[1]) <= r.f(best[0], best[1]) + (u == OuterUpdate::adam ? 1e-7 : 1e-10));
    // The objective decreased along the run; each record is taken at λ_s, before the update.
    const auto& h = opt.history();
    REQUIRE(h.size() == 300);
    CHECK(h.back().objective < h.front().objective);
    CHECK(h.back().objective == doctest::Approx(r.f(lam[0], lam[1])).epsilon(1e-6));
    CHECK(h.front().objective == doctest::Approx(r.f(0.0, 0.0)).epsilon(1e-10));
    for (std::size_t s = 0; s < h.size(); ++s) CHECK(h[s].step == static_cast<std::int64_t>(s));
  }
}

TEST_CASE("projected gradient and momentum on an l2 ball converge to the grid-search minimizer on its boundary") {
  // (Not Adam: its diagonal preconditioner does not commute with a ball's projection, so
  // projected Adam's fixed points are not the constrained optimum — see docs/outer.md.)
  const Ridge2 r;
  const double radius = 1.5;
  auto in_ball = [&](double a, double b) { return a * a + b * b <= radius * radius; };
  const auto best = grid_search(r, -radius, radius, -radius, radius, 1.0, in_ball);
  CHECK(std::hypot(best[0], best[1]) == doctest::Approx(radius).epsilon(1e-3));  // on the boundary

  for (OuterUpdate u : {OuterUpdate::gradient, OuterUpdate::momentum}) {
    CAPTURE(outer_update_name(u));
    AID aid(precise_aid());
    OuterOptions o;
    o.outer_steps = 300;
    o.update = u;
    o.step_size = step_for(u);
    o.warm_start = WarmStart::inner_and_linear;
    OuterOptimizer opt(r.problem(), aid, {tensor({0.0, 0.0})}, o, {Projection::l2_ball(radius)});
    opt.run();
    const auto lam = lam2(opt);
    CHECK(std::hypot(lam[0], lam[1]) <= radius * (1 + 1e-15));
    CHECK(std::hypot(lam[0] - best[0], lam[1] - best[1]) <= 3e-4);
    CHECK(r.f(lam[0], lam[1]) <= r.f(best[0], best[1]) + 1e-10);
  }
}

TEST_CASE("maximization: projected ascent reaches the grid-search maximizer") {
  const Ridge2 r;
  const auto best = grid_search(r, -2, 2, -2, 2, -1.0, [](double, double) { return true; });
  AID aid(precise_aid());
  OuterOptions o;
  o.outer_steps = 200;
  o.maximize = true;
  o.step_size = StepSizeSchedule::constant(5.0);
  o.warm_start = WarmStart::inner_and_linear;
  OuterOptimizer opt(r.problem(), aid, {tensor({0.5, -0.5})}, o, {Projection::box(-2.0, 2.0)});
  opt.run();
  const auto lam = lam2(opt);
  CHECK(std::abs(lam[0] - best[0]) <= 2e-4);
  CHECK(std::abs(lam[1] - best[1]) <= 2e-4);
  CHECK(r.f(lam[0], lam[1]) >= r.f(best[0], best[1]) - 1e-10);
  CHECK(opt.history().back().objective > opt.history().front().objective);
}

TEST_CASE("schedules: values, validation, and the counts the outer loop imposes") {
  CHECK(IterationSchedule::constant(7).at(1000) == 7);
  const auto lin = IterationSchedule::linear(5, 2.5, 20);
  CHECK(lin.at(0) == 5);
  CHECK(lin.at(3) == 12);  // 5 + ⌊7.5⌋
  CHECK(lin.at(100) == 20);
  const auto sq = IterationSchedule::sqrt(2, 3.0);
  CHECK(sq.at(0) == 2);
  CHECK(sq.at(4) == 8);
  CHECK(sq.at(10) == 2 + 9);  // ⌊3√10⌋ = 9
  CHECK(sq.describe() == "2 + 3·√s");
  CHECK(lin.describe() == "5 + 2.5·s (cap 20)");
  CHECK_THROWS_WITH_AS(IterationSchedule::linear(5, -1.0).validate("K"), doctest::Contains("K: the schedule's rate"),
                       ValueError);
  CHECK_THROWS_WITH_AS(IterationSchedule::linear(5, 1.0, 3).validate("t"), doctest::Contains("cap 3 is below its base 5"),
                       ValueError);

  CHECK(StepSizeSchedule::constant(0.3).at(50) == 0.3);
  CHECK(StepSizeSchedule::inverse(1.0, 10.0).at(10) == doctest::Approx(0.5));
  CHECK(StepSizeSchedule::inverse_sqrt(1.0, 4.0).at(12) == doctest::Approx(0.5));
  CHECK_THROWS_WITH_AS(StepSizeSchedule::inverse(1.0, 0.0).validate("α"), doctest::Contains("γ of a decreasing"), ValueError);

  const Ridge2 r;
  AID aid({.inner_steps = 1, .solver = linsolve::richardson(), .linear_steps = 1});
  OuterOptions o;
  o.outer_steps = 9;
  o.step_size = StepSizeSchedule::inverse(0.5, 2.0);
  o.inner_steps = IterationSchedule::linear(3, 2.0);
  o.linear_steps = IterationSchedule::sqrt(1, 2.0, 5);
  OuterOptimizer opt(r.problem(), aid, {tensor({0.0, 0.0})}, o);
  for (const OuterRecord& rec : opt.run()) {
    CAPTURE(rec.step);
    CHECK(rec.t == 3 + 2 * rec.step);
    CHECK(rec.inner_steps == rec.t);  // tolerance 0: exactly t steps
    CHECK(rec.K == std::min<int>(5, 1 + static_cast<int>(std::floor(2.0 * std::sqrt(static_cast<double>(rec.step))))));
    CHECK(rec.linear_iterations == rec.K);
    CHECK_FALSE(rec.J.has_value());
    CHECK(rec.step_size == doctest::Approx(0.5 * 2.0 / (2.0 + static_cast<double>(rec.step))));
  }
  CHECK(aid.options().inner_steps == 3 + 2 * 8);

  // A count the method does not have is refused, not ignored.
  ITDOptions io;
  io.inner_steps = 5;
  ITD itd(io);
  OuterOptions ok = o;
  ok.inner_steps.reset();
  OuterOptimizer with_itd(r.problem(), itd, {tensor({0.0, 0.0})}, ok);
  CHECK_THROWS_WITH_AS(with_itd.step(), doctest::Contains("ITD has no linear system"), ValueError);
  ok.linear_steps.reset();
  ok.cross_batches = IterationSchedule::constant(4);
  OuterOptimizer with_aid(r.problem(), aid, {tensor({0.0, 0.0})}, ok);
  CHECK_THROWS_WITH_AS(with_aid.step(), doctest::Contains("takes no J (asked for J = 4)"), ValueError);
}

TEST_CASE("warm-start modes: what each call starts from") {
  const Ridge2 r;
  const AIDOptions cheap{.inner_steps = 2, .solver = linsolve::richardson(), .linear_steps = 2};
  for (WarmStart m : {WarmStart::none, WarmStart::inner, WarmStart::linear, WarmStart::inner_and_linear}) {
    CAPTURE(warm_start_name(m));
    Spy spy(cheap);
    OuterOptions o;
    o.outer_steps = 4;
    o.warm_start = m;
    OuterOptimizer opt(r.problem(), spy, {tensor({0.0, 0.0})}, o);
    // The loop hands the mode to the method once; the method applies it at every call
    // (it keeps its warm state either way, for the validation function and save/resume).
    CHECK(spy.warm == m);
    CHECK(spy.warm_calls == 1);
    opt.run();
    REQUIRE(spy.seen_inner.size() == 4);
    CHECK(!spy.seen_inner[0]);
    CHECK(!spy.seen_linear[0]);
    for (int s = 1; s < 4; ++s) CHECK((spy.seen_inner[s] && spy.seen_linear[s]));
    CHECK(spy.warm == m);
    CHECK(spy.resets == 0);
  }
}

TEST_CASE("warm-start modes at a fixed λ: none repeats, inner converges w only, inner+linear converges both") {
  // α = 0 keeps λ fixed: each outer step is then one more slice (t = 2, K = 100) of the inner
  // and linear iterations — continued across steps only where the mode keeps the state.
  const Ridge2 r;
  const Problem p = r.problem();
  const TensorList lam{tensor({-0.5, 0.5})};
  const auto exact = list::flatten(exact_hypergradient(p, lam).grad);
  std::map<WarmStart, double> errors;
  for (WarmStart m : {WarmStart::none, WarmStart::inner, WarmStart::inner_and_linear}) {
    AID aid({.inner_steps = 2, .solver = linsolve::richardson(), .linear_steps = 100});
    OuterOptions o;
    o.outer_steps = 800;
    o.step_size = StepSizeSchedule::constant(0.0);
    o.warm_start = m;
    OuterOptimizer opt(p, aid, lam, o);
    opt.run();
    CHECK(opt.lambda()[0].to_vector() == lam[0].to_vector());
    // The hypergradient of one more step: the method applies its mode itself.
    AID next = aid;
    const auto h = list::flatten(next.hypergradient(p, lam).grad);
    double e = 0;
    for (std::size_t i = 0; i < h.size(); ++i) e += (h[i] - exact[i]) * (h[i] - exact[i]);
    errors[m] = std::sqrt(e);
    // With mode none every step computes the same thing from scratch.
    if (m == WarmStart::none) CHECK(opt.history().front().grad_norm == opt.history().back().grad_norm);
  }
  const double none = errors[WarmStart::none], inner = errors[WarmStart::inner],
               both = errors[WarmStart::inner_and_linear];
  INFO("error after 800 steps: none ", none, ", inner ", inner, ", inner+linear ", both);
  CHECK(both < 1e-10);         // both iterations continued across steps: converged
  CHECK(inner < 0.05 * none);  // w continued (converged), but v restarts from 0 every step:
  CHECK(inner > 1e-7);         // the truncation error of K = 100 steps from 0 remains
}

TEST_CASE("logging: records in memory and a CSV that parses to the same numbers") {
  const Ridge2 r;
  const std::string csv = temp_path("log.csv");
  Spy spy({.inner_steps = 50, .solver = linsolve::cg(), .linear_steps = 5});
  OuterOptions o;
  o.outer_steps = 5;
  o.step_size = StepSizeSchedule::constant(1.0);
  o.warm_start = WarmStart::inner_and_linear;
  o.csv_path = csv;
  o.linear_steps = IterationSchedule::linear(2, 1.0);
  o.validation = [&r](const TensorList& w, const TensorList&) { return 2.0 * r.outer_loss(w).item(); };
  OuterOptimizer opt(r.problem(), spy, {tensor({0.0, 0.0})}, o, {Projection::box(-1, 1)});
  const auto& hist = opt.run();
  REQUIRE(hist.size() == 5);
  const auto rows = read_csv(csv);
  REQUIRE(rows.size() == 6);
  std::string header;
  for (std::size_t i = 0; i < rows[0].size(); ++i) header += (i ? "," : "") + rows[0][i];
  CHECK(header == kOuterCsvHeader);
  std::int64_t total = 0;
  for (std::size_t s = 0; s < 5; ++s) {
    CAPTURE(s);
    const auto& row = rows[s + 1];
    const OuterRecord& rec = hist[s];
    REQUIRE(row.size() == 16);
    CHECK(std::stoll(row[0]) == rec.step);
    CHECK(std::stod(row[1]) == rec.objective);  // 17 significant digits: exact
    CHECK(std::stod(row[2]) == rec.validation);
    CHECK(rec.validation == doctest::Approx(2.0 * rec.objective));  // V = 2E here, at the same w_t
    CHECK(std::stod(row[3]) == rec.grad_norm);
    CHECK(std::stod(row[4]) == 1.0);
    CHECK(std::stoi(row[5]) == rec.inner_steps);
    CHECK(std::stoi(row[6]) == rec.linear_iterations);
    CHECK(std::stoi(row[8]) == 2 + static_cast<int>(s));
    CHECK(std::stoll(row[10]) == 7 + static_cast<std::int64_t>(s));  // Diagnostics::samples
    total += 7 + static_cast<std::int64_t>(s);
    CHECK(std::stoll(row[11]) == total);
    CHECK(rec.total_samples == total);
    CHECK(std::stod(row[12]) >= 0.0);
    CHECK(std::stod(row[13]) >= std::stod(row[12]));
    CHECK(row[14] == "nan");  // no stationarity measure asked for
  }
  CHECK(rows[2][15] == "first; with a comma | second");  // warnings: separators replaced
  CHECK(hist[1].warnings == "first, with a comma | second");
  std::filesystem::remove(csv);
}

TEST_CASE("save and resume: bit-identical continuation, CSV rows kept once") {
  // Both runs use this process's thread count; results are deterministic for a given count.
  const Ridge2 r;
  const AIDOptions ao{.inner_steps = 10, .solver = linsolve::cg(), .linear_steps = 3};
  const std::string state = temp_path("resume.state"), csv = temp_path("resume.csv");
  std::filesystem::remove(state);
  auto options = [&](std::int64_t steps) {
    OuterOptions o;
    o.outer_steps = steps;
    o.update = OuterUpdate::adam;
    o.step_size = StepSizeSchedule::inverse_sqrt(0.1, 5.0);
    o.warm_start = WarmStart::inner_and_linear;
    o.inner_steps = IterationSchedule::sqrt(5, 3.0);
    return o;
  };
  const std::vector<Projection> box{Projection::box(-2.0, 2.0)};

  // Uninterrupted: 12 steps.
  Noisy m1(ao, 99);
  OuterOptimizer full(r.problem(), m1, {tensor({0.0, 0.0})}, options(12), box);
  const auto reference = full.run();

  // Interrupted: 7 steps with a save every 5 (the file holds step 5), then the process "dies".
  {
    Noisy m2(ao, 99);
    OuterOptions o = options(12);
    o.state_path = state;
    o.save_every = 5;
    o.csv_path = csv;
    OuterOptimizer part(r.problem(), m2, {tensor({0.0, 0.0})}, o, box);
    for (int s = 0; s < 7; ++s) part.step();
    CHECK(std::filesystem::exists(state));
    CHECK(hyperad::testing::leftover_temporaries(state) == 0);
    CHECK(read_state_file(state).step == 5);
  }
  // Resumed with a differently seeded method: the saved random state takes over.
  Noisy m3(ao, 12345);
  OuterOptions o = options(12);
  o.state_path = state;
  o.resume = true;
  o.csv_path = csv;
  OuterOptimizer resumed(r.problem(), m3, {tensor({0.0, 0.0})}, o, box);
  const auto& tail = resumed.run();
  REQUIRE(tail.size() == 7);
  CHECK(resumed.steps_done() == 12);
  const auto a = full.lambda()[0].to_vector(), b = resumed.lambda()[0].to_vector();
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);  // the same bits
  for (std::size_t i = 0; i < tail.size(); ++i) {
    const OuterRecord &x = tail[i], &y = reference[i + 5];
    CAPTURE(y.step);
    CHECK(x.step == y.step);
    CHECK(x.objective == y.objective);
    CHECK(x.grad_norm == y.grad_norm);
    CHECK(x.t == y.t);
    CHECK(x.inner_steps == y.inner_steps);
    CHECK(x.total_samples == y.total_samples);
  }
  // The CSV reads as one run: steps 0..11 once each, identical numbers to the reference.
  const auto rows = read_csv(csv);
  REQUIRE(rows.size() == 13);
  for (std::size_t s = 0; s < 12; ++s) {
    CAPTURE(s);
    CHECK(std::stoll(rows[s + 1][0]) == static_cast<std::int64_t>(s));
    CHECK(std::stod(rows[s + 1][1]) == reference[s].objective);
    CHECK(std::stoll(rows[s + 1][11]) == reference[s].total_samples);
  }
  // run() saved at the end: a second resume has nothing left to do.
  CHECK(read_state_file(state).step == 12);
  std::filesystem::remove(state);
  std::filesystem::remove(csv);
}

TEST_CASE("resuming from a file of another run is refused, naming the file and the field") {
  const Ridge2 r;
  const std::string state = temp_path("mismatch.state");
  AID aid({.inner_steps = 5, .solver = linsolve::cg(), .linear_steps = 2});
  OuterOptions o;
  o.outer_steps = 2;
  o.state_path = state;
  o.warm_start = WarmStart::inner_and_linear;
  OuterOptimizer(r.problem(), aid, {tensor({0.0, 0.0})}, o).run();

  auto load_with = [&](HypergradientMethod& m, TensorList lam, OuterOptions oo, std::vector<Projection> proj = {}) {
    OuterOptimizer opt(r.problem(), m, std::move(lam), oo, std::move(proj));
    opt.load(state);
  };
  AID same({.inner_steps = 5, .solver = linsolve::cg(), .linear_steps = 2});
  CHECK_NOTHROW(load_with(same, {tensor({0.0, 0.0})}, o));
  const std::string prefix = "state file '" + state + "': ";
  AID gmres({.solver = linsolve::gmres()});
  CHECK_THROWS_WITH_AS(load_with(gmres, {tensor({0.0, 0.0})}, o),
                       doctest::Contains((prefix + "was written with method = 'AID-CG', but this run has 'AID-GMRES'").c_str()),
                       StateFileError);
  OuterOptions adam = o;
  adam.update = OuterUpdate::adam;
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, adam), doctest::Contains("update = 'gradient'"), StateFileError);
  OuterOptions up = o;
  up.maximize = true;
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, up),
                       doctest::Contains("objective = 'minimize', but this run has 'maximize'"), StateFileError);
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, o, {Projection::box(0, 1)}),
                       doctest::Contains("projections = 'none', but this run has 'box [0, 1]'"), StateFileError);
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0, 0.0})}, o),
                       doctest::Contains((prefix + "λ tensor 0 has shape [2] float64, the run has [3] float64").c_str()),
                       StateFileError);
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0}, Dtype::f32)}, o),
                       doctest::Contains("λ tensor 0 has shape [2] float64, the run has [2] float32"), StateFileError);
  // The step size and the t/K/J schedules are part of the run.
  OuterOptions alpha = o;
  alpha.step_size = StepSizeSchedule::constant(0.2);
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, alpha),
                       doctest::Contains("step size = '0.1', but this run has '0.2'"), StateFileError);
  OuterOptions sched = o;
  sched.inner_steps = IterationSchedule::constant(7);
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, sched),
                       doctest::Contains("inner steps (t) = 'the method's', but this run has '7'"), StateFileError);
  // A caller's run identity (dataset, seed, ...) is compared entry by entry, both ways.
  OuterOptions named = o;
  named.run_identity = {{"dataset", "wine"}};
  CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, named),
                       doctest::Contains((prefix + "has no 'dataset' entry").c_str()), StateFileError);
  {
    OuterOptimizer(r.problem(), same, {tensor({0.0, 0.0})}, named).run();  // now the file says dataset = wine
    OuterOptions other = named;
    other.run_identity = {{"dataset", "digits"}};
    CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, other),
                         doctest::Contains("was written with dataset = 'wine', but this run has 'digits'"), StateFileError);
    CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, o),
                         doctest::Contains("was written with dataset = 'wine', which this run does not set"),
                         StateFileError);
    CHECK_NOTHROW(load_with(same, {tensor({0.0, 0.0})}, named));
    // Resuming past the end is refused (the file is at step 2).
    OuterOptions shorter = named;
    shorter.outer_steps = 1;
    CHECK_THROWS_WITH_AS(load_with(same, {tensor({0.0, 0.0})}, shorter),
                         doctest::Contains("is at step 2, past this run's end (outer_steps = 1)"), StateFileError);
    shorter.outer_steps = 2;  // exactly at the end: nothing left to do, not an error
    shorter.resume = true;
    OuterOptimizer done(r.problem(), same, {tensor({0.0, 0.0})}, shorter);
    CHECK(done.run().empty());
    CHECK(done.steps_done() == 2);
  }
  std::filesystem::remove(state);
}

TEST_CASE("the CSV log: write failures throw, cut rows are dropped on resume, the rewrite is atomic") {
  const Ridge2 r;
  AID aid({.inner_steps = 5, .solver = linsolve::cg(), .linear_steps = 2});
  OuterOptions o;
  o.outer_steps = 3;
  if (std::filesystem::exists("/dev/full")) {
    o.csv_path = "/dev/full";
    OuterOptimizer full(r.problem(), aid, {tensor({0.0, 0.0})}, o);
    CHECK_THROWS_WITH_AS(full.step(), doctest::Contains("the CSV log: writing '/dev/full' failed: No space left"),
                         IOError);
    CHECK(std::filesystem::is_character_file("/dev/full"));
  }
  // A log whose last row was cut by a kill: the resumed log keeps only complete rows of the
  // steps before the saved one.
  const std::string csv = temp_path("cut.csv"), state = temp_path("cut.state");
  o.csv_path = csv;
  o.state_path = state;
  o.outer_steps = 4;
  o.save_every = 2;
  {
    OuterOptimizer first(r.problem(), aid, {tensor({0.0, 0.0})}, o);
    for (int s = 0; s < 3; ++s) first.step();  // state at step 2, log rows 0-2
  }
  {
    std::ofstream cut(csv, std::ios::app);
    cut << "3,0.5,0.4";  // a row cut mid-write
  }
  o.resume = true;
  OuterOptimizer resumed(r.problem(), aid, {tensor({0.0, 0.0})}, o);
  resumed.run();
  const auto rows = read_csv(csv);
  REQUIRE(rows.size() == 5);
  for (std::size_t s = 0; s < 4; ++s) {
    CHECK(std::stoll(rows[s + 1][0]) == static_cast<std::int64_t>(s));
    CHECK(rows[s + 1].size() == rows[0].size());
  }
  CHECK(hyperad::testing::leftover_temporaries(csv) == 0);
  std::filesystem::remove(csv);
  std::filesystem::remove(state);
}

TEST_CASE("options are validated") {
  const Ridge2 r;
  AID aid;
  auto make = [&](OuterOptions o, std::vector<Projection> p = {}) {
    OuterOptimizer(r.problem(), aid, {tensor({0.0, 0.0})}, o, std::move(p));
  };
  OuterOptions o;
  o.resume = true;
  CHECK_THROWS_WITH_AS(make(o), doctest::Contains("resume needs a state_path"), ValueError);
  o = {};
  o.momentum = 1.0;
  CHECK_THROWS_WITH_AS(make(o), doctest::Contains("momentum must be in [0, 1), got 1"), ValueError);
  o = {};
  o.step_size = StepSizeSchedule::constant(-1);
  CHECK_THROWS_WITH_AS(make(o), doctest::Contains("step_size: the step size must be finite and >= 0"), ValueError);
  CHECK_THROWS_WITH_AS(make({}, {Projection::box(0, 1), Projection::box(0, 1)}),
                       doctest::Contains("2 projections for 1 tensors of λ"), ValueError);
  // λ0 outside the set is projected at construction.
  OuterOptimizer opt(r.problem(), aid, {tensor({5.0, -5.0})}, {}, {Projection::box(-1, 1)});
  CHECK(opt.lambda()[0].to_vector() == std::vector<double>{1.0, -1.0});
}
