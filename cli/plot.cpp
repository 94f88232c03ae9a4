#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/files.hpp"
#include "hyperad/problems/svg_plot.hpp"

namespace hyperad::cli {

namespace {

// Log scale when every value is positive and they span at least a decade.
bool wants_log(const std::vector<double>& y) {
  double lo = INFINITY, hi = 0;
  for (double v : y) {
    if (!std::isfinite(v)) continue;
    if (v <= 0) return false;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return hi > 0 && hi >= 10 * lo;
}

bool any_finite(const std::vector<double>& y) {
  return std::any_of(y.begin(), y.end(), [](double v) { return std::isfinite(v); });
}

// A LinePlot's document as a panel of a larger one: no XML declaration, moved down by
// `y`, and its clip-path id made unique in the file.
std::string as_panel(std::string svg, int y, int index) {
  if (svg.rfind("<?xml", 0) == 0) svg.erase(0, svg.find("?>") + 2);
  svg.replace(svg.find("<svg "), 5, fmt::format("<svg y=\"{}\" ", y));
  const std::string id = "plot-area", unique = fmt::format("plot-area-{}", index);
  for (std::size_t at = svg.find(id); at != std::string::npos; at = svg.find(id, at + unique.size()))
    svg.replace(at, id.size(), unique);
  return svg;
}

}  // namespace

Curve curve_from_history(const std::vector<bilevel::OuterRecord>& history) {
  Curve c;
  for (const bilevel::OuterRecord& r : history) {
    c.step.push_back(static_cast<double>(r.step));
    c.objective.push_back(r.objective);
    c.validation.push_back(r.validation);
    c.grad_norm.push_back(r.grad_norm);
  }
  return c;
}

Curve curve_from_csv(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line != bilevel::kOuterCsvHeader)
    throw Error(fmt::format("'{}' is not an outer-loop CSV (missing or different header)", path));
  Curve c;
  for (int number = 2; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string f[4];
    for (std::string& s : f) std::getline(fields, s, ',');
    try {
      c.step.push_back(std::stod(f[0]));
      c.objective.push_back(std::stod(f[1]));
      c.validation.push_back(std::stod(f[2]));
      c.grad_norm.push_back(std::stod(f[3]));
    } catch (const std::exception&) {
      throw Error(fmt::format("'{}', line {}: not a row of numbers", path, number));
    }
  }
  return c;
}

void write_run_plot(const std::string& path, const std::string& title, const Curve& c,
                    const std::string& validation_name) {
  const int width = 760, height = 360;
  std::vector<problems::LinePlot> panels;
  auto panel = [&](const std::string& panel_title, const std::string& label, const std::vector<double>& y) {
    problems::LinePlot p({.title = panel_title, .x_label = "outer step", .y_label = label, .log_y = wants_log(y),
                          .width = width, .height = height});
    p.add({.label = label, .x = c.step, .y = y, .markers = c.step.size() <= 30});
    panels.push_back(std::move(p));
  };
  panel(title + ": outer objective", "outer objective", c.objective);
  if (!validation_name.empty() && any_finite(c.validation))
    panel("validation (" + validation_name + ")", validation_name, c.validation);
  panel("hypergradient norm", "‖h‖", c.grad_norm);

  const int total = height * static_cast<int>(panels.size());
  std::string doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  doc += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
                     "viewBox=\"0 0 {0} {1}\">\n<title>{2}</title>\n",
                     width, total, problems::escape_xml(title));
  for (std::size_t i = 0; i < panels.size(); ++i)
    doc += as_panel(panels[i].svg(), height * static_cast<int>(i), static_cast<int>(i));
  doc += "</svg>\n";
  bilevel::write_file_atomically(path, doc, "--plot");
}

}  // namespace hyperad::cli
