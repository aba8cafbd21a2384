#pragma once
/// @file svg_plot.hpp
/// @brief Tiny dependency-free SVG plot writer for the examples (standard library only).
///
/// Four plot kinds, each a plain struct you fill and then render:
///  - `svg_plot::line_plot`  : several x/y series (lines and/or markers), optional log axes.
///  - `svg_plot::histogram`  : several 1D histograms on shared bins (step outlines), optional density / log y.
///  - `svg_plot::scatter`    : a line_plot whose series draw markers only; per-point sizes allowed
///                             (e.g. jet constituents in (eta, phi) with area ~ pt).
///  - `svg_plot::heatmap`    : matrix of values with row/column labels and optional numbers in the cells
///                             (e.g. a confusion matrix).
/// Each struct has `save(path)` (one plot per file) and `render(out, x, y, w, h)`; `svg_plot::save_grid`
/// lays several plots out in a grid in one file. Example:
/// @code
///   svg_plot::line_plot p("ROC", "signal efficiency", "1 / bkg eff", /*log_x=*/false, /*log_y=*/true);
///   p.add("graph AE", eff, rej);          // colour picked from a palette
///   p.add("dense AE", eff2, rej2).dashed = true;
///   p.save("roc.svg");
///   svg_plot::histogram h;  h.title = "score";  h.bins = 50;
///   h.add("QCD", scores_qcd); h.add("top", scores_top);
///   svg_plot::save_grid("all.svg", {&p, &h}, 2);  // 2 columns
/// @endcode
/// Non-finite values (and values <= 0 on a log axis) are skipped, never drawn.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace svg_plot {

/// Default colour cycle (matplotlib tab10).
inline const char* palette(std::size_t i) {
  static const char* c[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return c[i % 10];
}

/// Escapes text for SVG/XML.
inline std::string escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  }
  return o;
}

/// Short number formatting for tick labels.
inline std::string fmt(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

/// Base of all plots: a title and an SVG renderer into a rectangle.
struct plot {
  std::string title;  ///< drawn above the frame
  virtual ~plot() = default;
  /// Writes SVG elements for this plot into the rectangle (x, y, w, h).
  virtual void render(std::ostream& out, double x, double y, double w, double h) const = 0;
  /// Writes a standalone SVG file of size w x h; throws std::runtime_error if it cannot be opened.
  void save(const std::string& path, double w = 640, double h = 480) const;
};

/// One axis mapping (linear or log10) from data to pixels.
struct axis_map {
  double lo = 0, hi = 1, p0 = 0, p1 = 1;
  bool log = false;
  double operator()(double v) const {
    double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    return p0 + (a - l) / (h - l) * (p1 - p0);
  }
  /// Tick positions: "nice" 1-2-5 steps on linear axes, decades on log axes.
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      int a = (int)std::floor(std::log10(lo) + 1e-9), b = (int)std::ceil(std::log10(hi) - 1e-9);
      int step = std::max(1, (b - a) / 8);
      for (int e = a; e <= b; e += step) {
        double v = std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push_back(v);
      }
      return t;
    }
    double span = hi - lo, raw = span / 6, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * span; v += step)
      t.push_back(std::fabs(v) < 1e-12 * span ? 0.0 : v);
    return t;
  }
};

