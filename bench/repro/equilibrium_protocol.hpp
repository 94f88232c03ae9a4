#pragma once
// The equilibrium-model experiment of JMLR 2023 (Grazzi, Pontil, Salzo): a deep-equilibrium
// classifier z = tanh(Az + Bx + c) on Fashion-MNIST, Φ's matrix A projected on the spectral
// ball of radius 0.5 (a contraction), trained by the projected inexact hypergradient method
// on minibatches of examples — each example's state solved from 0 (no warm start) or from
// its last state (full warm start: a buffer per example) by T = 3 fixed-point steps, its
// linear system by K = 3 — with outer SGD, step 0.5; batches of 600, 6000 and all the
// training set. The paper's question: does warm-starting the states help, and which batch
// size uses samples best? Test accuracy and loss against outer steps, seconds and
// sample-gradients, over seeds. The state has 64 entries here, 200 in the paper: the
// projection on the spectral ball (a one-sided Jacobi SVD) costs 130 ms per outer step at
// 200 against 4 ms at 64, and would dominate the small batches.
//
// Each (batch, warm start, seed) runs the episodic problem (problems::make_episodic, AID-FP
// inside each example's episode: t = T, K) until a budget of sample-gradients is spent and
// is evaluated (Instance::evaluate: the states solved to convergence) after equal shares of
// the budget. A seed builds the instance with that seed (initial weights, which 500 training
// images are the validation set, the standardization) and seeds the sampler of examples
// with it. Batches are drawn without replacement, so an epoch ends in a short batch when B
// does not divide n.
//
// Shared by bench/repro/repro_equilibrium.cpp and the suite's
// tests/problems/test_repro_equilibrium.cpp (a small form).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "hyperad/bilevel/episodic.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/problems/methods.hpp"
#include "hyperad/problems/protocol.hpp"
#include "hyperad/problems/registry.hpp"
#include "hyperad/problems/svg_plot.hpp"
#include "repro/common.hpp"

