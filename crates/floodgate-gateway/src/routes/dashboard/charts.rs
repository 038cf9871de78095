//! Server-side SVG charts: a time axis of equal slots, a linear value axis from zero with
//! round ticks, one polyline per series (or stacked bars), a legend, and an optional
//! marker at one time. No script and no dependency: the page stays one self-contained
//! HTML document under a strict Content-Security-Policy.

use std::fmt::Write as _;

use super::html::{clock, escape, number};

/// Colours for series, in order (distinguishable, also in grey print).
const PALETTE: [&str; 10] = [
    "#3d6fd6", "#e0703a", "#2f9e5b", "#c23b54", "#8a5cc7", "#b08a1e", "#1f9bb0", "#d056a3",
    "#6b7280", "#7a9c24",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 230.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

impl Dash {
    fn attribute(self) -> &'static str {
        match self {
            Dash::Solid => "",
            Dash::Dashed => " stroke-dasharray=\"7 4\"",
            Dash::Dotted => " stroke-dasharray=\"2 3\"",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One polyline per series; a gap (`None`) breaks the line.
    Lines,
    /// Bars stacked per slot, series in order from the bottom.
    StackedBars,
}

/// One line (or bar layer): a value per slot, `None` where there is none.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub color: usize,
    pub dash: Dash,
}

impl Series {
    pub fn new(name: impl Into<String>, values: Vec<Option<f64>>, color: usize) -> Self {
        Self {
            name: name.into(),
            values,
            color,
            dash: Dash::Solid,
        }
    }

    pub fn dashed(mut self, dash: Dash) -> Self {
        self.dash = dash;
        self
    }
}

/// A chart over `slots` equal time slots starting at `start`, `step` seconds each.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The accessible name (the panel's heading is the page's).
    pub title: String,
    /// What the values are (`requests/min`, `ms`, `USD/h`, `%`).
    pub unit: String,
    pub start: i64,
    pub step: i64,
    pub slots: usize,
    pub kind: Kind,
    pub series: Vec<Series>,
    /// A vertical marker at this time, with its label.
    pub marker: Option<(i64, String)>,
}

impl Chart {
    pub fn new(title: &str, unit: &str, start: i64, step: i64, slots: usize) -> Self {
        Self {
            title: title.into(),
            unit: unit.into(),
            start,
            step: step.max(1),
            slots: slots.max(1),
            kind: Kind::Lines,
            series: Vec::new(),
            marker: None,
        }
    }

    pub fn bars(mut self) -> Self {
        self.kind = Kind::StackedBars;
        self
    }

    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    fn has_data(&self) -> bool {
        self.series
            .iter()
            .any(|s| s.values.iter().any(Option::is_some))
    }

    /// The largest value the axis must show (the tallest stack for bars).
    fn max_value(&self) -> f64 {
        let finite = |v: &Option<f64>| v.filter(|x| x.is_finite()).unwrap_or(0.0);
        match self.kind {
            Kind::Lines => self
                .series
                .iter()
                .flat_map(|s| s.values.iter().map(finite))
                .fold(0.0, f64::max),
            Kind::StackedBars => (0..self.slots)
                .map(|i| {
                    self.series
                        .iter()
                        .map(|s| s.values.get(i).map_or(0.0, finite).max(0.0))
                        .sum::<f64>()
                })
                .fold(0.0, f64::max),
        }
    }

