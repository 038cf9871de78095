//! The quality measures of a quantization report, on plain slices.
//!
//! - perplexity: `exp(mean negative log-likelihood)` of the corpus' next tokens
//! - KL divergence `KL(P_ref || P_variant) = sum_i p_i (log p_i - log q_i)` of the
//!   next-token distributions, averaged over the same corpus positions
//! - top-1 agreement: the share of positions where both pick the same argmax
//!
//! Sums are kept in `f64`: a corpus has thousands of positions and a
//! vocabulary tens of thousands of entries.

/// Log-probabilities from raw logits: `x_i - log(sum_j exp(x_j))`.
#[must_use]
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![f32::NAN; logits.len()];
    }
    let max = f64::from(max);
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let lse = max + sum.ln();
    logits
        .iter()
        .map(|&x| (f64::from(x) - lse) as f32)
        .collect()
}

/// `KL(P || Q)` in nats from two log-probability vectors over the same vocabulary.
/// Entries where `P` is zero contribute nothing.
#[must_use]
pub fn kl_divergence(p_log: &[f32], q_log: &[f32]) -> f64 {
    p_log
        .iter()
        .zip(q_log)
        .map(|(&p, &q)| {
            let p = f64::from(p);
            let prob = p.exp();
            if prob == 0.0 {
                0.0
            } else {
                prob * (p - f64::from(q))
            }
        })
        .sum()
}

/// Index of the largest value (the first one on ties); 0 for an empty slice.
#[must_use]
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Running totals over the scored corpus positions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityTotals {
    nll_sum: f64,
    tokens: u64,
    kl_sum: f64,
    compared: u64,
    agreed: u64,
}

impl QualityTotals {
    /// Adds one position: the log-probability the model gave the actual next token.
    pub fn add_token(&mut self, logprob_of_next: f32) {
        self.nll_sum -= f64::from(logprob_of_next);
        self.tokens += 1;
    }

    /// Adds one comparison with the reference at the same position.
    pub fn add_comparison(&mut self, kl: f64, same_top1: bool) {
        self.kl_sum += kl;
        self.compared += 1;
        self.agreed += u64::from(same_top1);
    }

    /// Number of scored positions.
    #[must_use]
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// `exp(mean NLL)`; `NaN` before any token.
    #[must_use]
    pub fn perplexity(&self) -> f64 {
        if self.tokens == 0 {
            return f64::NAN;
        }
        (self.nll_sum / self.tokens as f64).exp()
    }

    /// Mean KL divergence from the reference; `None` without comparisons.
    #[must_use]
    pub fn mean_kl(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.kl_sum / self.compared as f64)
    }

    /// Share of positions with the same top-1 token as the reference.
    #[must_use]
    pub fn top1_agreement(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.agreed as f64 / self.compared as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn log_softmax_normalises_and_is_shift_invariant() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f64 = lp.iter().map(|&x| f64::from(x).exp()).sum();
        assert!(close(total, 1.0, 1e-6));
        let shifted = log_softmax(&[1001.0, 1002.0, 1003.0]);
        for (a, b) in lp.iter().zip(&shifted) {
            assert!((a - b).abs() < 1e-5);
        }
        assert!(close(f64::from(lp[2]), -0.407_605_96, 1e-6));
    }

    #[test]
    fn perplexity_of_a_uniform_model_is_the_vocabulary_size() {
        let lp = log_softmax(&[0.0; 50]);
        let mut t = QualityTotals::default();
        for next in [3, 7, 11, 49] {
            t.add_token(lp[next]);
        }
        assert!(close(t.perplexity(), 50.0, 1e-4));
        assert_eq!(t.tokens(), 4);
        assert!(QualityTotals::default().perplexity().is_nan());
    }

    #[test]
    fn perplexity_of_a_certain_model_is_one() {
        let mut t = QualityTotals::default();
        t.add_token(0.0);
        t.add_token(0.0);
        assert!(close(t.perplexity(), 1.0, 1e-12));
        let mut half = QualityTotals::default();
        half.add_token(0.5f32.ln());
        assert!(close(half.perplexity(), 2.0, 1e-6));
    }

    #[test]
    fn kl_divergence_known_values() {
        let p = [0.5f32.ln(), 0.5f32.ln()];
        let q = [0.9f32.ln(), 0.1f32.ln()];
        // 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1)
        assert!(close(kl_divergence(&p, &q), 0.510_825_6, 1e-6));
        assert_eq!(kl_divergence(&p, &p), 0.0);
        // Asymmetric: KL(Q||P) = 0.9 ln(0.9/0.5) + 0.1 ln(0.1/0.5)
        assert!(close(kl_divergence(&q, &p), 0.368_064, 1e-5));
        // A zero-probability reference entry contributes nothing.
        let p0 = [0.0f32, f32::NEG_INFINITY];
        let q0 = [0.7f32.ln(), 0.3f32.ln()];
        assert!(close(kl_divergence(&p0, &q0), -(0.7f64.ln()), 1e-6));
    }

    #[test]
    fn kl_of_softmaxed_logits_is_non_negative() {
        let a = log_softmax(&[0.3, -1.2, 2.5, 0.0, 0.7]);
        let b = log_softmax(&[0.35, -1.0, 2.4, 0.1, 0.6]);
        assert!(kl_divergence(&a, &b) > 0.0);
        assert!(kl_divergence(&a, &b) < 0.01);
    }

    #[test]
    fn agreement_and_mean_kl() {
        let mut t = QualityTotals::default();
        assert_eq!(t.mean_kl(), None);
        assert_eq!(t.top1_agreement(), None);
        t.add_comparison(0.1, true);
        t.add_comparison(0.3, false);
        t.add_comparison(0.2, true);
        t.add_comparison(0.0, true);
        assert!(close(t.mean_kl().unwrap(), 0.15, 1e-12));
        assert_eq!(t.top1_agreement(), Some(0.75));
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[-1.0]), 0);
    }
}
