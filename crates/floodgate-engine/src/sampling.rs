//! Token sampling over raw logits.
//!
//! The sampler works on one sequence's logits at a time and owns nothing but its RNG
//! and the per-sequence token counts that penalties need. Log-probabilities are always
//! reported from the *unmodified* distribution (before penalties and temperature), as
//! OpenAI does, so that they mean the same whatever the sampling settings.

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::TokenId;

/// Tokens whose logit is this far below the best one have probability < e^-30 relative
/// to it: dropping them before sorting changes nothing measurable and keeps top-p cheap
/// on 150k-token vocabularies.
const NEGLIGIBLE_LOGIT_GAP: f32 = 30.0;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: u32,
    pub min_p: f32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub seed: Option<u64>,
    /// Additive biases, as OpenAI's `logit_bias`.
    pub logit_bias: Vec<(TokenId, f32)>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            logit_bias: Vec::new(),
        }
    }
}

/// Log-probabilities of one sampled position.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionLogprobs {
    pub chosen: f32,
    /// The `n` most likely tokens, most likely first.
    pub top: Vec<(TokenId, f32)>,
}

pub struct Sampler {
    params: SamplingParams,
    rng: SmallRng,
    counts: HashMap<TokenId, u32>,
    scratch: Vec<f32>,
    candidates: Vec<(TokenId, f32)>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = match params.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Self {
            params,
            rng,
            counts: HashMap::new(),
            scratch: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// Records a token as generated, for presence and frequency penalties.
    pub fn accept(&mut self, token: TokenId) {
        *self.counts.entry(token).or_insert(0) += 1;
    }

    /// Picks the next token. `banned` tokens (e.g. end-of-generation when the client set
    /// `ignore_eos`) are never chosen.
    pub fn sample(&mut self, logits: &[f32], banned: &[TokenId]) -> TokenId {
        let p = &self.params;
        // Plain greedy decoding reads the logits in place: copying a 150k–262k row per
        // token per sequence is a measurable share of a batched step on CPU.
        if p.temperature <= 0.0
            && p.logit_bias.is_empty()
            && p.presence_penalty == 0.0
            && p.frequency_penalty == 0.0
        {
            return argmax_except(logits, banned);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(logits);
        let adjusted = &mut self.scratch;
        for &(tok, bias) in &p.logit_bias {
            if let Some(l) = adjusted.get_mut(tok as usize) {
                *l += bias;
            }
        }
        if p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
            for (&tok, &n) in &self.counts {
                if let Some(l) = adjusted.get_mut(tok as usize) {
                    *l -= p.presence_penalty + p.frequency_penalty * n as f32;
                }
            }
        }
        for &tok in banned {
            if let Some(l) = adjusted.get_mut(tok as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        if p.temperature <= 0.0 {
            return argmax(adjusted);
        }
        let max = adjusted.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.candidates.clear();
        self.candidates.extend(
            adjusted
                .iter()
                .enumerate()
                .filter(|(_, &l)| l >= max - NEGLIGIBLE_LOGIT_GAP)
                .map(|(i, &l)| (i as TokenId, l)),
        );
        let cands = &mut self.candidates;
        cands.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if p.top_k > 0 && cands.len() > p.top_k as usize {
            cands.truncate(p.top_k as usize);
        }
        // Softmax at temperature, in place: logits become probabilities.
        let inv_t = 1.0 / p.temperature;
        let mut sum = 0.0f32;
        for c in cands.iter_mut() {
            c.1 = ((c.1 - max) * inv_t).exp();
            sum += c.1;
        }
        for c in cands.iter_mut() {
            c.1 /= sum;
        }
        if p.min_p > 0.0 {
            let floor = cands.first().map_or(0.0, |c| c.1) * p.min_p;
            cands.retain(|c| c.1 >= floor);
        }
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = cands.len();
            for (i, c) in cands.iter().enumerate() {
                acc += c.1;
                if acc >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            cands.truncate(keep.max(1));
        }
        let total: f32 = cands.iter().map(|c| c.1).sum();
        let mut r = self.rng.random::<f32>() * total;
        for c in cands.iter() {
            r -= c.1;
            if r <= 0.0 {
                return c.0;
            }
        }
        cands.last().map_or_else(|| argmax(adjusted), |c| c.0)
    }
}

/// The best token that is not banned (the banned list holds a few end-of-generation ids).
fn argmax_except(values: &[f32], banned: &[TokenId]) -> TokenId {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v > best_v && !banned.contains(&(i as TokenId)) {
            best_v = v;
            best = i;
        }
    }
    best as TokenId
}

fn argmax(values: &[f32]) -> TokenId {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as TokenId
}

/// Log-softmax of the raw logits at `chosen`, plus the `n` best alternatives.
pub fn logprobs(logits: &[f32], chosen: TokenId, n: usize) -> PositionLogprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln() + max;
    let chosen_lp = logits
        .get(chosen as usize)
        .map_or(f32::NEG_INFINITY, |&l| l - log_sum);
    let mut top: Vec<(TokenId, f32)> = Vec::with_capacity(n + 1);
    if n > 0 {
        for (i, &l) in logits.iter().enumerate() {
            if top.len() < n || top.last().is_some_and(|t| l > t.1) {
                let pos = top.partition_point(|t| t.1 >= l);
                top.insert(pos, (i as TokenId, l));
                top.truncate(n);
            }
        }
    }
    for t in &mut top {
        t.1 -= log_sum;
    }
    PositionLogprobs {
        chosen: chosen_lp,
        top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            seed: Some(7),
            ..SamplingParams::default()
        }
    }

