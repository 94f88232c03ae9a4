#pragma once
// The figure of `hyperad run --plot`: one SVG file with stacked panels (the outer
// objective, the validation metric when the problem has one, and ‖h‖), each a LinePlot.
#include <string>
#include <vector>

#include "hyperad/bilevel/outer.hpp"

namespace hyperad::cli {

/// The per-step values plotted.
struct Curve {
  std::vector<double> step, objective, validation, grad_norm;
};

Curve curve_from_history(const std::vector<bilevel::OuterRecord>& history);
/// The same columns read back from an OuterOptimizer CSV (a resumed run's CSV holds every
/// step). Throws hyperad::Error naming the file and line when it is not such a CSV.
Curve curve_from_csv(const std::string& path);

/// Writes the panels to `path`; `validation_name` empty or an all-NaN validation column
/// leaves the validation panel out.
void write_run_plot(const std::string& path, const std::string& title, const Curve& curve,
                    const std::string& validation_name);

}  // namespace hyperad::cli
