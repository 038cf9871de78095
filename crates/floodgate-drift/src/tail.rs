//! A smooth upper tail for each feature's null distribution, fitted to its bootstrap
//! statistics by moments:
//!
//! - PSI and χ² are non-negative and close to scaled χ² variables (weighted sums of squares):
//!   a gamma from the origin with their mean and variance (Satterthwaite's two-moment fit,
//!   exact for a scaled χ²).
//! - MMD² is centred near zero and may be negative: Pearson type III, a shifted gamma with the
//!   sample's mean, standard deviation and skewness (a normal where the skew is negligible),
//!   the classic moment approximation of MMD's null (Gretton et al., 2007). Three moments are
//!   not used for PSI and χ²: a skewness estimated from 500 windows is biased low for their
//!   heavy tails (χ²₁ has skewness 2.8), which put thresholds too low.
//!
//! The fit only turns statistics into comparable tail probabilities beyond the resolution of
//! the bootstrap (500 windows cannot tell a 0.1% tail from a 0.05% one); the family-wise
//! level itself is set on the bootstrap windows (see `calibrate`), so a loose fit moves the
//! budget between features, not the overall false-alarm rate.

use serde::{Deserialize, Serialize};

/// Which tail a [`TailFit`] uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Gamma from the origin, from mean and variance (non-negative statistics).
    #[default]
    Gamma,
    /// Shifted gamma from mean, variance and skewness (Pearson type III).
    Pearson3,
}

/// Moments of a feature's bootstrap null distribution and the tail they imply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TailFit {
    pub family: Family,
    pub mean: f64,
    pub sd: f64,
    pub skew: f64,
    /// Largest bootstrap statistic: the threshold of a feature whose null never varies.
    pub max: f64,
}

/// Below this skewness the shifted gamma is indistinguishable from a normal (shape > 400).
const NORMAL_SKEW: f64 = 0.1;

impl TailFit {
    pub fn from_sample(xs: &[f64], family: Family) -> Self {
        let n = xs.len() as f64;
        if xs.is_empty() {
            return Self {
                family,
                ..Self::default()
            };
        }
        let mean = xs.iter().sum::<f64>() / n;
        let m2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m3 = xs.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n;
        let sd = m2.sqrt();
        let skew = if sd > 0.0 { m3 / (sd * sd * sd) } else { 0.0 };
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            family,
            mean,
            sd,
            skew,
            max,
        }
    }

    /// No spread to fit (a feature that never varies), or no usable moments.
    fn degenerate(&self) -> bool {
        self.sd.is_nan() || self.sd <= 1e-12 * self.mean.abs().max(1e-12)
    }

    /// P(X > x) under the fitted null.
    pub fn upper_p(&self, x: f64) -> f64 {
        if self.degenerate() {
            return if x > self.max { 0.0 } else { 1.0 };
        }
        if self.family == Family::Pearson3 && self.skew < NORMAL_SKEW {
            return normal_upper((x - self.mean) / self.sd);
        }
        let (shape, scale, location) = self.gamma();
        if x <= location {
            return 1.0;
        }
        gamma_q(shape, (x - location) / scale)
    }

    /// The `x` with `upper_p(x) == p` (bisection; `p` in (0, 1)).
    pub fn upper_quantile(&self, p: f64) -> f64 {
        if self.degenerate() {
            return self.max;
        }
        let p = p.clamp(1e-300, 1.0 - 1e-12);
        // Bracket on the standardised scale, then bisect.
        let (mut lo, mut hi) = (self.mean - 40.0 * self.sd, self.mean + self.sd);
        let mut grow = self.sd;
        while self.upper_p(hi) > p && hi.is_finite() {
            grow *= 2.0;
            hi = self.mean + grow;
        }
        if !hi.is_finite() {
            return f64::MAX;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if self.upper_p(mid) > p {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-12 * hi.abs().max(1e-300) {
                break;
            }
        }
        hi
    }

    /// (shape, scale, location) of the fitted gamma.
    fn gamma(&self) -> (f64, f64, f64) {
        match self.family {
            // A non-positive mean cannot come from a non-negative statistic; fall back to a
            // very skewed tail rather than divide by it.
            Family::Gamma if self.mean > 0.0 => {
                let variance = self.sd * self.sd;
                (self.mean * self.mean / variance, variance / self.mean, 0.0)
            }
            _ => {
                let skew = self.skew.max(NORMAL_SKEW);
                let shape = 4.0 / (skew * skew);
                let scale = self.sd * skew / 2.0;
                (shape, scale, self.mean - shape * scale)
            }
        }
    }
}

