//! Order statistics for latency samples.
//!
//! Percentiles interpolate linearly between the two nearest ranks (NumPy's default), so p50 of
//! an even-sized sample is the mean of the middle two and p99 of a small sample lies between
//! its two largest values rather than jumping to the maximum.

use serde::Serialize;

/// The `p`-th percentile (0–100) of `values`; `None` for an empty sample. NaNs are ignored.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    percentile_sorted(&sorted, p)
}

fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (p.clamp(0.0, 100.0) / 100.0) * last as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Summary of one latency sample, in the sample's unit (milliseconds in reports).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let p = |q| percentile_sorted(&sorted, q);
        Some(Self {
            count: sorted.len(),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            min: *sorted.first()?,
            p50: p(50.0)?,
            p90: p(90.0)?,
            p99: p(99.0)?,
            max: *sorted.last()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_cases() {
        let cases: &[(&[f64], f64, Option<f64>)] = &[
            (&[], 50.0, None),
            (&[7.0], 0.0, Some(7.0)),
            (&[7.0], 50.0, Some(7.0)),
            (&[7.0], 99.0, Some(7.0)),
            (&[1.0, 2.0], 50.0, Some(1.5)),
            (&[3.0, 1.0, 2.0], 50.0, Some(2.0)),
            (&[1.0, 2.0, 3.0, 4.0], 50.0, Some(2.5)),
            (&[1.0, 2.0, 3.0, 4.0], 0.0, Some(1.0)),
            (&[1.0, 2.0, 3.0, 4.0], 100.0, Some(4.0)),
            (&[1.0, 2.0, 3.0, 4.0], 150.0, Some(4.0)),
            (&[1.0, 2.0, 3.0, 4.0], -5.0, Some(1.0)),
            // rank 0.99 * 9 = 8.91 -> 9 + 0.91 * (10 - 9)
            (
                &[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
                99.0,
                Some(9.91),
            ),
            (&[1.0, f64::NAN, 3.0], 50.0, Some(2.0)),
        ];
        for (values, p, want) in cases {
            let got = percentile(values, *p);
            match (got, want) {
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() < 1e-9, "p{p} of {values:?}: {g} != {w}")
                }
                (g, w) => assert_eq!(g, *w, "p{p} of {values:?}"),
            }
        }
    }

    #[test]
    fn percentile_of_1_to_100() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 50.0).unwrap_or(0.0) - 50.5).abs() < 1e-9);
        assert!((percentile(&v, 99.0).unwrap_or(0.0) - 99.01).abs() < 1e-9);
    }

    #[test]
    fn summary() {
        assert_eq!(Summary::of(&[]), None);
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 4.0);
        assert!((s.mean - 2.5).abs() < 1e-9);
        assert!((s.p50 - 2.5).abs() < 1e-9);
    }
}
