#pragma once
/// \file svg_plot.hpp
/// A small, dependency-free SVG line-plot writer for benchmark and CLI figures: several
/// series, a title, axes with "nice" ticks and labels, a legend, and an optional log scale
/// on y. The output is a standalone, well-formed SVG 1.1 document (all text XML-escaped).
///
///     LinePlot plot({.title = "validation loss", .x_label = "samples", .y_label = "loss",
///                    .log_y = true});
///     plot.add({.label = "SID", .x = xs, .y = ys});
///     plot.write("results/sid.svg");
///
/// Points with a non-finite coordinate — or y ≤ 0 on a log scale — are left out and break
/// the line there (a gap), so a series can carry missing values. Each series is drawn in
/// its own `<g class="series" data-label="…">` group.
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace hyperad::problems {

struct PlotSeries {
  std::string label{};
  std::vector<double> x{}, y{};  ///< same length
  std::string color{};       ///< any SVG color; empty: the next one of a 10-color palette
  bool markers = false;      ///< a dot at every point
  bool dashed = false;
};

struct PlotOptions {
  std::string title{}, x_label{}, y_label{};
  bool log_y = false;  ///< log scale on y: decade ticks 10^k (range widened to whole decades)
  /// Fixed y range (NaN: from the data). Lines leaving it are clipped at the frame. On a
  /// log scale both must be > 0 and are widened to whole decades.
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
  int width = 760;     ///< pixels (≥ 200)
  int height = 480;    ///< pixels (≥ 150)
};

class LinePlot {
 public:
  /// ValueError for a size below the minimum or an empty or invalid fixed y range.
  explicit LinePlot(PlotOptions options = {});
  /// Adds a series; ValueError when x and y differ in length.
  LinePlot& add(PlotSeries series);
  /// The SVG document.
  std::string svg() const;
  /// Writes svg() to `path` (bilevel::write_file_atomically: never half a file, no
  /// temporary left behind). Throws bilevel::IOError naming the path if it cannot be written.
  void write(const std::string& path) const;

  const PlotOptions& options() const { return options_; }
  const std::vector<PlotSeries>& series() const { return series_; }

 private:
  PlotOptions options_;
  std::vector<PlotSeries> series_;
};

/// `text` with &, <, >, " and ' replaced by entities (for text content and attributes).
std::string escape_xml(std::string_view text);
/// About `target` round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
/// The powers of ten in [lo, hi] (0 < lo ≤ hi).
std::vector<double> decade_ticks(double lo, double hi);

}  // namespace hyperad::problems