namespace detail {
inline bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

/// Range of values (skipping unusable ones) padded a little; falls back to [0,1] / [1,10].
inline void range(const std::vector<const std::vector<double>*>& vs, bool log, double pad, double& lo,
                  double& hi) {
  lo = std::numeric_limits<double>::infinity();
  hi = -lo;
  for (auto* v : vs)
    for (double a : *v)
      if (usable(a, log)) lo = std::min(lo, a), hi = std::max(hi, a);
  if (!(lo <= hi)) {
    lo = log ? 1 : 0;
    hi = log ? 10 : 1;
    return;
  }
  if (log) {
    if (hi <= lo) hi = lo * 10;
    return;
  }
  if (hi <= lo) lo -= 0.5, hi += 0.5;
  double d = (hi - lo) * pad;
  lo -= d, hi += d;
}

inline void text(std::ostream& o, double x, double y, const std::string& s, const char* anchor = "middle",
                 int size = 12, double rotate = 0) {
  o << "<text x=\"" << x << "\" y=\"" << y << "\" font-size=\"" << size << "\" text-anchor=\"" << anchor
    << "\" font-family=\"sans-serif\"";
  if (rotate != 0) o << " transform=\"rotate(" << rotate << " " << x << " " << y << ")\"";
  o << ">" << escape(s) << "</text>\n";
}

/// Frame, ticks, tick labels, axis labels and title; sets up the two axis maps.
inline void frame(std::ostream& o, double x, double y, double w, double h, const std::string& title,
                  const std::string& xlabel, const std::string& ylabel, axis_map& ax, axis_map& ay) {
  double l = x + 62, r = x + w - 14, t = y + 28, b = y + h - 44;
  ax.p0 = l, ax.p1 = r, ay.p0 = b, ay.p1 = t;
  o << "<rect x=\"" << l << "\" y=\"" << t << "\" width=\"" << r - l << "\" height=\"" << b - t
    << "\" fill=\"white\" stroke=\"black\"/>\n";
  for (double v : ax.ticks()) {
    double p = ax(v);
    o << "<line x1=\"" << p << "\" y1=\"" << b << "\" x2=\"" << p << "\" y2=\"" << b + 5
      << "\" stroke=\"black\"/>\n";
    o << "<line x1=\"" << p << "\" y1=\"" << t << "\" x2=\"" << p << "\" y2=\"" << b
      << "\" stroke=\"#eee\"/>\n";
    text(o, p, b + 18, fmt(v), "middle", 11);
  }
  for (double v : ay.ticks()) {
    double p = ay(v);
    o << "<line x1=\"" << l - 5 << "\" y1=\"" << p << "\" x2=\"" << l << "\" y2=\"" << p
      << "\" stroke=\"black\"/>\n";
    o << "<line x1=\"" << l << "\" y1=\"" << p << "\" x2=\"" << r << "\" y2=\"" << p
      << "\" stroke=\"#eee\"/>\n";
    text(o, l - 8, p + 4, fmt(v), "end", 11);
  }
  text(o, (l + r) / 2, y + 18, title, "middle", 14);
  text(o, (l + r) / 2, y + h - 10, xlabel, "middle", 12);
  text(o, x + 14, (t + b) / 2, ylabel, "middle", 12, -90);
}

inline void legend(std::ostream& o, const axis_map& ax, const axis_map& ay,
                   const std::vector<std::pair<std::string, std::string>>& entries) {
  // Sized from the longest label (about 6.2 px per character at 11 px) so long labels stay inside the panel,
  // on a translucent box so curves under it stay visible but do not cross the text.
  std::size_t longest = 0, shown = 0;
  for (auto& e : entries)
    if (!e.first.empty()) longest = std::max(longest, e.first.size()), ++shown;
  if (shown == 0) return;
  const double width = 28 + 6.2 * static_cast<double>(longest);
  const double lx = std::max(ax.p0 + 4, ax.p1 - width - 6), ly = ay.p1 + 8;
  o << "<rect x=\"" << lx - 4 << "\" y=\"" << ly - 4 << "\" width=\"" << width << "\" height=\"" << 16 * shown + 4
    << "\" fill=\"white\" fill-opacity=\"0.8\" stroke=\"#ccc\"/>\n";
  int k = 0;
  for (auto& [label, color] : entries) {
    if (label.empty()) continue;
    double yy = ly + 16 * k++;
    o << "<rect x=\"" << lx << "\" y=\"" << yy << "\" width=\"14\" height=\"10\" fill=\"" << color
      << "\"/>\n";
    text(o, lx + 20, yy + 9, label, "start", 11);
  }
}
}  // namespace detail

/// One x/y series of a line plot or scatter plot.
struct series {
  std::string label;           ///< legend text (empty: no legend entry)
  std::vector<double> x, y;    ///< points, same length
  std::string color;           ///< CSS colour; empty: palette
  bool line = true;            ///< connect points with a polyline
  bool markers = false;        ///< draw a circle at each point
  bool dashed = false;         ///< dashed line
  double marker_radius = 3;    ///< circle radius in pixels (when `sizes` is empty)
  std::vector<double> sizes;   ///< optional per-point radius in pixels
  double opacity = 1;          ///< fill/stroke opacity
};

/// Line plot with several series and optional log axes.
struct line_plot : plot {
  std::string xlabel, ylabel;
  bool log_x = false, log_y = false;
  double x_min = NAN, x_max = NAN, y_min = NAN, y_max = NAN;  ///< fixed ranges (NaN: automatic)
  std::vector<series> data;
  line_plot() = default;
  line_plot(std::string t, std::string xl, std::string yl, bool lx = false, bool ly = false)
      : xlabel(std::move(xl)), ylabel(std::move(yl)), log_x(lx), log_y(ly) { title = std::move(t); }

  /// Adds a series (copied) and returns it for further styling.
  series& add(const std::string& label, std::vector<double> x, std::vector<double> y) {
    if (x.size() != y.size()) throw std::invalid_argument("svg_plot::line_plot::add: x and y sizes differ");
    series s;
    s.label = label, s.x = std::move(x), s.y = std::move(y);
    data.push_back(std::move(s));
    return data.back();
  }

