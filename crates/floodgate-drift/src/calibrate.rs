//! Family-wise thresholds from bootstrap windows (single-step min-P, Westfall–Young style).
//!
//! Input: for each feature, its statistic on each of W no-drift windows (rows of a split's
//! held-out half against its kept half). Each feature's statistics get a smooth tail ([`TailFit`]);
//! a window's min-P is the smallest tail probability over its features. The common level p*
//! is the (k+1)-th smallest min-P, with k = ⌊α·W/2⌋ windows allowed to alarm, and each
//! feature's threshold is its fitted quantile at p*. Because p* is read off the joint
//! behaviour of all features on the same windows, correlated features (prompt_chars and
//! prompt_tokens) are not double-counted as Bonferroni would; because the fit extends each
//! tail beyond the largest bootstrap value, p* can sit below 1/W.
//!
//! Why k = ⌊α·W/2⌋: a fresh no-drift window exchangeable with the bootstrap windows alarms
//! with probability about (k+1)/(W+1) — 0.6% for W = 500, α = 1% — and the 1% tail of 500
//! windows is estimated from about five of them, so the target is halved to keep the realised
//! rate under α despite that noise.

use crate::tail::{Family, TailFit};

pub(crate) struct Calibrated {
    pub fits: Vec<TailFit>,
    pub thresholds: Vec<f64>,
    pub p_star: f64,
    pub allowed_alarms: usize,
}

pub(crate) fn allowed_alarms(windows: usize, alpha: f64) -> usize {
    (alpha * windows as f64 / 2.0).floor() as usize
}

/// `stats[f][b]`: feature `f`'s statistic on bootstrap window `b`; `families[f]`: the tail
/// to fit to it.
pub(crate) fn calibrate(stats: &[Vec<f64>], families: &[Family], alpha: f64) -> Calibrated {
    let fits: Vec<TailFit> = stats
        .iter()
        .zip(
            families
                .iter()
                .copied()
                .chain(std::iter::repeat(Family::Pearson3)),
        )
        .map(|(s, family)| TailFit::from_sample(s, family))
        .collect();
    let windows = stats.iter().map(Vec::len).max().unwrap_or(0);
    let mut min_p: Vec<f64> = (0..windows)
        .map(|b| {
            stats
                .iter()
                .zip(&fits)
                .filter_map(|(s, fit)| s.get(b).map(|&x| fit.upper_p(x)))
                .fold(1.0, f64::min)
        })
        .collect();
    min_p.sort_by(f64::total_cmp);
    let allowed = allowed_alarms(windows, alpha);
    // Never looser than α per feature; never zero (a zero would put thresholds at infinity).
    let p_star = min_p
        .get(allowed)
        .copied()
        .unwrap_or(alpha)
        .min(alpha)
        .max(1e-300);
    let thresholds = fits
        .iter()
        .map(|fit| {
            let t = fit.upper_quantile(p_star);
            if t.is_finite() {
                t
            } else {
                f64::MAX
            }
        })
        .collect();
    Calibrated {
        fits,
        thresholds,
        p_star,
        allowed_alarms: allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Independent χ²₅ features: the thresholds must hold the family-wise rate on fresh draws.
    #[test]
    fn family_wise_rate_holds_on_fresh_draws() {
        let mut rng = SplitMix64::new(11);
        let chi5 = |rng: &mut SplitMix64| (0..5).map(|_| rng.gaussian().powi(2)).sum::<f64>();
        let features = 12;
        let stats: Vec<Vec<f64>> = (0..features)
            .map(|_| (0..500).map(|_| chi5(&mut rng)).collect())
            .collect();
        let cal = calibrate(&stats, &[Family::Gamma; 12], 0.01);
        assert_eq!(cal.allowed_alarms, 2);
        let fresh = 20_000;
        let alarms = (0..fresh)
            .filter(|_| cal.thresholds.iter().any(|&t| chi5(&mut rng) > t))
            .count();
        let rate = alarms as f64 / fresh as f64;
        assert!(rate < 0.01, "family-wise false-alarm rate {rate}");
        assert!(
            rate > 0.0005,
            "thresholds far too loose to detect anything: {rate}"
        );
    }

    #[test]
    fn correlated_features_are_not_double_counted() {
        // Twelve copies of one statistic: the family behaves like one feature, so p* is near
        // the one-feature level (≈ 3/500), far above Bonferroni's α/12.
        let mut rng = SplitMix64::new(5);
        let one: Vec<f64> = (0..500).map(|_| rng.gaussian()).collect();
        let stats = vec![one; 12];
        let cal = calibrate(&stats, &[Family::Pearson3; 12], 0.01);
        assert!(cal.p_star > 0.003, "{}", cal.p_star);
    }
}
