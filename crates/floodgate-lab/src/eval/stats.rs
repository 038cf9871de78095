//! The statistics of an evaluation: rates with 95% Wilson score intervals, the
//! difference of two rates with Newcombe's hybrid score interval (the regression test),
//! McNemar's exact test for paired rows, and a mean with its normal-approximation
//! interval.
//!
//! Why these: Wilson's interval stays inside [0, 1] and keeps close to its nominal
//! coverage at the small counts and extreme rates an evaluation sees (3 right out of
//! 40), where the textbook p ± 1.96·√(p(1−p)/n) interval collapses to a point at 0 %.
//! Newcombe's interval for a difference (method 10 of Newcombe 1998) is built from the
//! two Wilson intervals, so the regression verdict agrees with the per-run intervals
//! that are printed. It treats the two runs as independent samples, which is
//! conservative when both answered the same rows; McNemar's exact test, which uses the
//! pairing, is reported beside it.

use serde::{Deserialize, Serialize};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A rate `successes / n` with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub successes: usize,
    pub n: usize,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

impl Rate {
    /// The rate of `successes` in `n` trials; with `n == 0` the rate is 0 and the
    /// interval is all of [0, 1] (nothing is known).
    pub fn new(successes: usize, n: usize) -> Self {
        let (low, high) = wilson(successes, n, Z95);
        let rate = if n == 0 {
            0.0
        } else {
            successes as f64 / n as f64
        };
        Self {
            successes,
            n,
            rate,
            low,
            high,
        }
    }

    /// "20.8% [14.1, 29.5]" (percentages, one decimal); "-" with no trials.
    pub fn percent(&self) -> String {
        if self.n == 0 {
            return "-".into();
        }
        format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * self.rate,
            100.0 * self.low,
            100.0 * self.high
        )
    }
}

/// Wilson's score interval for `successes` out of `n` at the normal quantile `z`.
pub fn wilson(successes: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n_f;
    let center = (p + z2 / (2.0 * n_f)) / denominator;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denominator;
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// The difference `new − old` of two rates with its 95% interval (Newcombe's hybrid
/// score method, from the two Wilson intervals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub difference: f64,
    pub low: f64,
    pub high: f64,
}

pub fn newcombe_difference(new: &Rate, old: &Rate) -> Difference {
    let d = new.rate - old.rate;
    let low = d - ((new.rate - new.low).powi(2) + (old.high - old.rate).powi(2)).sqrt();
    let high = d + ((new.high - new.rate).powi(2) + (old.rate - old.low).powi(2)).sqrt();
    Difference {
        difference: d,
        low: low.max(-1.0),
        high: high.min(1.0),
    }
}

/// McNemar's exact (binomial) two-sided p-value for paired binary outcomes: `b` rows
/// right before and wrong now, `c` rows wrong before and right now. Rows where both
/// agree carry no information about a difference.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space so that large n does not
    // overflow.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// A mean with its 95% interval (normal approximation: mean ± z·s/√n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    pub n: usize,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

pub fn mean_interval(values: &[f64]) -> Option<Mean> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let half = if n > 1 {
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Z95 * (var / n as f64).sqrt()
    } else {
        0.0
    };
    Some(Mean {
        n,
        mean,
        low: mean - half,
        high: mean + half,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    /// 3 of 10 by hand: center (0.3 + z²/20) / (1 + z²/10) = 0.49207 / 1.38415 = 0.35551,
    /// half 1.95996·√(0.021 + z²/400) / 1.38415 = 0.24771 → [0.1078, 0.6032].
    #[test]
    fn wilson_matches_the_hand_computed_interval() {
        let r = Rate::new(3, 10);
        close(r.rate, 0.3, 1e-12);
        close(r.low, 0.1078, 1e-4);
        close(r.high, 0.6032, 1e-4);
        assert_eq!(r.percent(), "30.0% [10.8, 60.3]");
    }

    /// 0 of 20: the interval starts at 0 and reaches z²/(n + z²) = 3.8415/23.8415 = 0.1611.
    #[test]
    fn wilson_at_the_edges() {
        let r = Rate::new(0, 20);
        close(r.low, 0.0, 1e-12);
        close(r.high, 0.1611, 1e-4);
        let r = Rate::new(20, 20);
        close(r.low, 1.0 - 0.1611, 1e-4);
        close(r.high, 1.0, 1e-12);
        let r = Rate::new(0, 0);
        assert_eq!((r.rate, r.low, r.high), (0.0, 0.0, 1.0));
        assert_eq!(r.percent(), "-");
    }

    /// Newcombe (1998), table II, example (a): 56/70 − 48/80 = 0.2000 with interval
    /// [0.0524, 0.3339] by method 10.
    #[test]
    fn newcombe_matches_the_published_example() {
        let d = newcombe_difference(&Rate::new(56, 70), &Rate::new(48, 80));
        close(d.difference, 0.2, 1e-12);
        close(d.low, 0.0524, 1e-4);
        close(d.high, 0.3339, 1e-4);
        // Newcombe's example (d): 10/10 − 0/10 = 1 with interval [0.6075, 1].
        let d = newcombe_difference(&Rate::new(10, 10), &Rate::new(0, 10));
        close(d.low, 0.6075, 1e-4);
        close(d.high, 1.0, 1e-12);
    }

    /// b = 2, c = 8: 2·(C(10,0) + C(10,1) + C(10,2)) / 2¹⁰ = 2·56/1024 = 0.109375.
    #[test]
    fn mcnemar_exact_by_hand() {
        close(mcnemar_exact(2, 8), 0.109_375, 1e-12);
        close(mcnemar_exact(8, 2), 0.109_375, 1e-12);
        // b = 0, c = 6: 2/64 = 0.03125.
        close(mcnemar_exact(0, 6), 0.031_25, 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // Large counts stay finite.
        let p = mcnemar_exact(400, 600);
        assert!(p > 0.0 && p < 1e-9, "{p}");
    }

    /// 1, 2, 3, 4, 5: mean 3, s² = 2.5, half = 1.95996·√(2.5/5) = 1.3859.
    #[test]
    fn mean_interval_by_hand() {
        let m = mean_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        close(m.mean, 3.0, 1e-12);
        close(m.low, 3.0 - 1.3859, 1e-4);
        close(m.high, 3.0 + 1.3859, 1e-4);
        assert!(mean_interval(&[]).is_none());
    }
}
