// The SVG line-plot writer: well-formed XML (checked by a small parser below), escaped
// text, every series drawn and in the legend, ticks on linear and log scales, gaps for
// unusable points, atomic writes, misuse.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "temp_files.hpp"
#include "hyperad/autodiff/errors.hpp"
#include "hyperad/problems/svg_plot.hpp"

using namespace hyperad;
using namespace hyperad::problems;

namespace {

// A minimal XML well-formedness check: one root element, properly nested and matching
// tags, quoted attributes without duplicates or '<', only the five predefined or numeric
// entities, no stray '<' or '&' in text, comments and one leading declaration allowed.
// Returns "" when well-formed, otherwise what is wrong and where.
std::string xml_error(const std::string& s) {
  std::vector<std::string> stack;
  std::size_t i = 0, roots = 0;
  auto is_name = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.'; };
  auto entity_ok = [&](std::size_t at) {  // s[at] == '&'
    const std::size_t end = s.find(';', at);
    if (end == std::string::npos) return false;
    const std::string e = s.substr(at + 1, end - at - 1);
    if (e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos") return true;
    if (e.size() > 1 && e[0] == '#') {
      const bool hex = e[1] == 'x';
      const std::string digits = e.substr(hex ? 2 : 1);
      if (digits.empty()) return false;
      for (char c : digits)
        if (!(hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c))))
          return false;
      return true;
    }
    return false;
  };
  auto where = [&](std::size_t at) { return " at offset " + std::to_string(at); };
  if (s.rfind("<?xml", 0) == 0) {
    i = s.find("?>");
    if (i == std::string::npos) return "unterminated declaration";
    i += 2;
  }
  while (i < s.size()) {
    if (s[i] != '<') {
      if (s[i] == '&' && !entity_ok(i)) return "bad entity" + where(i);
      if (s[i] == '>') return "stray '>'" + where(i);
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(s[i]))) return "text outside the root" + where(i);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const std::size_t end = s.find("-->", i + 4);
      if (end == std::string::npos) return "unterminated comment" + where(i);
      i = end + 3;
      continue;
    }
    const bool closing = i + 1 < s.size() && s[i + 1] == '/';
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_start = j;
    while (j < s.size() && is_name(s[j])) ++j;
    const std::string name = s.substr(name_start, j - name_start);
    if (name.empty()) return "tag without a name" + where(i);
    if (closing) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size() || s[j] != '>') return "bad closing tag" + where(i);
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + ">" + where(i);
      stack.pop_back();
      i = j + 1;
      continue;
    }
    std::set<std::string> attrs;
    bool self_closing = false;
    while (true) {
      const std::size_t before = j;
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return "unterminated tag <" + name + ">";
      if (s[j] == '>') break;
      if (s.compare(j, 2, "/>") == 0) {
        self_closing = true;
        ++j;
        break;
      }
      if (j == before) return "attributes not separated by space in <" + name + ">" + where(j);
      const std::size_t a = j;
      while (j < s.size() && is_name(s[j])) ++j;
      const std::string attr = s.substr(a, j - a);
      if (attr.empty() || j >= s.size() || s[j] != '=') return "bad attribute in <" + name + ">" + where(a);
      if (!attrs.insert(attr).second) return "duplicate attribute " + attr + where(a);
      ++j;
      if (j >= s.size() || (s[j] != '"' && s[j] != '\'')) return "unquoted attribute " + attr + where(j);
      const char q = s[j];
      const std::size_t end = s.find(q, j + 1);
      if (end == std::string::npos) return "unterminated attribute " + attr;
      for (std::size_t k = j + 1; k < end; ++k) {
        if (s[k] == '<') return "'<' in attribute " + attr + where(k);
        if (s[k] == '&' && !entity_ok(k)) return "bad entity in attribute " + attr + where(k);
      }
      j = end + 1;
    }
    if (stack.empty() && ++roots > 1) return "more than one root element" + where(i);
    if (!self_closing) stack.push_back(name);
    i = j + 1;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "no root element";
  return "";
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("the checker itself accepts XML and rejects malformed documents") {
  CHECK(xml_error("<?xml version=\"1.0\"?>\n<a x=\"1\" y='2'><b/>t &amp; &#38; &#x26;<!-- c --></a>\n") == "");
  CHECK(xml_error("<a><b></a></b>") != "");
  CHECK(xml_error("<a x=1/>") != "");
  CHECK(xml_error("<a x=\"1\" x=\"2\"/>") != "");
  CHECK(xml_error("<a>&foo;</a>") != "");
  CHECK(xml_error("<a>1 & 2</a>") != "");
  CHECK(xml_error("<a>1 > 2</a>") != "");
  CHECK(xml_error("<a/><b/>") != "");
  CHECK(xml_error("<a x=\"<\"/>") != "");
  CHECK(xml_error("<a>") != "");
}

