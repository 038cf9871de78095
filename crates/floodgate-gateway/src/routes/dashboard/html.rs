//! HTML pieces shared by the dashboard's pages: the one escaping function every string
//! goes through, the page shell (inline CSS, no script, no external asset) and number
//! formats.

use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values. Every string the
/// dashboard did not write itself (names, ids, reasons, notes, errors) goes through it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1d2330; color: #fff; flex-wrap: wrap; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; }
header a, header button { color: #fff; }
header nav { display: flex; gap: 8px; }
header nav a { padding: 2px 8px; border: 1px solid #56607a; border-radius: 4px; text-decoration: none; }
header nav a.on { background: #3d6fd6; border-color: #3d6fd6; }
header form { margin-left: auto; }
header button { background: none; border: 1px solid #56607a; border-radius: 4px; padding: 2px 10px; cursor: pointer; font: inherit; }
main { padding: 16px 20px 40px; max-width: 1500px; margin: 0 auto; }
.muted { color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; margin-bottom: 16px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.tile b { display: block; font-size: 20px; font-weight: 600; }
.tile span { color: var(--muted); font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 14px; }
section.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px 12px; }
section.panel h2 { font-size: 14px; margin: 0 0 6px; font-weight: 600; }
section.wide { grid-column: 1 / -1; }
figure.chart { margin: 0; }
figure.chart svg { width: 100%; height: auto; display: block; }
ul.legend { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); }
ul.legend i { display: inline-block; width: 14px; height: 3px; margin-right: 5px; vertical-align: middle; }
ul.legend i.dashed { background-image: linear-gradient(90deg, transparent 50%, #fff 50%) !important; background-size: 6px 3px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, th.l, td.l { text-align: left; }
th { font-weight: 600; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.bad { color: #b3261e; } .good { color: #1e7d34; }
form.login { max-width: 380px; margin: 12vh auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 22px 24px; }
form.login h1 { font-size: 18px; margin: 0 0 12px; }
form.login input { width: 100%; padding: 7px 9px; font: inherit; border: 1px solid var(--line); border-radius: 4px; margin: 4px 0 12px; }
form.login button { padding: 7px 16px; font: inherit; background: #3d6fd6; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
p.error { color: #b3261e; margin: 0 0 10px; }
"#;

/// A whole page: `head_extra` goes into `<head>` (the refresh tag), `header` is the top
/// bar's content (already HTML), `body` the main content (already HTML).
pub fn page(title: &str, head_extra: &str, header: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"same-origin\">{head_extra}\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    if !header.is_empty() {
        let _ = write!(out, "<header>{header}</header>");
    }
    let _ = writeln!(out, "<main>{body}</main></body></html>");
    out
}

/// A count or rate: `1.2k`, `37`, `0.25`.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "–".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 || (v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        significant(v, 2)
    }
}

/// US dollars, with enough digits for small amounts: `$12.40`, `$0.00031`.
pub fn usd(v: f64) -> String {
    if v == 0.0 {
        "$0".into()
    } else if v.abs() >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${}", significant(v, 2))
    }
}

/// Milliseconds as `840 ms` or `2.31 s`.
pub fn millis(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(ms) if ms >= 1000.0 => format!("{:.2} s", ms / 1000.0),
        Some(ms) if ms >= 10.0 => format!("{ms:.0} ms"),
        Some(ms) => format!("{ms:.1} ms"),
    }
}

/// A share (0–1) as a percentage.
pub fn percent(v: f64) -> String {
    if v == 0.0 {
        "0%".into()
    } else if v < 0.001 {
        "<0.1%".into()
    } else {
        format!("{:.1}%", v * 100.0)
    }
}

/// `v` with `digits` significant digits, without an exponent.
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 9) as usize;
    format!("{v:.decimals$}")
}

/// `HH:MM` (UTC) of a unix time.
pub fn clock(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a unix time.
pub fn timestamp(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        crate::records::utc_day(secs),
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_in_text_and_attributes() {
        let cases = [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("\" onmouseover=\"x", "&quot; onmouseover=&quot;x"),
            ("it's", "it&#39;s"),
            ("&amp;", "&amp;amp;"),
            ("ünïcødé ✓", "ünïcødé ✓"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input}");
        }
    }

    #[test]
    fn numbers_read_well_at_every_scale() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.50");
        assert_eq!(number(42.34), "42.3");
        assert_eq!(number(12_345.0), "12.3k");
        assert_eq!(number(0.00123), "0.0012");
        assert_eq!(usd(0.000_314), "$0.00031");
        assert_eq!(usd(12.4), "$12.40");
        assert_eq!(millis(Some(840.0)), "840 ms");
        assert_eq!(millis(Some(2310.0)), "2.31 s");
        assert_eq!(millis(None), "–");
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(clock(1_700_000_000), "22:13");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
