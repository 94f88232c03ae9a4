// The reproduction of SID's error terms (bench/repro/repro_sid_error.cpp, issue 21) in a
// small form, so that its claims cannot silently rot: with decreasing steps the MSE falls
// like 1/t and 1/K, with constant steps it stops falling; the cross term's MSE follows its
// exact law (n/b)(1 − 1/n)/J where λ enters the data (poisoning) and is zero where λ is
// only in the penalty (logreg); the equilibrium model's minibatch error follows
// σ²/B·(n − B)/(n − 1) and its truncation error falls geometrically in T = K. The CSV rows
// and figures the driver writes are made from these results too.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "repro/sid_error.hpp"  // bench/repro/, on the include path of these tests

using namespace hyperad;

namespace {

const repro::SidErrorSeries& find(const repro::SidErrorResult& r, repro::Term term, bool decreasing) {
  for (const auto& s : r.series)
    if (s.term == term && s.decreasing == decreasing) return s;
  throw std::logic_error("no such series");
}

// The figure names every series and is a complete SVG document.
void check_figure(const problems::LinePlot& plot, const std::vector<std::string>& labels) {
  const std::string svg = plot.svg();
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("</svg>") != std::string::npos);
  for (const std::string& l : labels) {
    CAPTURE(l);
    CHECK(svg.find(problems::escape_xml(l)) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("SID's error terms: 1/t and 1/K with decreasing steps, a plateau with constant ones") {
  repro::SidErrorConfig c;
  c.counts = {300, 1000, 3000};  // the constant steps' plateau starts near 300
  c.calls = 20;
  c.bootstrap = 50;
  c.cross = false;
  const repro::SidErrorResult logreg = repro::run_sid_error(c);
  for (repro::Term term : {repro::Term::inner, repro::Term::linear}) {
    CAPTURE(repro::term_name(term));
    const auto& dec = find(logreg, term, true);
    const auto& con = find(logreg, term, false);
    // Decreasing steps: about 1/t (the full run: −1.01 for t and K); a 10-fold count at
    // least a 3-fold drop.
    CHECK(dec.slope < -0.5);
    CHECK(dec.slope > -1.5);
    CHECK(dec.points.back().mse() < 0.35 * dec.points.front().mse());
    // Constant steps: stuck at the plateau, well above the decreasing steps at 3000 (the
    // plateau's slope is noisy at 20 calls; over 40 seeds the ratio was at least 3.75).
    CHECK(con.points.back().mse() > 3 * dec.points.back().mse());
    CHECK(con.points.back().mse() > 0.5 * con.points.front().mse());
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : logreg.series) repro::append_rows(rows, "logreg", s);
  CHECK(rows.size() == 4 * c.counts.size());
  CHECK(rows.front()[0] == "logreg");
  CHECK(rows.front()[1] == "t");
  CHECK(rows.front()[2] == "decreasing");
  CHECK(rows.front()[3] == "300");
  CHECK(std::stod(rows.front()[4]) == doctest::Approx(logreg.series[0].points[0].mse()).epsilon(1e-3));
  CHECK(rows.front()[6] == "20");
  check_figure(repro::plot_terms(logreg), {"t (decreasing)", "t (constant)", "K (decreasing)", "K (constant)"});
}

TEST_CASE("SID's cross term: no variance when λ is only in the penalty, the exact 1/J law when it is in the data") {
  repro::SidErrorConfig c;
  c.cross_counts = {1, 4, 16};
  c.calls = 200;  // cheap, and the per-call error is heavy-tailed (a batch of 8 rarely holds a poisoned point)
  c.bootstrap = 50;
  c.inner_and_linear = false;
  const repro::SidErrorResult logreg = repro::run_sid_error(c);
  CHECK(repro::vanishes(find(logreg, repro::Term::cross, true)));  // measured: 1e-27

  c.name = "poisoning";
  c.problem = {.dataset = "digits", .seed = 1,
               .options = {{"train_size", "200"}, {"val_size", "100"}, {"test_size", "100"}, {"downsample", "2"},
                           {"l2", "0.05"}}};
  const repro::SidErrorResult poisoning = repro::run_sid_error(c);
  const auto& cross = find(poisoning, repro::Term::cross, true);
  REQUIRE(cross.predicted.size() == cross.points.size());
  CHECK(cross.predicted[0] == doctest::Approx(200.0 / 8.0 * (1.0 - 1.0 / 200.0)));
  double measured = 0, law = 0;
  for (std::size_t i = 0; i < cross.points.size(); ++i) {
    CAPTURE(cross.points[i].count);
    CHECK(cross.points[i].mse() / cross.predicted[i] > 0.6);  // the full run: 0.95–1.10
    CHECK(cross.points[i].mse() / cross.predicted[i] < 1.6);
    measured += cross.points[i].mse(), law += cross.predicted[i];
  }
  CHECK(measured / law > 0.8);
  CHECK(measured / law < 1.25);
  CHECK(cross.slope < -0.7);
  CHECK(cross.slope > -1.3);
  check_figure(repro::plot_terms(poisoning), {"J (none)", "J: exact law"});
}

TEST_CASE("equilibrium model: the minibatch error is σ²/B·(n − B)/(n − 1); T = K truncation falls geometrically") {
  repro::EquilibriumErrorConfig c;
  c.problem.options["train_size"] = "300";
  c.batches = {10, 30, 100, 150};
  c.steps = {1, 2, 3, 4};
  c.calls = 30;
  c.bootstrap = 50;
  const repro::EquilibriumErrorResult r = repro::run_equilibrium_error(c);
  REQUIRE(r.n == 300);
  for (std::size_t i = 0; i < r.batch.points.size(); ++i) {
    CAPTURE(r.batch.points[i].count);
    CHECK(r.batch.points[i].mse() / r.batch.predicted[i] > 0.8);  // over 161 seeds: 0.88–1.11
    CHECK(r.batch.points[i].mse() / r.batch.predicted[i] < 1.25);
  }
  CHECK(r.batch.slope < -0.8);
  CHECK(r.batch.slope > -1.2);
  // ‖Φ's matrix‖ ≤ 0.5 and tanh' ≤ 1 make the error O(0.5^T); here each step cuts its
  // square 25–37-fold, so a quarter per step is a loose check.
  for (std::size_t i = 1; i < r.truncation.size(); ++i) CHECK(r.truncation[i].second < 0.25 * r.truncation[i - 1].second);
  check_figure(repro::plot_batches(r), {"measured", "sigma^2/B (n - B)/(n - 1)"});
  check_figure(repro::plot_truncation(r), {"full data"});
}