TEST_CASE("a plot is well-formed, escapes its text and draws every series") {
  LinePlot plot({.title = "loss <vs> samples & \"budget\"", .x_label = "samples 'n'", .y_label = "E(w, λ)"});
  plot.add({.label = "SID <warm> & 'cold'", .x = {0, 1, 2, 3}, .y = {3, 2, 1.5, 1.2}})
      .add({.label = "AID", .x = {0, 2, 4}, .y = {2.5, 1.4, 1.1}, .markers = true, .dashed = true})
      .add({.label = "empty", .x = {}, .y = {}});
  const std::string svg = plot.svg();
  CHECK(xml_error(svg) == "");
  CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(count(svg, "<g class=\"series\"") == 3);
  CHECK(svg.find("data-label=\"SID &lt;warm&gt; &amp; &apos;cold&apos;\"") != std::string::npos);
  CHECK(count(svg, ">SID &lt;warm&gt; &amp; &apos;cold&apos;</text>") == 1);  // the legend entry
  CHECK(count(svg, ">AID</text>") == 1);
  CHECK(svg.find("loss &lt;vs&gt; samples &amp; &quot;budget&quot;") != std::string::npos);
  CHECK(svg.find("samples &apos;n&apos;") != std::string::npos);
  CHECK(svg.find("E(w, λ)") != std::string::npos);  // UTF-8 passes through
  CHECK(count(svg, "<polyline") == 2);               // the empty series draws nothing
  CHECK(count(svg, "<circle") == 3);                 // markers on AID only
  CHECK(count(svg, "stroke-dasharray") == 2);        // AID's line and its legend sample
  // Default palette: distinct colours.
  CHECK(plot.series()[0].color != plot.series()[1].color);
  // x ticks 0, 1, …, 4: the first at the left edge of the plot area (72 px).
  CHECK(svg.find("text-anchor=\"middle\">4</text>") != std::string::npos);
  CHECK(svg.find("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.8\" points=\"72.00,") != std::string::npos);
}

TEST_CASE("log scale: decade ticks over whole decades, non-positive values leave gaps") {
  LinePlot plot({.title = "error", .log_y = true});
  plot.add({.label = "err", .x = {1, 2, 3, 4, 5, 6}, .y = {0.5, 0.02, 0.0, 1e-3, 2e-4, -1.0}});
  const std::string svg = plot.svg();
  CHECK(xml_error(svg) == "");
  // y in [2e-4, 0.5] → decades 10^-4 … 10^0, labelled 10 with a superscript exponent.
  for (const char* k : {">-4</tspan>", ">-3</tspan>", ">-2</tspan>", ">-1</tspan>", ">0</tspan>"}) CHECK(svg.find(k) != std::string::npos);
  CHECK(svg.find(">-5</tspan>") == std::string::npos);
  CHECK(svg.find(">1</tspan>") == std::string::npos);
  CHECK(count(svg, "<polyline") == 2);  // broken at y = 0; y = −1 dropped
  CHECK(decade_ticks(3e-3, 20) == std::vector<double>{0.01, 0.1, 1, 10});
  CHECK(decade_ticks(2, 3).empty());
  // Many decades are thinned to about eight labels.
  LinePlot wide({.log_y = true});
  wide.add({.label = "w", .x = {0, 1}, .y = {1e-20, 1e5}});
  const std::string w = wide.svg();
  CHECK(xml_error(w) == "");
  CHECK(count(w, "</tspan>") <= 9);
  CHECK(count(w, "</tspan>") >= 5);
}