    #[test]
    fn greedy_picks_argmax_and_respects_bans() {
        let mut s = Sampler::new(params(0.0));
        assert_eq!(s.sample(&[0.1, 3.0, 2.0], &[]), 1);
        assert_eq!(s.sample(&[0.1, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_top_k_one_is_greedy() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.731).sin() * 3.0).collect();
        let run = || {
            let mut s = Sampler::new(params(1.0));
            (0..20).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        let mut k1 = Sampler::new(SamplingParams {
            top_k: 1,
            ..params(1.5)
        });
        let best = argmax(&logits);
        assert!((0..20).all(|_| k1.sample(&logits, &[]) == best));
    }

    #[test]
    fn tiny_top_p_keeps_only_the_best_token() {
        let mut s = Sampler::new(SamplingParams {
            top_p: 0.01,
            ..params(1.0)
        });
        assert!((0..50).all(|_| s.sample(&[1.0, 5.0, 4.9, 0.0], &[]) == 1));
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        let mut s = Sampler::new(SamplingParams {
            min_p: 0.5,
            ..params(1.0)
        });
        // token 2 has p/p_max = e^-3 < 0.5 and must never appear.
        assert!((0..200).all(|_| s.sample(&[5.0, 4.8, 2.0], &[]) != 2));
    }

    #[test]
    fn penalties_push_away_repeated_tokens() {
        let mut s = Sampler::new(SamplingParams {
            frequency_penalty: 2.0,
            ..params(0.0)
        });
        s.accept(0);
        assert_eq!(s.sample(&[3.0, 2.0], &[]), 1);
    }

    #[test]
    fn logprobs_are_normalised_and_ordered() {
        let lp = logprobs(&[1.0, 2.0, 3.0], 1, 2);
        let total: f32 = [1.0f32, 2.0, 3.0]
            .iter()
            .map(|l| (l - 3.0f32).exp())
            .sum::<f32>();
        assert!((lp.chosen - (2.0 - 3.0 - total.ln())).abs() < 1e-5);
        assert_eq!(lp.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![2, 1]);
        let p: f32 = lp.top.iter().map(|t| t.1.exp()).sum();
        assert!(p < 1.0 && p > 0.9);
    }
}
