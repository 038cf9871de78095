//! The per-feature statistics: PSI over quantile bins for numeric features, Pearson's χ² for
//! categorical ones, total variation as their effect size, and Wasserstein-1 (from quantile
//! functions) as a readable "how far" in the feature's own units.

/// Pseudo-count added to every bin or category before taking proportions, so an empty bin
/// gives a finite PSI and an unseen category a finite χ² (Jeffreys' ½).
pub const PSEUDO_COUNT: f64 = 0.5;

/// Proportions with [`PSEUDO_COUNT`] added to every cell.
pub fn smoothed(counts: &[u64]) -> Vec<f64> {
    let total = counts.iter().sum::<u64>() as f64 + PSEUDO_COUNT * counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 + PSEUDO_COUNT) / total)
        .collect()
}

/// Reference proportions stored as plain shares of `n` rows, smoothed as if they were counts.
pub fn smoothed_shares(shares: &[f64], n: u64) -> Vec<f64> {
    let total = n as f64 + PSEUDO_COUNT * shares.len() as f64;
    shares
        .iter()
        .map(|&p| (p * n as f64 + PSEUDO_COUNT) / total)
        .collect()
}

/// Population stability index Σ (w − r) ln(w / r) of window proportions `w` against reference
/// proportions `r` (both smoothed, so strictly positive).
pub fn psi(reference: &[f64], window: &[f64]) -> f64 {
    reference
        .iter()
        .zip(window)
        .map(|(&r, &w)| (w - r) * (w / r).ln())
        .sum()
}

/// Smallest expected count a χ² cell divides by: below about 5, Pearson's χ² is dominated by
/// how well the reference happened to estimate a rare category (2 rows in 2,000 against a true
/// rate three times that), which no calibration on the reference itself can see.
pub const MIN_EXPECTED: f64 = 5.0;

/// Pearson's χ² = Σ (o − e)² / max(e, `min_expected`) of observed counts against `e = n · p`
/// for proportions `p` (plain Pearson with `min_expected` 0).
pub fn chi2(observed: &[u64], expected_shares: &[f64], min_expected: f64) -> f64 {
    let n = observed.iter().sum::<u64>() as f64;
    observed
        .iter()
        .zip(expected_shares)
        .map(|(&o, &p)| {
            let e = n * p;
            let denominator = e.max(min_expected);
            if denominator > 0.0 {
                (o as f64 - e).powi(2) / denominator
            } else {
                0.0
            }
        })
        .sum()
}

/// Total variation distance ½ Σ |p − q|.
pub fn total_variation(p: &[f64], q: &[f64]) -> f64 {
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

/// Plain shares of counts (all zero for no counts).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let n = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

/// Quantile at level `q` of sorted values, linear between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (
        sorted.get(lo).copied().unwrap_or(0.0),
        sorted.get(hi).copied().unwrap_or(0.0),
    );
    a + (b - a) * (pos - lo as f64)
}

/// Number of points of the stored quantile function (levels 0, 0.01, …, 1).
pub const QUANTILE_POINTS: usize = 101;

/// The quantile function of sorted values at [`QUANTILE_POINTS`] equally spaced levels.
pub fn quantile_function(sorted: &[f64]) -> Vec<f64> {
    let last = (QUANTILE_POINTS - 1) as f64;
    (0..QUANTILE_POINTS)
        .map(|k| quantile(sorted, k as f64 / last))
        .collect()
}

/// Wasserstein-1 distance ∫ |F⁻¹(u) − G⁻¹(u)| du from two quantile functions sampled at the
/// same equally spaced levels (trapezoid rule).
pub fn wasserstein1(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
    if d.len() < 2 {
        return d.first().copied().unwrap_or(0.0);
    }
    let segments = (d.len() - 1) as f64;
    d.windows(2).map(|w| (w[0] + w[1]) / 2.0).sum::<f64>() / segments
}

