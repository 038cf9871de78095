//! The PNG plot: output tokens/s and TTFT p50 against concurrency, side by side.
//!
//! Text is rendered with plotters' `ab_glyph` backend from a TTF file read at run time (no
//! fontconfig or freetype). Without a font the plot is still drawn, with lines and grid but
//! no text; a missing font never fails a run.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::BenchError;
use crate::report::Report;

/// Environment variable naming a TTF file to use instead of the system search.
pub const FONT_ENV: &str = "FLOODGATE_BENCH_FONT";

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu (fonts-dejavu-core)
    "/usr/share/fonts/TTF/DejaVuSans.ttf",             // Arch
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", // Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",          // Alpine
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Finds a font and registers it with plotters as `sans-serif`, once per process. Returns
/// whether text can be drawn.
pub fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = std::env::var(FONT_ENV)
            .ok()
            .into_iter()
            .chain(FONT_PATHS.iter().map(|p| p.to_string()));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process; this runs once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
        false
    })
}

/// Draws the plot to `path` (PNG). `with_text: false` draws lines and grid only.
pub fn draw(report: &Report, path: &Path, with_text: bool) -> Result<(), BenchError> {
    draw_inner(report, path, with_text).map_err(|e| BenchError::Plot(e.to_string()))
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw_inner(report: &Report, path: &Path, with_text: bool) -> DrawResult {
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let levels: Vec<usize> = report.levels.iter().map(|l| l.concurrency).collect();
    let tok_s: Vec<f64> = report
        .levels
        .iter()
        .map(|l| l.output_tokens_per_s)
        .collect();
    let ttft: Vec<Option<f64>> = report
        .levels
        .iter()
        .map(|l| l.ttft_ms.map(|s| s.p50))
        .collect();
    panel(
        &left,
        &format!("{}: output tokens/s", report.label),
        "tokens/s",
        &levels,
        &tok_s.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
        &BLUE,
        with_text,
    )?;
    panel(
        &right,
        &format!("{}: TTFT p50", report.label),
        "ms",
        &levels,
        &ttft,
        &RED,
        with_text,
    )?;
    root.present()?;
    Ok(())
}

/// One chart; the x axis is categorical (levels evenly spaced, labelled with their concurrency).
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    levels: &[usize],
    values: &[Option<f64>],
    color: &RGBColor,
    with_text: bool,
) -> DrawResult {
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let y_max = if max > 0.0 { max * 1.15 } else { 1.0 };
    let n = levels.len().max(1);
    let mut builder = ChartBuilder::on(area);
    builder.margin(15);
    if with_text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(80);
    }
    // A segmented `0..k` range has k + 1 slots (one per level for k = n - 1); plotters
    // panics on an empty range, so a single level gets a spare slot.
    let x_range = (0..(n - 1).max(1)).into_segmented();
    let mut chart = builder.build_cartesian_2d(x_range, 0.0..y_max)?;
    let x_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            levels.get(*i).map(|c| c.to_string()).unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    };
    let y_label = |v: &f64| {
        if y_max >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    if with_text {
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc("concurrency")
            .y_desc(y_desc)
            .label_style(("sans-serif", 15))
            .draw()?;
    } else {
        // Every mesh option draws text (and zero labels makes plotters loop), so without a
        // font the chart is only a frame and the series.
        chart.plotting_area().draw(&Rectangle::new(
            [(SegmentValue::Exact(0), 0.0), (SegmentValue::Last, y_max)],
            BLACK.stroke_width(1),
        ))?;
    }
    let points: Vec<(SegmentValue<usize>, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (SegmentValue::CenterOf(i), v)))
        .collect();
    chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
    chart.draw_series(
        points
            .into_iter()
            .map(|p| Circle::new(p, 4, color.filled())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LevelRun;
    use crate::report::LevelReport;
    use crate::request::{Api, Sample};

    fn report(levels: &[usize]) -> Report {
        let sample = Sample {
            error: None,
            ttft_s: Some(0.2),
            e2e_s: 1.0,
            completion_tokens: 10,
            tokens_from_usage: true,
            text_chunks: 10,
            retried: false,
            itl_s: Some(0.05),
            chunk_gaps_s: vec![0.05; 9],
        };
        Report {
            label: "plot-test".into(),
            url: "http://h".into(),
            endpoint: "http://h/v1/chat/completions".into(),
            model: "m".into(),
            api: Api::Chat,
            max_tokens: 10,
            temperature: 0.0,
            ignore_eos: true,
            warmup: 0,
            prompts: "built-in".into(),
            prompt_count: 16,
            started_unix_s: 0,
            levels: levels
                .iter()
                .map(|&c| {
                    LevelReport::from_run(LevelRun {
                        concurrency: c,
                        wall_s: 1.0,
                        samples: vec![sample.clone(); c],
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn draws_any_number_of_levels_with_and_without_text() {
        let dir = tempfile::tempdir().unwrap();
        let text = font_available();
        for levels in [&[1][..], &[1, 4], &[1, 4, 16, 64]] {
            for with_text in [false, text] {
                let path = dir.path().join(format!("{}-{with_text}.png", levels.len()));
                draw(&report(levels), &path, with_text).unwrap();
                let png = std::fs::read(&path).unwrap();
                assert!(png.starts_with(b"\x89PNG"), "{levels:?}");
            }
        }
    }
}
