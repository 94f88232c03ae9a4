#include "hyperad/problems/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "hyperad/autodiff/errors.hpp"
#include "hyperad/bilevel/files.hpp"

namespace hyperad::problems {

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// Plot-area margins in pixels.
constexpr double kLeft = 72, kRight = 20, kTop = 40, kBottom = 56;

// A tick label: as few digits as the tick spacing needs.
std::string linear_label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;  // -0 and round-off around zero
  const double mag = std::max(std::abs(v), step);
  if (mag >= 1e6 || mag < 1e-4) return fmt::format("{:.3g}", v);
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

// 10^k as "10" with a superscript exponent.
std::string decade_label(double v) {
  const int k = static_cast<int>(std::lround(std::log10(v)));
  return fmt::format("10<tspan dy=\"-6\" font-size=\"9\">{}</tspan>", k);
}

std::string num(double v) { return fmt::format("{:.2f}", v); }

}  // namespace

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || target < 1) return {lo};
  const double raw = (hi - lo) / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * p;
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  std::vector<double> t;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) t.push_back(k * step);
  return t;
}

std::vector<double> decade_ticks(double lo, double hi) {
  std::vector<double> t;
  if (!(lo > 0) || !(hi >= lo)) return t;
  for (int k = static_cast<int>(std::ceil(std::log10(lo) - 1e-9)); k <= std::floor(std::log10(hi) + 1e-9); ++k)
    t.push_back(std::pow(10.0, k));
  return t;
}

LinePlot::LinePlot(PlotOptions options) : options_(std::move(options)) {
  if (options_.width < 200 || options_.height < 150)
    throw ValueError(fmt::format("LinePlot: the size must be at least 200 × 150 pixels, got {} × {}", options_.width,
                                 options_.height));
  const double lo = options_.y_min, hi = options_.y_max;
  if (std::isinf(lo) || std::isinf(hi) || (!std::isnan(lo) && !std::isnan(hi) && !(lo < hi)) ||
      (options_.log_y && (lo <= 0 || hi <= 0)))
    throw ValueError(fmt::format("LinePlot: invalid fixed y range [{}, {}]{}", lo, hi,
                                 options_.log_y ? " (a log scale needs positive bounds)" : ""));
}

LinePlot& LinePlot::add(PlotSeries series) {
  if (series.x.size() != series.y.size())
    throw ValueError(fmt::format("LinePlot::add: series \"{}\" has {} x values but {} y values", series.label,
                                 series.x.size(), series.y.size()));
  if (series.color.empty()) series.color = kPalette[series_.size() % std::size(kPalette)];
  series_.push_back(std::move(series));
  return *this;
}