TEST_CASE("linear ticks are round numbers; NaN breaks a line") {
  CHECK(nice_ticks(0, 1) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  CHECK(nice_ticks(0, 97) == std::vector<double>{0, 20, 40, 60, 80});
  CHECK(nice_ticks(-3, 3, 6) == std::vector<double>{-3, -2, -1, 0, 1, 2, 3});
  LinePlot plot;
  plot.add({.label = "gappy", .x = {0, 1, 2, 3, 4}, .y = {1, NAN, 0.3, 0.7, INFINITY}});
  const std::string svg = plot.svg();
  CHECK(xml_error(svg) == "");
  CHECK(count(svg, "<polyline") == 2);
  CHECK(svg.find(">0.6</text>") != std::string::npos);  // y ticks: labels with one decimal
  CHECK(svg.find("0.6000") == std::string::npos);
  // A constant series and an empty plot still give valid documents.
  LinePlot flat;
  flat.add({.label = "c", .x = {5, 5}, .y = {2, 2}});
  CHECK(xml_error(flat.svg()) == "");
  CHECK(xml_error(LinePlot().svg()) == "");
}

TEST_CASE("a fixed y range sets the ticks and clips the lines") {
  LinePlot plot({.y_min = 0.24, .y_max = 0.26});
  plot.add({.label = "loss", .x = {0, 1, 2, 3}, .y = {0.6, 0.25, 0.245, 0.241}});
  const std::string svg = plot.svg();
  CHECK(xml_error(svg) == "");
  CHECK(svg.find(">0.240</text>") != std::string::npos);  // the lowest tick is the fixed bound, unpadded
  CHECK(svg.find(">0.260</text>") != std::string::npos);
  CHECK(svg.find(">0.6") == std::string::npos);           // the data's 0.6 does not widen the axis
  CHECK(svg.find("clip-path=\"url(#plot-area)\"") != std::string::npos);
  // Only a lower bound: the top comes from the data.
  LinePlot low({.log_y = true, .y_min = 1e-3});
  low.add({.label = "e", .x = {0, 1}, .y = {1e-5, 0.5}});
  const std::string l = low.svg();
  CHECK(l.find(">-3</tspan>") != std::string::npos);
  CHECK(l.find(">-5</tspan>") == std::string::npos);
  CHECK(l.find(">0</tspan>") != std::string::npos);
  CHECK_THROWS_WITH_AS(LinePlot({.y_min = 1, .y_max = 1}), doctest::Contains("invalid fixed y range [1, 1]"), ValueError);
  CHECK_THROWS_WITH_AS(LinePlot({.log_y = true, .y_min = 0}), doctest::Contains("positive bounds"), ValueError);
}

TEST_CASE("write puts the document in place; misuse is reported") {
  const auto dir = std::filesystem::temp_directory_path() / "hyperad_svg_plot_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "p.svg").string();
  LinePlot plot({.title = "t"});
  plot.add({.label = "a", .x = {0, 1}, .y = {0, 1}});
  plot.write(path);
  std::ifstream f(path);
  std::stringstream buf;
  buf << f.rdbuf();
  CHECK(buf.str() == plot.svg());
  CHECK(hyperad::testing::leftover_temporaries(path) == 0);
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH_AS(plot.write("/nonexistent-dir/x.svg"), doctest::Contains("/nonexistent-dir/x.svg"), Error);
  CHECK_THROWS_WITH_AS(plot.add({.label = "bad", .x = {1, 2}, .y = {1}}),
                       doctest::Contains("series \"bad\" has 2 x values but 1 y values"), ValueError);
  CHECK_THROWS_WITH_AS(LinePlot({.width = 100}), doctest::Contains("got 100 × 480"), ValueError);
}
