//! The cost–quality arithmetic of a two-tier cascade, on golden-set outcomes.
//!
//! Calibration runs both tiers on every golden question once, so any policy and
//! threshold can be replayed offline: for each question we know whether each tier is
//! right, what each costs, the pre-router's score of the prompt and the post scorer's
//! score of the small tier's answer.

use floodgate_gateway::cascade::thresholds::{route, Checks, Path, Thresholds};
use serde::Serialize;

/// One golden question, both tiers answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub small_right: bool,
    pub large_right: bool,
    pub small_cost: f64,
    pub large_cost: f64,
    /// P(escalation helps) from the pre-router, if there is one.
    pub pre: Option<f32>,
    /// P(small right) from the post scorer, if there is one.
    pub post: Option<f32>,
}

/// Quality and cost of one operating point over a golden set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub thresholds: Thresholds,
    /// Share of questions answered right.
    pub quality: f64,
    /// Mean cost per request (USD).
    pub cost: f64,
    /// Share of requests the large tier answered.
    pub escalation: f64,
}

pub fn evaluate(outcomes: &[Outcome], t: Thresholds) -> Point {
    let n = outcomes.len().max(1) as f64;
    let (mut right, mut cost, mut escalated) = (0usize, 0f64, 0usize);
    for o in outcomes {
        match route(t, o.pre, o.post) {
            Path::Small => {
                right += usize::from(o.small_right);
                cost += o.small_cost;
            }
            Path::PreEscalated => {
                right += usize::from(o.large_right);
                cost += o.large_cost;
                escalated += 1;
            }
            Path::PostEscalated => {
                right += usize::from(o.large_right);
                cost += o.small_cost + o.large_cost;
                escalated += 1;
            }
        }
    }
    Point {
        thresholds: t,
        quality: right as f64 / n,
        cost: cost / n,
        escalation: escalated as f64 / n,
    }
}

/// Each tier alone: (quality, mean cost) of the small and of the large tier.
pub fn tiers_alone(outcomes: &[Outcome]) -> [(f64, f64); 2] {
    let n = outcomes.len().max(1) as f64;
    let q = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as f64 / n;
    let c = |f: fn(&Outcome) -> f64| outcomes.iter().map(f).sum::<f64>() / n;
    [
        (q(|o| o.small_right), c(|o| o.small_cost)),
        (q(|o| o.large_right), c(|o| o.large_cost)),
    ]
}

/// The perfect router's points: escalating exactly the questions the small tier gets
/// wrong, after generating (`post`) and before (`pre`, the small tier never runs).
pub fn oracle(outcomes: &[Outcome]) -> (Point, Point) {
    let n = outcomes.len().max(1) as f64;
    let wrong = outcomes.iter().filter(|o| !o.small_right).count() as f64;
    let right = outcomes
        .iter()
        .filter(|o| o.small_right || o.large_right)
        .count() as f64;
    let post_cost = outcomes
        .iter()
        .map(|o| o.small_cost + if o.small_right { 0.0 } else { o.large_cost })
        .sum::<f64>();
    let pre_cost = outcomes
        .iter()
        .map(|o| {
            if o.small_right {
                o.small_cost
            } else {
                o.large_cost
            }
        })
        .sum::<f64>();
    let none = Thresholds {
        pre: None,
        post: None,
    };
    let point = |cost: f64| Point {
        thresholds: none,
        quality: right / n,
        cost: cost / n,
        escalation: wrong / n,
    };
    (point(post_cost), point(pre_cost))
}

/// The cheapest perfect router: before generation, exactly the questions where the
/// large tier is right and the small one is not go to the large tier; everything else
/// (including what neither tier gets right) stays on the small tier.
pub fn oracle_gain(outcomes: &[Outcome]) -> Point {
    let n = outcomes.len().max(1) as f64;
    let gain = |o: &Outcome| !o.small_right && o.large_right;
    let right = outcomes
        .iter()
        .filter(|o| o.small_right || o.large_right)
        .count() as f64;
    let cost = outcomes
        .iter()
        .map(|o| if gain(o) { o.large_cost } else { o.small_cost })
        .sum::<f64>();
    Point {
        thresholds: Thresholds {
            pre: None,
            post: None,
        },
        quality: right / n,
        cost: cost / n,
        escalation: outcomes.iter().filter(|o| gain(o)).count() as f64 / n,
    }
}

/// Candidate thresholds for scores: "never" and "always" plus up to `steps` quantiles.
fn candidates(scores: impl Iterator<Item = f32>, steps: usize, never: f32) -> Vec<f32> {
    let mut s: Vec<f32> = scores.filter(|x| x.is_finite()).collect();
    s.sort_by(f32::total_cmp);
    let mut out = vec![never];
    if !s.is_empty() {
        for i in 0..=steps {
            let idx = (i * (s.len() - 1)) / steps.max(1);
            out.push(s[idx]);
        }
        // Strictly past the extremes, so both "all" and "none" are reachable.
        out.push(s[0] - 1e-6);
        out.push(s[s.len() - 1] + 1e-6);
    }
    out.sort_by(f32::total_cmp);
    out.dedup();
    out
}