    /// The chart as a `<figure>`: the SVG and its legend.
    pub fn render(&self) -> String {
        let mut svg = String::with_capacity(8192);
        let _ = write!(
            svg,
            "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
             role=\"img\" aria-label=\"{}\" data-series=\"{}\" data-empty=\"{}\">",
            escape(&self.title),
            self.series.len(),
            !self.has_data()
        );
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let top = nice_ceiling(self.max_value());
        let y = |v: f64| TOP + plot_h - (v.clamp(0.0, top) / top) * plot_h;
        let slot_w = plot_w / self.slots as f64;
        let x = |i: usize| LEFT + (i as f64 + 0.5) * slot_w;

        // Value axis: gridlines and labels at round steps.
        let tick = top / 4.0;
        for k in 0..=4 {
            let v = tick * f64::from(k);
            let yy = y(v);
            let _ = write!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e7ee\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6475\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 5.0,
                yy + 3.5,
                escape(&number(v))
            );
        }
        let _ = write!(
            svg,
            "<text x=\"10\" y=\"{:.1}\" font-size=\"10\" fill=\"#5b6475\" transform=\"rotate(-90 10 {:.1})\" text-anchor=\"middle\">{}</text>",
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.unit)
        );
        // Time axis: a label every few slots, on round clock times.
        let every = tick_every(self.step, self.slots);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9aa3b5\"/>",
            WIDTH - RIGHT,
            TOP + plot_h,
            TOP + plot_h
        );
        for i in 0..self.slots {
            let t = self.start + i as i64 * self.step;
            if t.rem_euclid(every) != 0 {
                continue;
            }
            let _ = write!(
                svg,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#9aa3b5\"/>\
                 <text x=\"{0:.1}\" y=\"{3:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5b6475\">{4}</text>",
                x(i),
                TOP + plot_h,
                TOP + plot_h + 4.0,
                TOP + plot_h + 15.0,
                clock(t)
            );
        }

        if self.has_data() {
            match self.kind {
                Kind::Lines => self.lines(&mut svg, &x, &y),
                Kind::StackedBars => self.stacked_bars(&mut svg, &x, &y, slot_w),
            }
        } else {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#5b6475\">no data in this window</text>",
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0
            );
        }

        if let Some((at, label)) = &self.marker {
            let pos = (at - self.start) as f64 / self.step as f64;
            if (0.0..=self.slots as f64).contains(&pos) {
                let mx = LEFT + pos * slot_w;
                let _ = write!(
                    svg,
                    "<line class=\"marker\" x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#b3261e\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#b3261e\">{}</text>",
                    TOP + plot_h,
                    mx + 4.0,
                    TOP + 10.0,
                    escape(label)
                );
            }
        }
        svg.push_str("</svg>");
        svg.push_str(&self.legend());
        svg.push_str("</figure>");
        svg
    }

    fn lines(&self, svg: &mut String, x: &dyn Fn(usize) -> f64, y: &dyn Fn(f64) -> f64) {
        for s in &self.series {
            let color = PALETTE[s.color % PALETTE.len()];
            let mut run: Vec<(f64, f64)> = Vec::new();
            let flush = |run: &mut Vec<(f64, f64)>, svg: &mut String| {
                match run.len() {
                    0 => {}
                    1 => {
                        let _ = write!(
                            svg,
                            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{color}\"><title>{}</title></circle>",
                            run[0].0,
                            run[0].1,
                            escape(&s.name)
                        );
                    }
                    _ => {
                        let points: Vec<String> =
                            run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                        let _ = write!(
                            svg,
                            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\" stroke-linejoin=\"round\"{}><title>{}</title></polyline>",
                            points.join(" "),
                            s.dash.attribute(),
                            escape(&s.name)
                        );
                    }
                }
                run.clear();
            };
            for (i, v) in s.values.iter().enumerate().take(self.slots) {
                match v.filter(|v| v.is_finite()) {
                    Some(v) => run.push((x(i), y(v))),
                    None => flush(&mut run, &mut *svg),
                }
            }
            flush(&mut run, &mut *svg);
        }
    }

    fn stacked_bars(
        &self,
        svg: &mut String,
        x: &dyn Fn(usize) -> f64,
        y: &dyn Fn(f64) -> f64,
        slot_w: f64,
    ) {
        let bar_w = (slot_w * 0.8).max(1.0);
        for i in 0..self.slots {
            let mut base = 0.0;
            for s in &self.series {
                let v = s
                    .values
                    .get(i)
                    .copied()
                    .flatten()
                    .filter(|v| v.is_finite() && *v > 0.0);
                let Some(v) = v else { continue };
                let (y0, y1) = (y(base), y(base + v));
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                    x(i) - bar_w / 2.0,
                    y1,
                    (y0 - y1).max(0.5),
                    PALETTE[s.color % PALETTE.len()],
                    escape(&s.name),
                    escape(&number(v))
                );
                base += v;
            }
        }
    }

    fn legend(&self) -> String {
        let mut out = String::from("<ul class=\"legend\">");
        for s in &self.series {
            let class = if s.dash == Dash::Solid {
                ""
            } else {
                " class=\"dashed\""
            };
            let _ = write!(
                out,
                "<li><i{class} style=\"background:{}\"></i>{}</li>",
                PALETTE[s.color % PALETTE.len()],
                escape(&s.name)
            );
        }
        out.push_str("</ul>");
        out
    }
}

/// The smallest round number (1, 2, 2.5 or 5 × 10ⁿ, times 4 ticks) at or above `max`.
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s * 4.0 >= max * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude);
    step * 4.0
}

/// Seconds between labelled times: a round interval giving at most 8 labels.
fn tick_every(step: i64, slots: usize) -> i64 {
    let span = step * slots as i64;
    [
        60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    ]
    .into_iter()
    .filter(|e| e % step == 0)
    .find(|e| span / e <= 8)
    .unwrap_or(86_400.max(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_values() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 4.0);
        assert_eq!(nice_ceiling(7.0), 8.0);
        assert_eq!(nice_ceiling(9.0), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert!((nice_ceiling(0.013) - 0.02).abs() < 1e-12);
        assert_eq!(tick_every(60, 60), 600);
        assert_eq!(tick_every(300, 72), 3600);
        assert_eq!(tick_every(1800, 96), 21_600);
    }

    #[test]
    fn a_line_chart_draws_a_polyline_per_run_and_a_dot_for_a_lone_point() {
        let chart = Chart::new("t", "req/min", 1_700_000_040, 60, 5)
            .with(Series::new(
                "<a>",
                vec![Some(1.0), Some(2.0), None, Some(3.0), None],
                0,
            ))
            .with(Series::new("b", vec![None; 5], 1).dashed(Dash::Dashed));
        let svg = chart.render();
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert!(svg.contains("data-empty=\"false\""));
        assert!(svg.contains("stroke-dasharray") || !svg.contains("<polyline points=\"\""));
    }

    #[test]
    fn an_empty_chart_says_so_and_stacked_bars_draw_rects() {
        let empty = Chart::new("t", "u", 0, 60, 3).render();
        assert!(empty.contains("no data in this window"));
        assert!(empty.contains("data-empty=\"true\""));
        let bars = Chart::new("t", "USD/h", 0, 3600, 2)
            .bars()
            .with(Series::new("m1", vec![Some(1.0), Some(0.0)], 0))
            .with(Series::new("m2", vec![Some(2.0), None], 1))
            .render();
        assert_eq!(bars.matches("<rect").count(), 2);
    }

    #[test]
    fn a_marker_is_drawn_inside_the_window_only() {
        let mut chart =
            Chart::new("t", "u", 600, 60, 10).with(Series::new("a", vec![Some(1.0); 10], 0));
        chart.marker = Some((900, "this request".into()));
        assert!(chart.render().contains("class=\"marker\""));
        chart.marker = Some((100_000, "later".into()));
        assert!(!chart.render().contains("class=\"marker\""));
    }
}
