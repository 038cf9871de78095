//! What the lab's charts share: the font their text is drawn with, and the palette.

use plotters::style::RGBColor;

/// The font every chart draws its text with (Debian: `fonts-dejavu-core`).
pub const CHART_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub const COLORS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 23, 23),
];

/// Registers [`CHART_FONT`] as the charts' `sans-serif`.
pub fn register_chart_font() -> Result<(), String> {
    use plotters::style::FontStyle;
    let font = std::fs::read(CHART_FONT)
        .map_err(|e| format!("{CHART_FONT}: {e} (install fonts-dejavu-core)"))?;
    // plotters keeps registered fonts for the life of the process.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| format!("{CHART_FONT} is not a usable font"))
}