/// Every operating point of a grid over the enabled checks' thresholds.
pub fn sweep(outcomes: &[Outcome], checks: Checks, steps: usize) -> Vec<Point> {
    // pre: escalate when score ≥ t, so t above every score = never escalate.
    let pre: Vec<Option<f32>> = if checks.pre {
        candidates(outcomes.iter().filter_map(|o| o.pre), steps, f32::INFINITY)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    // post: escalate when score < t, so t = -inf = never escalate.
    let post: Vec<Option<f32>> = if checks.post {
        candidates(
            outcomes.iter().filter_map(|o| o.post),
            steps,
            f32::NEG_INFINITY,
        )
        .into_iter()
        .map(Some)
        .collect()
    } else {
        vec![None]
    };
    let mut points = Vec::with_capacity(pre.len() * post.len());
    for &p in &pre {
        for &q in &post {
            points.push(evaluate(outcomes, Thresholds { pre: p, post: q }));
        }
    }
    points
}

/// The points no other point beats on both cost and quality, cheapest first.
pub fn frontier(points: &[Point]) -> Vec<Point> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| {
        a.cost
            .total_cmp(&b.cost)
            .then(b.quality.total_cmp(&a.quality))
    });
    let mut out: Vec<Point> = Vec::new();
    for p in sorted {
        if out.last().is_none_or(|last| p.quality > last.quality) {
            out.push(p);
        }
    }
    out
}

/// The cheapest point that keeps at least `target` × the large tier's quality.
pub fn cheapest_meeting(points: &[Point], large_quality: f64, target: f64) -> Option<Point> {
    let need = target * large_quality - 1e-12;
    points
        .iter()
        .filter(|p| p.quality >= need)
        .min_by(|a, b| {
            a.cost
                .total_cmp(&b.cost)
                .then(b.quality.total_cmp(&a.quality))
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(small: bool, large: bool, pre: f32, post: f32) -> Outcome {
        Outcome {
            small_right: small,
            large_right: large,
            small_cost: 1.0,
            large_cost: 10.0,
            pre: Some(pre),
            post: Some(post),
        }
    }

    #[test]
    fn costs_add_up_per_path() {
        let data = [
            o(true, true, 0.1, 0.9),
            o(false, true, 0.9, 0.1),
            o(false, false, 0.2, 0.2),
        ];
        let p = evaluate(
            &data,
            Thresholds {
                pre: Some(0.5),
                post: Some(0.5),
            },
        );
        // small served (1), pre-escalated (10), post-escalated (1 + 10).
        assert!((p.cost - 22.0 / 3.0).abs() < 1e-9);
        assert!((p.quality - 2.0 / 3.0).abs() < 1e-9);
        assert!((p.escalation - 2.0 / 3.0).abs() < 1e-9);
        let [small, large] = tiers_alone(&data);
        assert_eq!(small, (1.0 / 3.0, 1.0));
        assert_eq!(large, (2.0 / 3.0, 10.0));
        let (post, pre) = oracle(&data);
        assert!((post.quality - 2.0 / 3.0).abs() < 1e-9);
        assert!((post.cost - (1.0 + 11.0 + 11.0) / 3.0).abs() < 1e-9);
        assert!((pre.cost - (1.0 + 10.0 + 10.0) / 3.0).abs() < 1e-9);
        // Only the second question gains from the large tier; the third stays small.
        let g = oracle_gain(&data);
        assert!((g.cost - (1.0 + 10.0 + 1.0) / 3.0).abs() < 1e-9);
        assert!((g.quality - 2.0 / 3.0).abs() < 1e-9);
        assert!((g.escalation - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_sweep_reaches_both_extremes_and_picks_the_cheapest_good_point() {
        // A perfect post scorer: it separates right from wrong answers.
        let data: Vec<Outcome> = (0..10)
            .map(|i| {
                let right = i < 4;
                o(right, true, 0.5, if right { 0.8 } else { 0.2 })
            })
            .collect();
        let points = sweep(
            &data,
            Checks {
                pre: false,
                post: true,
            },
            10,
        );
        assert!(points.iter().any(|p| p.escalation == 0.0));
        assert!(points.iter().any(|p| p.escalation == 1.0));
        let best = cheapest_meeting(&points, 1.0, 0.95).unwrap();
        assert_eq!(best.quality, 1.0);
        assert!((best.escalation - 0.6).abs() < 1e-9);
        // Nothing meets an impossible target.
        assert!(cheapest_meeting(&points, 1.0, 1.5).is_none());
        let f = frontier(&points);
        assert!(f
            .windows(2)
            .all(|w| w[0].cost <= w[1].cost && w[0].quality < w[1].quality));
    }
}