namespace hyperad::repro {

struct EquilibriumProtocolConfig {
  problems::ProblemConfig problem{.dataset = "fashion_mnist",
                                  .options = {{"train_size", "59500"}, {"val_size", "500"}, {"test_size", "10000"},
                                              {"hidden", "64"}, {"radius", "0.5"}, {"pool", "2"}}};
  std::vector<std::int64_t> batches{600, 6000, 59500};  ///< the paper's 600, 6000 and the full set
  std::vector<bilevel::EpisodeWarmStart> warm_starts{bilevel::EpisodeWarmStart::none, bilevel::EpisodeWarmStart::full};
  int seeds = 5;
  int T = 3, K = 3;
  double step_size = 0.5;           ///< outer SGD (the paper's)
  std::int64_t budget = 20'000'000;  ///< sample-gradients per run
  int evaluations = 8;              ///< after every 1/evaluations of the budget
};

struct EquilibriumCheckpoint {
  std::int64_t samples = 0, steps = 0;
  double seconds = 0;  ///< in the outer steps (evaluations excluded)
  double test_accuracy = NAN, test_loss = NAN, train_accuracy = NAN;
};

struct EquilibriumRun {
  std::int64_t batch = 0;
  bilevel::EpisodeWarmStart warm_start = bilevel::EpisodeWarmStart::none;
  int seed = 0;
  std::vector<EquilibriumCheckpoint> checkpoints{};
};

struct EquilibriumProtocol {
  std::string summary{};
  std::int64_t n = 0;  ///< training examples
  double initial_test_accuracy = NAN;  ///< at λ0 of the first seed
  std::vector<EquilibriumRun> runs{};
};

inline EquilibriumProtocol run_equilibrium_protocol(const EquilibriumProtocolConfig& c) {
  if (c.evaluations < 1 || c.seeds < 1 || c.budget < 1 || c.T < 1 || c.K < 1 || !(c.step_size > 0) ||
      c.batches.empty() || c.warm_starts.empty() ||
      std::any_of(c.batches.begin(), c.batches.end(), [](std::int64_t b) { return b < 1; }))
    throw std::invalid_argument("run_equilibrium_protocol: evaluations, seeds, budget, T, K and batches >= 1, a "
                                "step > 0, some warm starts");
  std::vector<std::int64_t> marks;
  for (int k = 1; k <= c.evaluations; ++k) marks.push_back(c.budget * k / c.evaluations);
  EquilibriumProtocol out;
  for (int seed = 1; seed <= c.seeds; ++seed) {
    problems::ProblemConfig p = c.problem;
    p.seed = std::uint64_t(seed);
    const problems::Instance inst = problems::make_problem("equilibrium", p);
    if (seed == 1) {
      out.summary = inst.summary;
      out.n = inst.episodic->problem.population();
      out.initial_test_accuracy = metric(inst.evaluate(inst.lambda0), "test_accuracy");
    }
    for (std::int64_t batch : c.batches)
      for (bilevel::EpisodeWarmStart warm : c.warm_starts) {
        EquilibriumRun run{batch, warm, seed};
        const auto episodic =
            problems::make_episodic({.name = "aid-fp", .inner_steps = c.T, .linear_steps = c.K}, inst,
                                    {.meta_batch = batch, .warm_start = warm, .seed = std::uint64_t(seed)});
        bilevel::OuterOptions o{.outer_steps = std::numeric_limits<std::int64_t>::max(),
                                .step_size = bilevel::StepSizeSchedule::constant(c.step_size),
                                .update = bilevel::OuterUpdate::gradient,
                                .budget_samples = c.budget};
        bilevel::OuterOptimizer opt(*episodic, inst.lambda0, o, inst.projections);
        step_to_budget(opt, marks, [&](const bilevel::OuterOptimizer& x) {
          EquilibriumCheckpoint cp{x.total_samples(), x.steps_done(), x.total_seconds()};
          const problems::Metrics m = inst.evaluate(x.lambda());
          cp.test_accuracy = metric(m, "test_accuracy"), cp.test_loss = metric(m, "test_loss");
          cp.train_accuracy = metric(m, "train_accuracy");
          run.checkpoints.push_back(cp);
        });
        out.runs.push_back(std::move(run));
      }
  }
  return out;
}

inline std::string run_label(std::int64_t batch, bilevel::EpisodeWarmStart w) {
  return fmt::format("B = {}, warm {}", batch, bilevel::episode_warm_start_name(w));
}

/// Rows of bench/results/equilibrium_protocol.csv: batch, warm_start, seed, samples, steps,
/// seconds, test_accuracy, test_loss, train_accuracy (one per checkpoint of every run).
inline void append_rows(std::vector<std::vector<std::string>>& rows, const EquilibriumProtocol& r) {
  for (const EquilibriumRun& run : r.runs)
    for (const EquilibriumCheckpoint& p : run.checkpoints)
      rows.push_back({std::to_string(run.batch), bilevel::episode_warm_start_name(run.warm_start),
                      std::to_string(run.seed), std::to_string(p.samples), std::to_string(p.steps), g4(p.seconds),
                      g4(p.test_accuracy), g4(p.test_loss), g4(p.train_accuracy)});
}

/// The median over seeds of a checkpoint's field, for one (batch, warm start).
inline double median_over_seeds(const EquilibriumProtocol& r, std::int64_t batch, bilevel::EpisodeWarmStart w,
                                std::size_t k, double EquilibriumCheckpoint::*field) {
  std::vector<double> v;
  for (const EquilibriumRun& run : r.runs)
    if (run.batch == batch && run.warm_start == w && k < run.checkpoints.size()) v.push_back(run.checkpoints[k].*field);
  return v.empty() ? NAN : problems::quartiles(v).median;
}

/// Test accuracy (median over seeds) against sample-gradients, one line per (batch, warm
/// start), warm-started runs dashed.
inline problems::LinePlot plot_equilibrium(const EquilibriumProtocol& r, const EquilibriumProtocolConfig& c) {
  problems::LinePlot plot({.title = fmt::format("Equilibrium model on fashion_mnist (n = {}): test accuracy", r.n),
                           .x_label = "sample-gradients (millions)",
                           .y_label = "test accuracy (median over seeds)"});
  for (std::int64_t b : c.batches)
    for (bilevel::EpisodeWarmStart w : c.warm_starts) {
      problems::PlotSeries line{.label = run_label(b, w), .markers = true,
                                .dashed = w != bilevel::EpisodeWarmStart::none};
      for (int k = 0; k < c.evaluations; ++k) {
        line.x.push_back(double(c.budget) * (k + 1) / c.evaluations / 1e6);
        line.y.push_back(median_over_seeds(r, b, w, std::size_t(k), &EquilibriumCheckpoint::test_accuracy));
      }
      plot.add(line);
    }
  return plot;
}

}  // namespace hyperad::repro
