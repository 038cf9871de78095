//! The cascade's cost–quality chart (`floodgate cascade calibrate --chart`).

use std::path::Path;

use super::calibrate::Point;

/// The cascade's cost–quality chart: the frontier as a line, each tier alone, the two
/// oracles, and the chosen point.
pub fn draw_frontier(
    path: &Path,
    title: &str,
    frontier: &[Point],
    tiers: &[(f64, f64); 2],
    oracles: &[(&str, Point)],
    chosen: Option<&Point>,
) -> Result<(), String> {
    use plotters::prelude::*;
    crate::chart::register_chart_font()?;
    let scale = 1e6; // micro-dollars per request read better on an axis
    let mut xs: Vec<f64> = frontier.iter().map(|p| p.cost * scale).collect();
    xs.extend(tiers.iter().map(|t| t.1 * scale));
    xs.extend(oracles.iter().map(|(_, p)| p.cost * scale));
    let x_hi = xs.iter().copied().fold(0.0, f64::max) * 1.1 + 1e-9;
    let mut ys: Vec<f64> = frontier.iter().map(|p| p.quality).collect();
    ys.extend(tiers.iter().map(|t| t.0));
    ys.extend(oracles.iter().map(|(_, p)| p.quality));
    let y_hi = (ys.iter().copied().fold(0.0, f64::max) * 130.0).clamp(1.0, 100.0);
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_hi, 0.0..y_hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("cost per request (micro-USD)")
        .y_desc("quality (% right)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            frontier.iter().map(|p| (p.cost * scale, 100.0 * p.quality)),
            crate::chart::COLORS[0].stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    let mut labelled: Vec<(String, f64, f64, RGBColor)> = vec![
        (
            "small alone".into(),
            tiers[0].1,
            tiers[0].0,
            crate::chart::COLORS[1],
        ),
        (
            "large alone".into(),
            tiers[1].1,
            tiers[1].0,
            crate::chart::COLORS[2],
        ),
    ];
    for (i, (name, p)) in oracles.iter().enumerate() {
        labelled.push((
            name.to_string(),
            p.cost,
            p.quality,
            crate::chart::COLORS[3 + i % 2],
        ));
    }
    if let Some(p) = chosen {
        labelled.push(("chosen".into(), p.cost, p.quality, crate::chart::COLORS[5]));
    }
    chart
        .draw_series(labelled.iter().map(|(name, c, q, color)| {
            EmptyElement::at((c * scale, 100.0 * q))
                + Circle::new((0, 0), 6, color.filled())
                + Text::new(name.clone(), (8, -16), ("sans-serif", 14))
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