/// P(Z > z) for a standard normal.
pub fn normal_upper(z: f64) -> f64 {
    let tail = 0.5 * gamma_q(0.5, 0.5 * z * z);
    if z >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + 7.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a): the series for P below
/// `a + 1`, Lentz's continued fraction above (Numerical Recipes §6.2).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if !x.is_finite() {
        return 0.0;
    }
    let log_prefix = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..100_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * log_prefix.exp()).clamp(0.0, 1.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (log_prefix.exp() * h).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_q_matches_known_values() {
        // Q(1, x) = e^-x; χ²_10 upper 5% point 18.307; normal upper tail at 1.96 and 3.09.
        assert!((gamma_q(1.0, 2.0) - (-2.0f64).exp()).abs() < 1e-12);
        assert!((gamma_q(5.0, 18.307 / 2.0) - 0.05).abs() < 1e-4);
        assert!((normal_upper(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_upper(3.09) - 0.001).abs() < 2e-5);
        assert!((normal_upper(-1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-10);
    }

    #[test]
    fn quantile_inverts_the_tail() {
        let pearson = TailFit {
            family: Family::Pearson3,
            mean: 10.0,
            sd: 4.47,
            skew: 0.894,
            max: 30.0,
        };
        let normal = TailFit {
            family: Family::Pearson3,
            mean: 0.0,
            sd: 1.0,
            skew: 0.0,
            max: 4.0,
        };
        let gamma = TailFit {
            family: Family::Gamma,
            mean: 1.0,
            sd: 2f64.sqrt(),
            skew: 0.0,
            max: 4.0,
        };
        for fit in [pearson, normal, gamma] {
            for p in [0.05, 1e-3, 1e-6] {
                let x = fit.upper_quantile(p);
                assert!(
                    (fit.upper_p(x) / p - 1.0).abs() < 1e-6,
                    "{fit:?} p={p} x={x}"
                );
            }
        }
        // χ²₁₀ (mean 10, sd √20, skew √0.8): its 0.1% point is 29.59, from either family.
        let chi = TailFit {
            family: Family::Pearson3,
            mean: 10.0,
            sd: 20f64.sqrt(),
            skew: 0.8f64.sqrt(),
            max: 0.0,
        };
        assert!((chi.upper_quantile(1e-3) - 29.59).abs() < 0.01);
        let chi = TailFit {
            family: Family::Gamma,
            ..chi
        };
        assert!((chi.upper_quantile(1e-3) - 29.59).abs() < 0.01);
        // χ²₁ (mean 1, sd √2): 10.83 at 0.1%, from its first two moments alone.
        let chi1 = TailFit {
            family: Family::Gamma,
            mean: 1.0,
            sd: 2f64.sqrt(),
            skew: 0.0,
            max: 0.0,
        };
        assert!((chi1.upper_quantile(1e-3) - 10.83).abs() < 0.01);
    }

    #[test]
    fn a_constant_null_alarms_only_above_its_value() {
        let fit = TailFit::from_sample(&[0.25; 50], Family::Gamma);
        assert_eq!(fit.upper_quantile(1e-3), 0.25);
        assert_eq!(fit.upper_p(0.25), 1.0);
        assert_eq!(fit.upper_p(0.26), 0.0);
    }
}
