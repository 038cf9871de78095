//! What an answer's token log-probabilities say about its reliability.
//!
//! The post-answer check of a cascade reads these numbers. They are computed the same
//! way in the request path and in `floodgate cascade train|calibrate`, so a threshold
//! measured offline means the same thing online.

use crate::inference::TokenLogprob;
use serde::{Deserialize, Serialize};

/// How many alternatives per token a cascade asks the engine for, whatever the client
/// asked: the entropy and margin signals need them.
pub const CASCADE_TOP_LOGPROBS: usize = 5;

/// Phrases with which small models hedge or decline; their presence is a signal.
const HEDGES: &[&str] = &[
    "i don't know",
    "i do not know",
    "i'm not sure",
    "i am not sure",
    "not sure",
    "i cannot",
    "i can't",
    "unable to",
    "no information",
    "not able to",
    "i apologize",
    "sorry",
];

/// Summary statistics of one answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnswerSignals {
    /// Generated tokens.
    pub tokens: u32,
    /// Mean log-probability of the chosen tokens.
    pub mean_logprob: f32,
    /// The least likely chosen token's log-probability.
    pub min_logprob: f32,
    /// The first token's log-probability (where the model commits to an answer).
    pub first_logprob: f32,
    /// Mean entropy (nats) of the next-token distribution, estimated from the top
    /// alternatives plus the remaining mass as one bucket.
    pub mean_entropy: f32,
    /// Mean gap between the best and the second-best alternative's log-probability.
    pub mean_margin: f32,
    /// Share of tokens whose log-probability is below ln(0.1).
    pub low_share: f32,
    /// The answer stopped at `max_tokens`.
    pub truncated: bool,
    /// The answer hedges or declines.
    pub hedged: bool,
}

impl AnswerSignals {
    pub fn from_logprobs(logprobs: &[TokenLogprob], text: &str, truncated: bool) -> Self {
        let lower = text.to_lowercase();
        let hedged = HEDGES.iter().any(|h| lower.contains(h));
        if logprobs.is_empty() {
            return Self {
                truncated,
                hedged,
                ..Self::default()
            };
        }
        let n = logprobs.len() as f32;
        let mut sum = 0f32;
        let mut min = f32::INFINITY;
        let mut entropy = 0f32;
        let mut margin = 0f32;
        let mut low = 0u32;
        for lp in logprobs {
            let l = finite(lp.logprob);
            sum += l;
            min = min.min(l);
            if l < LOW_LOGPROB {
                low += 1;
            }
            entropy += top_entropy(lp);
            margin += top_margin(lp);
        }
        Self {
            tokens: logprobs.len() as u32,
            mean_logprob: sum / n,
            min_logprob: min,
            first_logprob: logprobs.first().map_or(0.0, |lp| finite(lp.logprob)),
            mean_entropy: entropy / n,
            mean_margin: margin / n,
            low_share: low as f32 / n,
            truncated,
            hedged,
        }
    }

    /// The features a post-answer scorer reads, in [`FEATURE_NAMES`] order.
    pub fn features(&self) -> Vec<f32> {
        vec![
            self.mean_logprob,
            self.min_logprob,
            self.first_logprob,
            self.mean_entropy,
            self.mean_margin,
            self.low_share,
            (1.0 + self.tokens as f32).ln(),
            f32::from(u8::from(self.truncated)),
            f32::from(u8::from(self.hedged)),
        ]
    }
}

/// Names of [`AnswerSignals::features`], stored with a trained scorer.
pub const FEATURE_NAMES: &[&str] = &[
    "mean_logprob",
    "min_logprob",
    "first_logprob",
    "mean_entropy",
    "mean_margin",
    "low_share",
    "log_tokens",
    "truncated",
    "hedged",
];

/// ln(0.1).
const LOW_LOGPROB: f32 = -std::f32::consts::LN_10;

/// Log-probabilities of impossible tokens are -inf; keep the statistics finite.
fn finite(l: f32) -> f32 {
    if l.is_finite() {
        l.max(-30.0)
    } else {
        -30.0
    }
}

fn top_entropy(lp: &TokenLogprob) -> f32 {
    let mut h = 0f32;
    let mut mass = 0f32;
    for t in &lp.top {
        let p = finite(t.logprob).exp();
        mass += p;
        if p > 0.0 {
            h -= p * p.ln();
        }
    }
    // The mass outside the top alternatives, counted as one outcome: a lower bound on
    // the true entropy that still grows with the spread.
    let rest = (1.0 - mass).max(0.0);
    if rest > 1e-6 {
        h -= rest * rest.ln();
    }
    h
}

fn top_margin(lp: &TokenLogprob) -> f32 {
    let mut best = f32::NEG_INFINITY;
    let mut second = f32::NEG_INFINITY;
    for t in &lp.top {
        let l = finite(t.logprob);
        if l > best {
            second = best;
            best = l;
        } else if l > second {
            second = l;
        }
    }
    if second.is_finite() {
        best - second
    } else if best.is_finite() {
        -best
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::TopLogprob;

    fn tok(lp: f32, top: &[f32]) -> TokenLogprob {
        TokenLogprob {
            token: "x".into(),
            bytes: b"x".to_vec(),
            logprob: lp,
            top: top
                .iter()
                .map(|&l| TopLogprob {
                    token: "y".into(),
                    bytes: b"y".to_vec(),
                    logprob: l,
                })
                .collect(),
        }
    }

    #[test]
    fn a_confident_answer_scores_higher_than_an_unsure_one() {
        let sure = [tok(-0.01, &[-0.01, -6.0]), tok(-0.02, &[-0.02, -5.0])];
        let unsure = [
            tok(-1.2, &[-0.9, -1.2, -1.5]),
            tok(-2.5, &[-1.0, -1.1, -2.5]),
        ];
        let a = AnswerSignals::from_logprobs(&sure, "Paris", false);
        let b = AnswerSignals::from_logprobs(&unsure, "Lyon maybe", false);
        assert!(a.mean_logprob > b.mean_logprob);
        assert!(a.min_logprob > b.min_logprob);
        assert!(a.mean_entropy < b.mean_entropy);
        assert!(a.mean_margin > b.mean_margin);
        assert_eq!(a.low_share, 0.0);
        assert_eq!(b.low_share, 0.5);
        assert_eq!(a.tokens, 2);
        assert!((b.first_logprob + 1.2).abs() < 1e-6);
    }

    #[test]
    fn infinite_logprobs_stay_finite_and_hedges_are_seen() {
        let s = AnswerSignals::from_logprobs(
            &[tok(f32::NEG_INFINITY, &[f32::NEG_INFINITY])],
            "Sorry, I don't know.",
            true,
        );
        assert!(s.features().iter().all(|f| f.is_finite()));
        assert!(s.hedged && s.truncated);
        assert_eq!(s.features().len(), FEATURE_NAMES.len());
    }

    #[test]
    fn no_tokens_gives_neutral_signals() {
        let s = AnswerSignals::from_logprobs(&[], "", false);
        assert_eq!(s.tokens, 0);
        assert!(s.features().iter().all(|f| f.is_finite()));
    }
}
