// Self-contained SVG grouped-bar charts; see svg_chart.h.
#include "profile/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "fcabert/error.h"

namespace fcabert::svg {
namespace {

// Coordinates: two decimals are plenty for pixels ("%.2f" does not depend on the locale
// unless the program calls setlocale, which fcabert does not).
std::string px(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  std::string result(text);
  while (result.size() > 1 && result.back() == '0') result.pop_back();
  if (result.back() == '.') result.pop_back();
  return result == "-0" ? "0" : result;
}

std::string tick_label(double value, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string value_text(double value) {
  char text[48];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

void check_chart(const BarChart& chart, size_t index) {
  const std::string where = "chart " + std::to_string(index + 1) + " (\"" + chart.title + "\")";
  if (chart.categories.empty()) throw Error("SVG " + where + " has no categories");
  if (chart.series.empty()) throw Error("SVG " + where + " has no series");
  for (const Series& series : chart.series) {
    if (series.values.size() != chart.categories.size())
      throw Error("SVG " + where + ": series \"" + series.name + "\" has " +
                  std::to_string(series.values.size()) + " values for " +
                  std::to_string(chart.categories.size()) + " categories");
    for (double value : series.values)
      if (!std::isfinite(value) || value < 0)
        throw Error("SVG " + where + ": series \"" + series.name + "\" holds " + value_text(value) +
                    "; bars need finite values >= 0");
  }
}

void render_chart(std::ostringstream& out, const BarChart& chart, double top, double width, double height) {
  const double left = 72, right = width - 160;
  const double plot_top = top + 40, plot_bottom = top + height - 52;
  const double plot_width = right - left, plot_height = plot_bottom - plot_top;
  double max_value = 0;
  for (const Series& series : chart.series)
    for (double value : series.values) max_value = std::max(max_value, value);
  const Axis axis = nice_axis(max_value);
  auto y_of = [&](double value) { return plot_bottom - value / axis.max * plot_height; };

  out << "<g class=\"chart\">\n";
  out << "<text class=\"chart-title\" x=\"" << px(left) << "\" y=\"" << px(top + 22) << "\">"
      << xml_escape(chart.title) << "</text>\n";

  // Grid lines and y tick labels.
  const int ticks = static_cast<int>(std::lround(axis.max / axis.step));
  for (int i = 0; i <= ticks; ++i) {
    const double value = i * axis.step, y = y_of(value);
    out << "<line class=\"grid\" x1=\"" << px(left) << "\" y1=\"" << px(y) << "\" x2=\"" << px(right)
        << "\" y2=\"" << px(y) << "\"/>\n";
    out << "<text class=\"tick\" x=\"" << px(left - 6) << "\" y=\"" << px(y)
        << "\" dy=\"0.32em\" text-anchor=\"end\">" << tick_label(value, axis.step) << "</text>\n";
  }

  // Bars: each category is a group; the series share 80% of its width.
  const size_t categories = chart.categories.size(), series_count = chart.series.size();
  const double group_width = plot_width / static_cast<double>(categories);
  const double bar_width = group_width * 0.8 / static_cast<double>(series_count);
  for (size_t c = 0; c < categories; ++c) {
    for (size_t s = 0; s < series_count; ++s) {
      const Series& series = chart.series[s];
      const double value = series.values[c];
      const double x = left + c * group_width + group_width * 0.1 + s * bar_width;
      const double y = y_of(value);
      out << "<rect class=\"bar\" data-series=\"" << xml_escape(series.name) << "\" data-category=\""
          << xml_escape(chart.categories[c]) << "\" data-value=\"" << value_text(value) << "\" x=\"" << px(x)
          << "\" y=\"" << px(y) << "\" width=\"" << px(bar_width) << "\" height=\"" << px(plot_bottom - y)
          << "\" fill=\"" << xml_escape(series.color) << "\"><title>" << xml_escape(series.name) << ", "
          << xml_escape(chart.x_label) << ' ' << xml_escape(chart.categories[c]) << ": " << value_text(value)
          << "</title></rect>\n";
    }
  }

  // Axes, category labels (thinned out when the groups are narrow) and axis labels.
  out << "<line class=\"axis\" x1=\"" << px(left) << "\" y1=\"" << px(plot_top) << "\" x2=\"" << px(left)
      << "\" y2=\"" << px(plot_bottom) << "\"/>\n";
  out << "<line class=\"axis\" x1=\"" << px(left) << "\" y1=\"" << px(plot_bottom) << "\" x2=\"" << px(right)
      << "\" y2=\"" << px(plot_bottom) << "\"/>\n";
  const size_t label_every = static_cast<size_t>(std::max(1.0, std::ceil(24.0 / group_width)));
  for (size_t c = 0; c < categories; c += label_every)
    out << "<text class=\"tick\" x=\"" << px(left + (c + 0.5) * group_width) << "\" y=\""
        << px(plot_bottom + 16) << "\" text-anchor=\"middle\">" << xml_escape(chart.categories[c])
        << "</text>\n";
  out << "<text class=\"label\" x=\"" << px((left + right) / 2) << "\" y=\"" << px(plot_bottom + 38)
      << "\" text-anchor=\"middle\">" << xml_escape(chart.x_label) << "</text>\n";
  const double label_x = 18, label_y = (plot_top + plot_bottom) / 2;
  out << "<text class=\"label\" x=\"" << px(label_x) << "\" y=\"" << px(label_y)
      << "\" text-anchor=\"middle\" "
      << "transform=\"rotate(-90 " << px(label_x) << ' ' << px(label_y) << ")\">" << xml_escape(chart.y_label)
      << "</text>\n";

  // Legend, right of the plot.
  for (size_t s = 0; s < series_count; ++s) {
    const double y = plot_top + 4 + s * 22.0;
    out << "<rect class=\"legend-key\" x=\"" << px(right + 18) << "\" y=\"" << px(y) << "\" width=\"12\" "
        << "height=\"12\" fill=\"" << xml_escape(chart.series[s].color) << "\"/>\n";
    out << "<text class=\"legend\" x=\"" << px(right + 36) << "\" y=\"" << px(y + 6) << "\" dy=\"0.32em\">"
        << xml_escape(chart.series[s].name) << "</text>\n";
  }
  out << "</g>\n";
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
          out += '?';
        else
          out += ch;
    }
  }
  return out;
}

Axis nice_axis(double max_value) {
  if (!(max_value > 0) || !std::isfinite(max_value)) return Axis{};
  const double raw = max_value / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
  // A small tolerance so that data exactly on a tick does not get an extra empty tick.
  const double max = std::ceil(max_value / step - 1e-9) * step;
  return Axis{max, step};
}

std::string render(const Document& document) {
  for (size_t i = 0; i < document.charts.size(); ++i) check_chart(document.charts[i], i);
  std::vector<std::string> subtitle_lines;
  for (size_t begin = 0; begin < document.subtitle.size();) {
    const size_t end = std::min(document.subtitle.find('\n', begin), document.subtitle.size());
    subtitle_lines.push_back(document.subtitle.substr(begin, end - begin));
    begin = end + 1;
  }
  const double header = 44 + 18 * static_cast<double>(subtitle_lines.size());
  const double width = document.width;
  const double height = header + document.chart_height * static_cast<double>(document.charts.size()) + 8;

  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(width) << "\" height=\"" << px(height)
      << "\" viewBox=\"0 0 " << px(width) << ' ' << px(height) << "\" font-family=\"sans-serif\">\n";
  out << "<title>" << xml_escape(document.title) << "</title>\n";
  out << "<style>\n"
         ".title{font-size:17px;font-weight:bold;fill:#222}\n"
         ".subtitle{font-size:12px;fill:#444}\n"
         ".chart-title{font-size:14px;font-weight:bold;fill:#222}\n"
         ".tick{font-size:11px;fill:#444}\n"
         ".label{font-size:12px;fill:#222}\n"
         ".legend{font-size:12px;fill:#222}\n"
         ".grid{stroke:#e3e3e3;stroke-width:1}\n"
         ".axis{stroke:#333;stroke-width:1}\n"
         "</style>\n";
  out << "<rect x=\"0\" y=\"0\" width=\"" << px(width) << "\" height=\"" << px(height)
      << "\" fill=\"#ffffff\"/>\n";
  out << "<text class=\"title\" x=\"16\" y=\"28\">" << xml_escape(document.title) << "</text>\n";
  for (size_t i = 0; i < subtitle_lines.size(); ++i)
    out << "<text class=\"subtitle\" x=\"16\" y=\"" << px(50 + 18 * static_cast<double>(i)) << "\">"
        << xml_escape(subtitle_lines[i]) << "</text>\n";
  for (size_t i = 0; i < document.charts.size(); ++i)
    render_chart(out, document.charts[i], header + document.chart_height * static_cast<double>(i), width,
                 document.chart_height);
  out << "</svg>\n";
  return out.str();
}

}  // namespace fcabert::svg