  void render(std::ostream& o, double X, double Y, double W, double H) const override {
    std::vector<const std::vector<double>*> xs, ys;
    for (auto& s : data) xs.push_back(&s.x), ys.push_back(&s.y);
    axis_map ax, ay;
    ax.log = log_x, ay.log = log_y;
    detail::range(xs, log_x, 0.0, ax.lo, ax.hi);
    detail::range(ys, log_y, 0.04, ay.lo, ay.hi);
    if (std::isfinite(x_min)) ax.lo = x_min;
    if (std::isfinite(x_max)) ax.hi = x_max;
    if (std::isfinite(y_min)) ay.lo = y_min;
    if (std::isfinite(y_max)) ay.hi = y_max;
    detail::frame(o, X, Y, W, H, title, xlabel, ylabel, ax, ay);
    o << "<clipPath id=\"c" << (long)X << "_" << (long)Y << "\"><rect x=\"" << ax.p0 << "\" y=\"" << ay.p1
      << "\" width=\"" << ax.p1 - ax.p0 << "\" height=\"" << ay.p0 - ay.p1 << "\"/></clipPath>\n";
    o << "<g clip-path=\"url(#c" << (long)X << "_" << (long)Y << ")\">\n";
    std::vector<std::pair<std::string, std::string>> leg;
    for (std::size_t k = 0; k < data.size(); ++k) {
      const series& s = data[k];
      std::string c = s.color.empty() ? palette(k) : s.color;
      leg.emplace_back(s.label, c);
      std::size_t n = std::min(s.x.size(), s.y.size());
      if (s.line) {
        o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.8\" stroke-opacity=\""
          << s.opacity << "\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
        for (std::size_t i = 0; i < n; ++i)
          if (detail::usable(s.x[i], log_x) && detail::usable(s.y[i], log_y))
            o << ax(s.x[i]) << "," << ay(s.y[i]) << " ";
        o << "\"/>\n";
      }
      if (s.markers)
        for (std::size_t i = 0; i < n; ++i)
          if (detail::usable(s.x[i], log_x) && detail::usable(s.y[i], log_y)) {
            double r = i < s.sizes.size() ? s.sizes[i] : s.marker_radius;
            if (!(r > 0)) continue;
            o << "<circle cx=\"" << ax(s.x[i]) << "\" cy=\"" << ay(s.y[i]) << "\" r=\"" << r << "\" fill=\""
              << c << "\" fill-opacity=\"" << s.opacity << "\"/>\n";
          }
    }
    o << "</g>\n";
    detail::legend(o, ax, ay, leg);
  }
};

/// Scatter plot: a line plot whose added series draw markers only.
struct scatter : line_plot {
  using line_plot::line_plot;
  /// Adds a marker-only series; `sizes` (optional) gives per-point radii in pixels.
  series& add(const std::string& label, std::vector<double> x, std::vector<double> y,
              std::vector<double> sizes = {}) {
    series& s = line_plot::add(label, std::move(x), std::move(y));
    s.line = false, s.markers = true, s.sizes = std::move(sizes), s.opacity = 0.7;
    return s;
  }
};

/// Several 1D histograms of raw values on shared bins, drawn as step outlines.
struct histogram : plot {
  std::string xlabel, ylabel = "entries";
  int bins = 40;                  ///< number of bins
  double lo = NAN, hi = NAN;      ///< bin range (NaN: from the data)
  bool density = false;           ///< normalise each histogram to unit area
  bool log_y = false;
  struct entry { std::string label, color; std::vector<double> values; };
  std::vector<entry> data;
  /// Adds a set of raw values (non-finite ones are ignored; values outside [lo, hi] are dropped).
  entry& add(const std::string& label, std::vector<double> values) {
    data.push_back({label, "", std::move(values)});
    return data.back();
  }

  void render(std::ostream& o, double X, double Y, double W, double H) const override {
    std::vector<const std::vector<double>*> vs;
    for (auto& e : data) vs.push_back(&e.values);
    double a = lo, b = hi, ra, rb;
    detail::range(vs, false, 0.0, ra, rb);
    if (!std::isfinite(a)) a = ra;
    if (!std::isfinite(b)) b = rb;
    if (!(b > a)) b = a + 1;
    int nb = std::max(1, bins);
    double wbin = (b - a) / nb;
    std::vector<std::vector<double>> counts;
    std::vector<double> all;
    for (auto& e : data) {
      std::vector<double> c(nb, 0.0);
      double tot = 0;
      for (double v : e.values)
        if (std::isfinite(v) && v >= a && v <= b) c[std::min(nb - 1, (int)((v - a) / wbin))] += 1, tot += 1;
      if (density && tot > 0)
        for (double& x : c) x /= tot * wbin;
      all.insert(all.end(), c.begin(), c.end());
      counts.push_back(std::move(c));
    }
    axis_map ax, ay;
    ax.lo = a, ax.hi = b, ay.log = log_y;
    detail::range({&all}, log_y, 0.0, ay.lo, ay.hi);
    if (!log_y) ay.lo = 0, ay.hi = ay.hi * 1.08;
    else ay.lo = std::max(ay.lo * 0.8, 1e-300), ay.hi *= 1.5;
    detail::frame(o, X, Y, W, H, title, xlabel, density ? "density" : ylabel, ax, ay);
    std::vector<std::pair<std::string, std::string>> leg;
    for (std::size_t k = 0; k < data.size(); ++k) {
      std::string c = data[k].color.empty() ? palette(k) : data[k].color;
      leg.emplace_back(data[k].label, c);
      double base = ay.p0;
      o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.6\" points=\"" << ax(a) << ","
        << base << " ";
      for (int i = 0; i < nb; ++i) {
        double v = counts[k][i];
        double py = detail::usable(v, log_y) ? ay(v) : base;
        o << ax(a + i * wbin) << "," << py << " " << ax(a + (i + 1) * wbin) << "," << py << " ";
      }
      o << ax(b) << "," << base << "\"/>\n";
    }
    detail::legend(o, ax, ay, leg);
  }
};