std::string LinePlot::svg() const {
  const bool log_y = options_.log_y;
  auto usable = [log_y](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); };

  // Data ranges over the usable points.
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const PlotSeries& s : series_)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], s.y[i])) {
        x0 = std::min(x0, s.x[i]);
        x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, s.y[i]);
        y1 = std::max(y1, s.y[i]);
      }
  if (!(x1 >= x0)) x0 = 0, x1 = 1;
  if (!(y1 >= y0)) y0 = log_y ? 1 : 0, y1 = log_y ? 10 : 1;
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  // A fixed bound replaces the data's (an only-lower or only-upper bound keeps the order).
  const bool fixed_lo = !std::isnan(options_.y_min), fixed_hi = !std::isnan(options_.y_max);
  if (fixed_lo) y0 = options_.y_min;
  if (fixed_hi) y1 = options_.y_max;
  if (y1 < y0) {  // all data beyond the one fixed bound
    if (fixed_lo) y1 = y0;
    else y0 = y1;
  }
  std::vector<double> xt = nice_ticks(x0, x1), yt;
  double ylo, yhi;
  if (log_y) {  // whole decades, at least one
    ylo = std::floor(std::log10(y0) + 1e-12);
    yhi = std::max(std::ceil(std::log10(y1) - 1e-12), ylo + 1);
    yt = decade_ticks(std::pow(10.0, ylo), std::pow(10.0, yhi));
    const std::size_t every = (yt.size() + 7) / 8;  // at most ~8 labelled decades
    if (every > 1) {
      std::vector<double> thin;
      for (std::size_t i = 0; i < yt.size(); i += every) thin.push_back(yt[i]);
      yt = thin;
    }
  } else {
    if (y1 == y0) {  // widen a free side
      if (fixed_lo && !fixed_hi) y1 += 1;
      else if (fixed_hi && !fixed_lo) y0 -= 1;
      else y0 -= 0.5, y1 += 0.5;
    }
    const double pad = 0.05 * (y1 - y0);  // no padding on a fixed side
    ylo = fixed_lo ? y0 : y0 - pad;
    yhi = fixed_hi ? y1 : y1 + pad;
    yt = nice_ticks(ylo, yhi);
  }

  const double W = options_.width, H = options_.height;
  const double pw = W - kLeft - kRight, ph = H - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) {
    const double u = log_y ? (std::log10(y) - ylo) / (yhi - ylo) : (y - ylo) / (yhi - ylo);
    return kTop + (1 - u) * ph;
  };

  std::string o;
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
      options_.width, options_.height);
  o += fmt::format("<title>{}</title>\n", escape_xml(options_.title));
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += fmt::format("<defs><clipPath id=\"plot-area\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n",
                   num(kLeft), num(kTop), num(pw), num(ph));
  if (!options_.title.empty())
    o += fmt::format("<text class=\"title\" x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                     num(W / 2), escape_xml(options_.title));

  // Grid, ticks and tick labels.
  o += "<g class=\"x-axis\">\n";
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1.0;
  for (double t : xt) {
    const double X = px(t);
    o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e5e5e5\"/>", num(X), num(kTop),
                     num(kTop + ph));
    o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>", num(X), num(kTop + ph),
                     num(kTop + ph + 5));
    o += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(X),
                     num(kTop + ph + 18), escape_xml(linear_label(t, xstep)));
  }
  o += "</g>\n<g class=\"y-axis\">\n";
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0;
  for (double t : yt) {
    const double Y = py(t);
    o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#e5e5e5\"/>", num(kLeft), num(Y),
                     num(kLeft + pw));
    o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>", num(kLeft - 5), num(Y),
                     num(kLeft));
    o += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", num(kLeft - 8),
                     num(Y + 4), log_y ? decade_label(t) : escape_xml(linear_label(t, ystep)));
  }
  if (log_y && yhi - ylo <= 6)  // unlabelled minor ticks 2·10^k … 9·10^k
    for (double k = ylo; k < yhi; ++k)
      for (int m = 2; m <= 9; ++m) {
        const double Y = py(m * std::pow(10.0, k));
        o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>", num(kLeft - 3), num(Y),
                         num(kLeft));
      }
  o += "\n</g>\n";
  o += fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n",
                   num(kLeft), num(kTop), num(pw), num(ph));
  if (!options_.x_label.empty())
    o += fmt::format("<text class=\"x-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     num(kLeft + pw / 2), num(H - 14), escape_xml(options_.x_label));
  if (!options_.y_label.empty())
    o += fmt::format(
        "<text class=\"y-label\" x=\"0\" y=\"0\" text-anchor=\"middle\" transform=\"translate(16 {}) rotate(-90)\">{}</text>\n",
        num(kTop + ph / 2), escape_xml(options_.y_label));

  // Series: one polyline per run of usable points.
  o += "<g clip-path=\"url(#plot-area)\">\n";
  for (const PlotSeries& s : series_) {
    const std::string color = escape_xml(s.color);
    o += fmt::format("<g class=\"series\" data-label=\"{}\">\n", escape_xml(s.label));
    std::string points;
    auto flush = [&] {
      if (!points.empty())
        o += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{} points=\"{}\"/>\n", color,
                         s.dashed ? " stroke-dasharray=\"6 4\"" : "", points);
      points.clear();
    };
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i])) {
        flush();
        continue;
      }
      if (!points.empty()) points += ' ';
      points += num(px(s.x[i]));
      points += ',';
      points += num(py(s.y[i]));
      if (s.markers)
        o += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>\n", num(px(s.x[i])), num(py(s.y[i])),
                         color);
    }
    flush();
    o += "</g>\n";
  }
  o += "</g>\n";

  // Legend, top right inside the plot area.
  if (!series_.empty()) {
    std::size_t longest = 0;
    for (const PlotSeries& s : series_) longest = std::max(longest, s.label.size());
    const double lw = 40 + 6.8 * static_cast<double>(longest), lh = 8 + 18 * static_cast<double>(series_.size());
    const double lx = kLeft + pw - lw - 8, ly = kTop + 8;
    o += fmt::format("<g class=\"legend\">\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" "
                     "fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
                     num(lx), num(ly), num(lw), num(lh));
    for (std::size_t i = 0; i < series_.size(); ++i) {
      const PlotSeries& s = series_[i];
      const double y = ly + 15 + 18 * static_cast<double>(i);
      o += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"{4}/>", num(lx + 6),
                       num(lx + 30), num(y - 4), escape_xml(s.color), s.dashed ? " stroke-dasharray=\"6 4\"" : "");
      o += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(lx + 36), num(y), escape_xml(s.label));
    }
    o += "</g>\n";
  }
  o += "</svg>\n";
  return o;
}

void LinePlot::write(const std::string& path) const { bilevel::write_file_atomically(path, svg(), "LinePlot::write"); }

}  // namespace hyperad::problems
