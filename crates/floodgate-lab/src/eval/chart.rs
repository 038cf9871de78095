//! `floodgate eval report --chart`: accuracy over time per target, with each run's 95%
//! interval as an error bar (PNG).

use std::collections::BTreeMap;
use std::path::Path;

use super::record::rfc3339;
use super::stats::Rate;

pub fn draw_history(
    path: &Path,
    series: &BTreeMap<String, Vec<(u64, Rate)>>,
) -> Result<(), String> {
    use plotters::prelude::*;
    if path
        .extension()
        .is_some_and(|e| !e.eq_ignore_ascii_case("png"))
    {
        return Err(format!(
            "{}: the chart is written as PNG (.png)",
            path.display()
        ));
    }
    let times: Vec<u64> = series.values().flatten().map(|p| p.0).collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return Err("no runs to chart".into());
    };
    crate::chart::register_chart_font()?;
    // Hours since the first run; a margin so single runs are not on the frame.
    let x = |t: u64| (t.saturating_sub(*first)) as f64 / 3600.0;
    let span = x(*last).max(1.0 / 60.0);
    let (x_lo, x_hi) = (-0.05 * span, 1.05 * span);
    let y_hi = series
        .values()
        .flatten()
        .map(|p| p.1.high)
        .fold(0.0, f64::max);
    let y_hi = (y_hi * 115.0).clamp(5.0, 100.0);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let first = *first;
    let label = move |h: &f64| {
        let t = first + (h.max(0.0) * 3600.0) as u64;
        rfc3339(t).get(5..16).unwrap_or_default().replace('T', " ")
    };
    let mut chart = ChartBuilder::on(&root)
        .caption("accuracy over time (95% intervals)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("run time (UTC)")
        .y_desc("accuracy (%)")
        .x_labels(6)
        .x_label_formatter(&label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = crate::chart::COLORS[i % crate::chart::COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(t, r)| (x(*t), 100.0 * r.rate)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(name.clone())
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 20, ly)], color.stroke_width(2))
            });
        // Error bars as paths: plotters' `ErrorBar` needs a feature the lab does not enable.
        let cap = span / 150.0;
        chart
            .draw_series(points.iter().flat_map(|(t, r)| {
                let (cx, lo, hi) = (x(*t), 100.0 * r.low, 100.0 * r.high);
                [
                    PathElement::new(vec![(cx, lo), (cx, hi)], color.stroke_width(1)),
                    PathElement::new(vec![(cx - cap, lo), (cx + cap, lo)], color.stroke_width(1)),
                    PathElement::new(vec![(cx - cap, hi), (cx + cap, hi)], color.stroke_width(1)),
                ]
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(t, r)| Circle::new((x(*t), 100.0 * r.rate), 4, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
