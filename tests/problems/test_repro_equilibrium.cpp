// The equilibrium-model protocol (bench/repro/repro_equilibrium.cpp, issue 21, item 3) in a
// small form, so that it cannot silently rot: every run spends its budget of
// sample-gradients (stopping within one outer step of it) with the outer steps the batch
// size implies, is evaluated at equal shares of it, learns (test accuracy well above λ0's),
// the warm start of the per-example states is applied (it changes the iterates), a run
// repeats bit for bit, and the CSV rows and figure are made from these results.
#include <doctest/doctest.h>

#include <string>

#include "repro/equilibrium_protocol.hpp"  // bench/repro/, on the include path of these tests

using namespace hyperad;

TEST_CASE("Equilibrium protocol: batch sizes and warm start at one sample budget") {
  repro::EquilibriumProtocolConfig c;
  c.problem = {.dataset = "digits",
               .options = {{"train_size", "200"}, {"val_size", "100"}, {"test_size", "200"}, {"hidden", "16"},
                           {"radius", "0.5"}}};
  c.batches = {20, 200};
  c.seeds = 2;
  c.budget = 64000;  // 400 steps of 20 examples, 40 of all 200
  c.evaluations = 4;
  const repro::EquilibriumProtocol r = repro::run_equilibrium_protocol(c);
  REQUIRE(r.runs.size() == 2 * 2 * 2);
  CHECK(r.n == 200);
  // Samples per example and step: T inner steps, K linear ones, the cross term and E.
  const std::int64_t per_example = c.T + c.K + 2;
  for (const auto& run : r.runs) {
    CAPTURE(run.batch);
    CAPTURE(run.seed);
    REQUIRE(run.checkpoints.size() == 4);
    for (int k = 0; k < 4; ++k) {
      const auto& p = run.checkpoints[std::size_t(k)];
      CHECK(p.samples >= c.budget * (k + 1) / 4);
      CHECK(p.samples < c.budget * (k + 1) / 4 + per_example * run.batch);
      CHECK(p.steps * per_example * run.batch == p.samples);
    }
    // It learns: from chance (ten classes; seed 1's λ0 is measured) to well above.
    CHECK(r.initial_test_accuracy < 0.25);
    CHECK(run.checkpoints.back().test_accuracy > 0.5);
  }
  // The warm start changes the iterates (the states start from each example's last one);
  // the same settings and seed repeat bit for bit.
  auto find = [&](std::int64_t b, bilevel::EpisodeWarmStart w, int seed) -> const repro::EquilibriumRun& {
    for (const auto& run : r.runs)
      if (run.batch == b && run.warm_start == w && run.seed == seed) return run;
    throw std::logic_error("no such run");
  };
  CHECK(find(20, bilevel::EpisodeWarmStart::none, 1).checkpoints.back().test_loss !=
        find(20, bilevel::EpisodeWarmStart::full, 1).checkpoints.back().test_loss);
  repro::EquilibriumProtocolConfig again = c;
  again.batches = {20};
  again.warm_starts = {bilevel::EpisodeWarmStart::full};
  again.seeds = 1;
  const repro::EquilibriumProtocol r2 = repro::run_equilibrium_protocol(again);
  CHECK(r2.runs.front().checkpoints.back().test_loss ==
        find(20, bilevel::EpisodeWarmStart::full, 1).checkpoints.back().test_loss);

  std::vector<std::vector<std::string>> rows;
  repro::append_rows(rows, r);
  CHECK(rows.size() == 8 * 4);
  const std::string svg = repro::plot_equilibrium(r, c).svg();
  for (const char* label : {"B = 20, warm none", "B = 200, warm full"}) {
    CAPTURE(label);
    CHECK(svg.find(label) != std::string::npos);
  }
}
