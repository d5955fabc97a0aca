#pragma once
// A tiny writer for self-contained SVG grouped-bar charts (no scripts, no external fonts or
// style sheets): `fcabert profile --plot` draws FLOPs and milliseconds per layer with it.
//
// A document is a title, an optional subtitle and one or more charts stacked vertically.
// Each chart has categories along the x axis (e.g. layers) and one bar per series in each
// category, side by side, a y axis from 0 with "nice" ticks and grid lines, axis labels and a
// legend. Every bar is a <rect class="bar" data-series="..." data-category="..."
// data-value="..."> with a <title> tooltip; each chart is a <g class="chart">. All text is
// XML-escaped.
#include <string>
#include <string_view>
#include <vector>

namespace fcabert::svg {

struct Series {
  std::string name;
  std::string color;           // any SVG colour, e.g. "#4c72b0"
  std::vector<double> values;  // one per category, finite and >= 0
};

struct BarChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> categories;
  std::vector<Series> series;
};

struct Document {
  std::string title;
  std::string subtitle;  // optional lines under the title, separated by '\n'
  std::vector<BarChart> charts;
  double width = 760;         // pixels
  double chart_height = 320;  // pixels per chart
};

// &, <, >, " and ' as entities; other control characters (invalid in XML 1.0) become '?'.
std::string xml_escape(std::string_view text);

// The "nice" upper end of a y axis and its tick step for data up to `max_value` (1, 2 or 5
// times a power of ten; about five ticks). max_value <= 0 gives the axis 0..1.
struct Axis {
  double max = 1;
  double step = 0.2;
};
Axis nice_axis(double max_value);

// The whole SVG document. Throws fcabert::Error when a series does not have one value per
// category or holds a negative or non-finite value, or a chart has no categories or series.
std::string render(const Document& document);

}  // namespace fcabert::svg