/// Interior bin edges at the quantiles `k / bins` of sorted values, duplicates removed (a
/// discrete feature such as `turns` gets one bin per value it takes). Bin `i` is
/// `(edge[i-1], edge[i]]`; values above the last edge fall in the last bin.
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..bins)
        .map(|k| quantile_low(sorted, k as f64 / bins as f64))
        .collect();
    edges.dedup();
    edges
}

/// Lower empirical quantile (an observed value, so ties stay on one side of an edge).
fn quantile_low(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied().unwrap_or(0.0)
}

/// Index of the bin holding `v` for interior `edges`.
pub fn bin_of(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e < v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_of_identical_distributions_is_zero() {
        let p = smoothed(&[10, 20, 30, 40]);
        assert!(psi(&p, &p).abs() < 1e-15);
        let q = smoothed(&[40, 30, 20, 10]);
        assert!(psi(&p, &q) > 0.3);
        // Symmetric: (w − r) ln(w / r) does not care which side is the reference.
        assert!((psi(&p, &q) - psi(&q, &p)).abs() < 1e-12);
    }

    #[test]
    fn psi_by_hand() {
        // Two bins: r = (0.5, 0.5), w = (0.8, 0.2): 0.3 ln 1.6 + (−0.3) ln 0.4 = 0.4159.
        let got = psi(&[0.5, 0.5], &[0.8, 0.2]);
        assert!((got - (0.3 * 1.6f64.ln() - 0.3 * 0.4f64.ln())).abs() < 1e-12);
        assert!((got - 0.415_888).abs() < 1e-5);
    }

    #[test]
    fn chi2_by_hand() {
        // n = 20 against (0.5, 0.3, 0.2): expected (10, 6, 4); observed (10, 10, 0):
        // 0 + 16/6 + 16/4 = 6.6667.
        let got = chi2(&[10, 10, 0], &[0.5, 0.3, 0.2], 0.0);
        assert!((got - 20.0 / 3.0).abs() < 1e-12, "{got}");
        assert_eq!(chi2(&[5, 3, 2], &[0.5, 0.3, 0.2], 0.0), 0.0);
        // With the floor, the third cell (expected 4) divides by 5: 16/6 + 16/5 = 5.8667.
        let floored = chi2(&[10, 10, 0], &[0.5, 0.3, 0.2], MIN_EXPECTED);
        assert!(
            (floored - (16.0 / 6.0 + 16.0 / 5.0)).abs() < 1e-12,
            "{floored}"
        );
    }

    #[test]
    fn smoothing_adds_half_a_count() {
        assert_eq!(smoothed(&[0, 1]), vec![0.25, 0.75]);
        assert_eq!(smoothed_shares(&[0.0, 1.0], 1), vec![0.25, 0.75]);
    }

    #[test]
    fn total_variation_by_hand() {
        assert!((total_variation(&[0.5, 0.5, 0.0], &[0.2, 0.5, 0.3]) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn edges_follow_quantiles_and_collapse_on_ties() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_edges(&sorted, 4), vec![25.0, 50.0, 75.0]);
        let turns = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        assert_eq!(quantile_edges(&turns, 10), vec![1.0, 2.0, 3.0]);
        assert_eq!(bin_of(&[1.0, 2.0, 3.0], 1.0), 0);
        assert_eq!(bin_of(&[1.0, 2.0, 3.0], 2.5), 2);
        assert_eq!(bin_of(&[1.0, 2.0, 3.0], 9.0), 3);
    }

    #[test]
    fn wasserstein_of_a_shift_is_the_shift() {
        let a: Vec<f64> = (0..50).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 7.0).collect();
        let w = wasserstein1(&quantile_function(&a), &quantile_function(&b));
        assert!((w - 7.0).abs() < 1e-9, "{w}");
        assert_eq!(
            wasserstein1(&quantile_function(&a), &quantile_function(&a)),
            0.0
        );
    }
}
