// `hyperad check PROBLEM`: the hypergradient at λ0 by every applicable method, against
// finite differences and (when the inner state is small enough) the exact dense answer.
#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "common.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/autodiff/tensor_list.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/problems/methods.hpp"

namespace hyperad::cli {

namespace {

// The first line of a message, cut to `n` characters, for a table cell.
std::string short_text(std::string s, std::size_t n = 70) {
  s = s.substr(0, s.find('\n'));
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

// Cap on the automatic t (ITD tapes every step).
constexpr int kMaxSteps = 20000;

}  // namespace

int check_command(const CheckArgs& a) {
  apply_threads(a.problem.threads);
  problems::ProblemConfig config = problem_config(a.problem);
  config.small = !a.full;
  const problems::Instance inst = problems::make_problem(a.problem.problem, config);
  const TensorList& lambda = inst.lambda0;
  const std::int64_t n_lambda = list::numel(lambda), n_w = list::numel(inst.problem.initial_state());
  const bilevel::ExactOptions exact_options;

  // -q: only the table (and the verdict); the description of the problem and references goes.
  auto say = [&](const std::string& text) {
    if (!a.quiet) fmt::print("{}", text);
  };
  say(fmt::format("{}{}: {}\n", inst.name, a.full ? "" : " (small)", inst.summary));
  say(fmt::format("hypergradient at λ0: {} outer variables, inner state of {} elements, {}\n\n", n_lambda, n_w,
             inst.problem.symmetric_jacobian() ? "symmetric inner Jacobian" : "non-symmetric inner Jacobian"));

  // The references.
  std::optional<bilevel::Hypergradient> fd, exact;
  double fd_accuracy = NAN;  // FD's own estimate of its relative error
  if (n_lambda <= a.max_fd) {
    try {
      fd = bilevel::finite_difference_hypergradient(inst.problem, lambda);
      fd_accuracy = fd->diagnostics.error_estimate / std::max(list::norm(fd->grad), 1e-300);
      say(fmt::format("finite differences: central, {} inner solves, {}, estimated relative error {} (steps h "
                      "and 2h, and the inner solves' stopping error)\n",
                      4 * n_lambda, duration(fd->diagnostics.seconds), sci(fd_accuracy)));
    } catch (const Error& e) {
      say(fmt::format("finite differences: failed: {}\n", short_text(e.what(), 200)));
    }
  } else {
    say(fmt::format("finite differences: skipped ({} outer variables > --max-fd {}; try without --full)\n", n_lambda,
               a.max_fd));
  }
  if (n_w <= exact_options.max_state_elements) {
    try {
      exact = bilevel::exact_hypergradient(inst.problem, lambda, exact_options);
      say(fmt::format("exact (dense LU): {}, linear residual {}\n", duration(exact->diagnostics.seconds),
                 sci(exact->diagnostics.linear.residual)));
    } catch (const Error& e) {
      say(fmt::format("exact (dense LU): failed: {}\n", short_text(e.what(), 200)));
    }
  } else {
    say(fmt::format("exact (dense LU): skipped (inner state of {} elements > {})\n", n_w, exact_options.max_state_elements));
  }
  if (!fd && !exact) throw Error(fmt::format("check '{}': no reference hypergradient could be computed", inst.name));
  if (fd && exact)
    say(fmt::format("finite differences vs exact: relative difference {}\n",
               sci(list::relative_error(fd->grad, exact->grad))));

  // Every method that applies. Unless -t/-K are given, t is what the inner iteration needs
  // to converge (raised for q below) and K as many (the solvers stop early at a relative
  // residual of 1e-12), so the errors measure the derivatives and not the truncation. The
  // inner solve (to a step of 1e-12, or -t steps) and the contraction q at its result:
  const bilevel::InnerResult r = bilevel::solve_inner(
      inst.problem, lambda, inst.problem.initial_state(),
      {.max_iterations = a.inner_steps.value_or(kMaxSteps), .tolerance = Tolerance::absolute(1e-12)});
  const double contraction = bilevel::contraction_estimate(inst.problem, r.state, lambda).q;
  int t_default = 0;
  if (a.inner_steps) {
    t_default = *a.inner_steps;
  } else {
    t_default = r.steps;
    say(fmt::format("t = {}: the inner iteration {} (-t sets another)\n", t_default,
               r.converged ? "converges to a step of 1e-12 in as many steps" : "has not converged after as many steps"));
    // ITD's and the fixed-point solvers' errors fall like q^t and q^K, which may need more
    // steps than the inner solve's stop: enough for q^t ≤ 1e-13, within the cap.
    if (contraction > 0.0 && contraction < 1.0) {
      const double need = std::ceil(std::log(1e-13) / std::log(contraction));
      if (need > t_default) {
        t_default = static_cast<int>(std::min<double>(need, kMaxSteps));
        say(fmt::format("t = {}: the contraction estimate q ≈ {:.4f} asks for log(1e-13)/log(q) = {:.0f} steps for "
                        "ITD's and the fixed-point solvers' truncation{}\n",
                        t_default, contraction, need, need > kMaxSteps ? fmt::format(" (capped at {})", kMaxSteps) : ""));
      }
    }
  }
  const int k_default = a.linear_steps.value_or(t_default);
  say("\n");
  Table t({"method", "vs FD", "vs exact", "inner", "linear", "time", "note"}, "lrrrrrl");
  std::vector<std::string> failures;
  for (const problems::MethodInfo& m : problems::method_names()) {
    if (const std::string why = problems::method_unavailable_reason(m.name, inst); !why.empty()) {
      const std::string note = m.name == "sid"      ? "no stochastic version"
                               : m.name == "aid-cg" ? "non-symmetric Jacobian"
                                                    : short_text(why, 50);
      t.add({m.name, "", "", "", "", "", "not applicable: " + note});
      continue;
    }
    problems::MethodConfig mc{.name = m.name, .inner_steps = t_default, .linear_steps = k_default};
    if (m.name.rfind("aid", 0) == 0) mc.linear_tolerance = Tolerance::relative(1e-12);
    if (m.name == "sid") mc.batch_size = 0;  // full batches: deterministic, comparable
    try {
      auto method = problems::make_method(mc, inst);
      method->set_strict(a.strict);
      const bilevel::Hypergradient h = method->hypergradient(inst.problem, lambda);
      const bilevel::Diagnostics& d = h.diagnostics;
      const double e_fd = fd ? list::relative_error(h.grad, fd->grad) : NAN;
      const double e_exact = exact ? list::relative_error(h.grad, exact->grad) : NAN;
      const bool itd = problems::is_itd(m.name);
      std::string note = m.name == "itd-truncated" ? "biased by design" : "";
      // The truncation of the methods whose error falls like q^t or q^K, when it shows.
      const bool geometric = m.name == "itd" || m.name == "itd-checkpointed" || m.name == "aid-fp" ||
                             m.name == "aid-neumann" || m.name == "sid";
      if (geometric && contraction > 0.0 && contraction < 1.0) {
        const int steps = itd ? d.inner_steps : d.linear.iterations;
        if (const double trunc = std::pow(contraction, steps); trunc > 1e-10)
          note = fmt::format("truncated: q^{} ≈ {}", steps, sci(trunc));
      }
      // Against FD alone, a difference within FD's own error says nothing about the method.
      const bool within_fd = !exact && e_fd <= 3 * fd_accuracy;
      if (within_fd) note = note.empty() ? "within FD's error" : note + "; within FD's error";
      if (!d.trusted()) note += (note.empty() ? "untrusted: " : "; untrusted: ") + short_text(d.concerns.front().message, 60);
      else if (!d.warnings.empty()) note += (note.empty() ? "" : "; ") + short_text(d.warnings.front(), 50);
      t.add({m.name, sci(e_fd), sci(e_exact), fmt::format("{}", d.inner_steps),
             itd ? "-" : fmt::format("{}", d.linear.iterations), duration(d.seconds), note});
      const double err = exact ? e_exact : e_fd;
      if (a.tolerance > 0 && m.name != "itd-truncated" && !(err <= a.tolerance))
        failures.push_back(fmt::format("{} ({}{})", m.name, sci(err),
                                       within_fd ? ", within FD's own error" : ""));
    } catch (const Error& e) {
      t.add({m.name, "", "", "", "", "", "failed: " + short_text(e.what())});
      if (a.tolerance > 0) failures.push_back(m.name + " (failed)");
    }
  }
  fmt::print("{}", t.str());
  if (a.tolerance > 0) {
    if (!failures.empty()) {
      std::string list;
      for (const std::string& f : failures) list += (list.empty() ? "" : ", ") + f;
      std::string why;
      if (!exact && fd_accuracy * 3 > a.tolerance)
        why = fmt::format("; the finite-difference reference itself is only accurate to about {}, so it cannot "
                          "confirm --tolerance {} (the exact reference needs an inner state of at most {} elements)",
                          sci(fd_accuracy), a.tolerance, exact_options.max_state_elements);
      throw Error(fmt::format("check '{}': relative error above --tolerance {}: {}{}", inst.name, a.tolerance, list, why));
    }
    fmt::print("\nall methods within --tolerance {} of the {} hypergradient\n", a.tolerance,
               exact ? "exact" : "finite-difference");
  }
  return 0;
}

}  // namespace hyperad::cli
