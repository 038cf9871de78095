//! Maximum mean discrepancy with an RBF kernel: the multivariate two-sample statistic for
//! (projected) sentence embeddings. Unbiased estimator (Gretton et al., 2012, eq. 3):
//!
//! MMD²ᵤ = mean_{i≠j} k(xᵢ, xⱼ) + mean_{i≠j} k(yᵢ, yⱼ) − 2 mean_{i,j} k(xᵢ, yⱼ),
//!
//! with k(a, b) = exp(−‖a − b‖² / (2σ²)) and σ the median pairwise distance of the reference
//! (the median heuristic). Under no drift it is centred on zero and may be negative.

/// Squared Euclidean distance (over the shorter length).
///
/// Four accumulators in a `while` loop: optimised builds vectorise it, unoptimised (test)
/// builds run it several times faster than an iterator chain. The summation order is fixed,
/// so the result is the same on every run.
pub fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 4];
    let mut i = 0;
    while i + 4 <= n {
        let d0 = a[i] - b[i];
        let d1 = a[i + 1] - b[i + 1];
        let d2 = a[i + 2] - b[i + 2];
        let d3 = a[i + 3] - b[i + 3];
        acc[0] += d0 * d0;
        acc[1] += d1 * d1;
        acc[2] += d2 * d2;
        acc[3] += d3 * d3;
        i += 4;
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    while i < n {
        let d = a[i] - b[i];
        sum += d * d;
        i += 1;
    }
    f64::from(sum)
}

/// RBF kernel with bandwidth σ.
#[derive(Clone, Copy, Debug)]
pub struct Rbf {
    neg_inv_two_sigma_sq: f64,
}

impl Rbf {
    pub fn new(sigma: f64) -> Self {
        Self {
            neg_inv_two_sigma_sq: -1.0 / (2.0 * sigma * sigma),
        }
    }

    pub fn k(&self, a: &[f32], b: &[f32]) -> f64 {
        (sq_dist(a, b) * self.neg_inv_two_sigma_sq).exp()
    }

    /// Mean of k over ordered pairs i ≠ j (0 for fewer than two vectors).
    pub fn mean_within(&self, xs: &[&[f32]]) -> f64 {
        let m = xs.len();
        if m < 2 {
            return 0.0;
        }
        let mut sum = 0.0;
        for (i, a) in xs.iter().enumerate() {
            for b in &xs[i + 1..] {
                sum += self.k(a, b);
            }
        }
        2.0 * sum / (m * (m - 1)) as f64
    }

    /// Mean of k over all pairs across the two sets.
    pub fn mean_between(&self, xs: &[&[f32]], ys: &[&[f32]]) -> f64 {
        if xs.is_empty() || ys.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0;
        for a in xs {
            for b in ys {
                sum += self.k(a, b);
            }
        }
        sum / (xs.len() * ys.len()) as f64
    }

    /// Unbiased MMD² between `xs` and `ys`, given `ys`' within mean when already known.
    pub fn mmd2(&self, xs: &[&[f32]], ys: &[&[f32]], ys_within: Option<f64>) -> f64 {
        let yy = ys_within.unwrap_or_else(|| self.mean_within(ys));
        self.mean_within(xs) + yy - 2.0 * self.mean_between(xs, ys)
    }
}

/// Median pairwise distance (the median heuristic for σ), floored so identical vectors still
/// give a usable kernel.
pub fn median_distance(xs: &[&[f32]]) -> f64 {
    let mut d: Vec<f64> = Vec::with_capacity(xs.len() * xs.len().saturating_sub(1) / 2);
    for (i, a) in xs.iter().enumerate() {
        for b in &xs[i + 1..] {
            d.push(sq_dist(a, b));
        }
    }
    if d.is_empty() {
        return 1.0;
    }
    let mid = d.len() / 2;
    let (_, median, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    median.sqrt().max(1e-3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn cloud(n: usize, center: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                (0..8)
                    .map(|_| center + rng.gaussian() as f32 * 0.3)
                    .collect()
            })
            .collect()
    }

    fn refs(v: &[Vec<f32>]) -> Vec<&[f32]> {
        v.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn mmd_of_identical_sets_is_near_zero() {
        let x = cloud(100, 0.0, 1);
        let kernel = Rbf::new(median_distance(&refs(&x)));
        let same = kernel.mmd2(&refs(&x), &refs(&x), None);
        // Exactly −2 (1 − mean_within) / m for identical sets: within O(1/m) of zero.
        assert!(same.abs() < 0.02, "{same}");
        let fresh = kernel.mmd2(&refs(&cloud(100, 0.0, 2)), &refs(&x), None);
        assert!(fresh.abs() < 0.02, "{fresh}");
    }

    #[test]
    fn mmd_of_separated_sets_is_large() {
        let x = cloud(100, 0.0, 1);
        let y = cloud(100, 1.0, 3);
        let kernel = Rbf::new(median_distance(&refs(&x)));
        let far = kernel.mmd2(&refs(&y), &refs(&x), None);
        assert!(far > 0.5, "{far}");
    }

    #[test]
    fn squared_distance_by_hand() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [0.0, 0.0, 0.0, 0.0, 0.0, 8.0];
        assert_eq!(sq_dist(&a, &b), 1.0 + 4.0 + 9.0 + 16.0 + 25.0 + 4.0);
        assert_eq!(sq_dist(&a[..3], &b), 14.0);
    }

    #[test]
    fn kernel_by_hand() {
        let kernel = Rbf::new(1.0);
        assert!((kernel.k(&[0.0, 0.0], &[1.0, 1.0]) - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(median_distance(&[&[0.0, 0.0], &[3.0, 4.0]]), 5.0);
    }
}