/// Heatmap of a matrix (rows top to bottom) with labels and optional values written in the cells.
struct heatmap : plot {
  std::vector<std::vector<double>> values;       ///< values[row][col]
  std::vector<std::string> row_labels, col_labels;
  std::string xlabel, ylabel;
  bool annotate = true;                          ///< write each value in its cell
  std::string number_format = "%.2f";            ///< printf format for annotations

  void render(std::ostream& o, double X, double Y, double W, double H) const override {
    std::size_t nr = values.size(), nc = 0;
    double mn = std::numeric_limits<double>::infinity(), mx = -mn;
    for (auto& r : values) {
      nc = std::max(nc, r.size());
      for (double v : r)
        if (std::isfinite(v)) mn = std::min(mn, v), mx = std::max(mx, v);
    }
    double l = X + 90, r = X + W - 14, t = Y + 28, b = Y + H - 60;
    detail::text(o, (l + r) / 2, Y + 18, title, "middle", 14);
    detail::text(o, (l + r) / 2, Y + H - 10, xlabel, "middle", 12);
    detail::text(o, X + 14, (t + b) / 2, ylabel, "middle", 12, -90);
    if (nr == 0 || nc == 0) return;
    double cw = (r - l) / nc, ch = (b - t) / nr;
    for (std::size_t i = 0; i < nr; ++i)
      for (std::size_t j = 0; j < values[i].size(); ++j) {
        double v = values[i][j];
        double f = (std::isfinite(v) && mx > mn) ? (v - mn) / (mx - mn) : 0.0;
        // white -> dark blue ramp; text flips to white on dark cells
        int R = (int)(255 - 225 * f), G = (int)(255 - 180 * f), B = (int)(255 - 75 * f);
        char col[16];
        std::snprintf(col, sizeof col, "#%02x%02x%02x", R, G, B);
        o << "<rect x=\"" << l + j * cw << "\" y=\"" << t + i * ch << "\" width=\"" << cw << "\" height=\""
          << ch << "\" fill=\"" << (std::isfinite(v) ? col : "#ccc") << "\" stroke=\"white\"/>\n";
        if (annotate) {
          char buf[48];
          std::snprintf(buf, sizeof buf, number_format.c_str(), v);
          o << "<text x=\"" << l + (j + 0.5) * cw << "\" y=\"" << t + (i + 0.5) * ch + 4
            << "\" font-size=\"11\" text-anchor=\"middle\" font-family=\"sans-serif\" fill=\""
            << (f > 0.6 ? "white" : "black") << "\">" << buf << "</text>\n";
        }
      }
    for (std::size_t i = 0; i < nr && i < row_labels.size(); ++i)
      detail::text(o, l - 6, t + (i + 0.5) * ch + 4, row_labels[i], "end", 11);
    for (std::size_t j = 0; j < nc && j < col_labels.size(); ++j)
      detail::text(o, l + (j + 0.5) * cw, b + 16, col_labels[j], "middle", 11);
  }
};

/// Writes several plots into one SVG file, `cols` per row, each cell `w` x `h` pixels.
inline void save_grid(const std::string& path, const std::vector<const plot*>& plots, int cols = 2,
                      double w = 480, double h = 360) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("svg_plot::save_grid: cannot open '" + path + "' for writing");
  cols = std::max(1, cols);
  int n = (int)plots.size(), rows = (n + cols - 1) / cols;
  f << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << cols * w << "\" height=\"" << rows * h
    << "\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int i = 0; i < n; ++i)
    if (plots[i]) plots[i]->render(f, (i % cols) * w, (i / cols) * h, w, h);
  f << "</svg>\n";
}

inline void plot::save(const std::string& path, double w, double h) const { save_grid(path, {this}, 1, w, h); }

}  // namespace svg_plot
