//! The cascade's decision rule and its thresholds, shared by the request path and by
//! offline calibration (`floodgate-lab`), so that a replayed golden set routes exactly
//! as live traffic does.

use serde::Serialize;

pub use crate::config::Checks;

/// Thresholds of one operating point; `None` = that check is off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub pre: Option<f32>,
    pub post: Option<f32>,
}

/// Where a request ends up under a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The small tier's answer is served.
    Small,
    /// The pre-router sent it straight to the large tier.
    PreEscalated,
    /// The small tier answered, the post check rejected it, the large tier answered.
    PostEscalated,
}

/// The decision rule, shared with the request path: escalate before generation when
/// P(escalation helps) ≥ `pre`; after it when P(small right) < `post`.
pub fn route(t: Thresholds, pre_score: Option<f32>, post_score: Option<f32>) -> Path {
    if let (Some(th), Some(s)) = (t.pre, pre_score) {
        if s >= th {
            return Path::PreEscalated;
        }
    }
    if let (Some(th), Some(s)) = (t.post, post_score) {
        if s < th {
            return Path::PostEscalated;
        }
    }
    Path::Small
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_inclusive_for_pre_and_strict_for_post() {
        let t = Thresholds {
            pre: Some(0.5),
            post: Some(0.5),
        };
        assert_eq!(route(t, Some(0.5), Some(0.9)), Path::PreEscalated);
        assert_eq!(route(t, Some(0.49), Some(0.5)), Path::Small);
        assert_eq!(route(t, Some(0.49), Some(0.49)), Path::PostEscalated);
        // A missing score never escalates.
        assert_eq!(route(t, None, None), Path::Small);
        let off = Thresholds {
            pre: None,
            post: None,
        };
        assert_eq!(route(off, Some(1.0), Some(0.0)), Path::Small);
    }
}
