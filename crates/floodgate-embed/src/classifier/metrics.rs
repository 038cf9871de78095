//! Figures for one head: confusion counts at a threshold, precision, recall,
//! F1, false-positive rate, and the threshold-free ROC AUC; and the choice of
//! a threshold under a false-positive budget.
//!
//! Conventions: a score at or above the threshold is a positive prediction;
//! a ratio whose denominator is zero is reported as 0 (precision with no
//! positive predictions, recall with no positives), except AUC, which is NaN
//! when one class is absent.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub label: String,
    /// NaN when the decisions came from several models (cross-validation).
    pub threshold: f32,
    pub examples: usize,
    pub positives: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fpr: f64,
    pub auc: f64,
}

/// Metrics of `scores` against `labels` with positives at `score >= threshold`.
pub fn metrics_at(label: &str, scores: &[f32], labels: &[bool], threshold: f32) -> Metrics {
    let flagged: Vec<bool> = scores.iter().map(|&s| s >= threshold).collect();
    from_decisions(label, scores, &flagged, labels, threshold)
}

pub(super) fn from_decisions(
    label: &str,
    scores: &[f32],
    flagged: &[bool],
    labels: &[bool],
    threshold: f32,
) -> Metrics {
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    for (&f, &y) in flagged.iter().zip(labels) {
        match (f, y) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Metrics {
        label: label.to_string(),
        threshold,
        examples: labels.len(),
        positives: tp + fn_,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fn_,
        precision,
        recall,
        f1,
        fpr: ratio(fp, fp + tn),
        auc: auc(scores, labels),
    }
}

/// Area under the ROC curve: the probability that a random positive scores
/// above a random negative, ties counting one half (the Mann-Whitney
/// statistic, from average ranks). NaN when either class is absent.
pub fn auc(scores: &[f32], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&b| b).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..=end (1-based: start+1..=end+1) share their average.
        let rank = (start + end) as f64 / 2.0 + 1.0;
        positive_rank_sum +=
            rank * order[start..=end].iter().filter(|&&i| labels[i]).count() as f64;
        start = end + 1;
    }
    let p = positives as f64;
    (positive_rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// The lowest threshold at which the false-positive rate of `scores` is at
/// most `max_fpr`, i.e. the one with the best recall within that budget.
/// Negatives tied at the cut are all kept below it, so the budget holds even
/// with ties. With no negatives every score passes; with no scores, 0.5.
pub fn pick_threshold(scores: &[f32], labels: &[bool], max_fpr: f64) -> f32 {
    let mut negatives: Vec<f32> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &y)| !y)
        .map(|(&s, _)| s)
        .collect();
    if negatives.is_empty() {
        return scores
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
            .min(0.5);
    }
    negatives.sort_by(|a, b| b.total_cmp(a));
    let allowed = (max_fpr.clamp(0.0, 1.0) * negatives.len() as f64).floor() as usize;
    match negatives.get(allowed) {
        // Just above the highest negative that must not be flagged.
        Some(&cut) => cut.next_up(),
        // The budget covers every negative: everything passes.
        None => scores.iter().copied().fold(f32::INFINITY, f32::min),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), 1.0);
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), 0.0);
        assert_eq!(auc(&[0.5, 0.5], &[true, false]), 0.5);
        // Pairs: (0.7 vs 0.3) win, (0.7 vs 0.7) tie, (0.2 vs 0.3) loss, (0.2 vs 0.7) loss.
        assert_eq!(
            auc(&[0.7, 0.2, 0.3, 0.7], &[true, true, false, false]),
            0.375
        );
        assert!(auc(&[0.1], &[true]).is_nan());
    }

    #[test]
    fn threshold_respects_the_fpr_budget() {
        let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
        let labels = [
            false, false, false, false, false, false, false, false, true, true,
        ];
        // No false positive allowed: just above the top negative (0.8).
        let t = pick_threshold(&scores, &labels, 0.0);
        assert!(t > 0.8 && t <= 0.9, "{t}");
        let m = metrics_at("x", &scores, &labels, t);
        assert_eq!((m.true_positives, m.false_positives), (2, 0));
        // One of eight negatives allowed (12.5%): 0.8 may pass, 0.7 not.
        let t = pick_threshold(&scores, &labels, 0.125);
        assert!(t > 0.7 && t <= 0.8, "{t}");
        assert!(metrics_at("x", &scores, &labels, t).fpr <= 0.125);
        // Ties at the cut stay below it.
        let t = pick_threshold(&[0.5, 0.5, 0.5, 0.9], &[false, false, false, true], 0.34);
        assert!(t > 0.5);
        // Everything allowed: every score passes.
        assert!(pick_threshold(&scores, &labels, 1.0) <= 0.1);
    }

    #[test]
    fn metrics_at_a_threshold() {
        let m = metrics_at(
            "inj",
            &[0.9, 0.6, 0.4, 0.2],
            &[true, false, true, false],
            0.5,
        );
        assert_eq!(
            (
                m.true_positives,
                m.false_positives,
                m.true_negatives,
                m.false_negatives
            ),
            (1, 1, 1, 1)
        );
        assert_eq!((m.precision, m.recall, m.f1, m.fpr), (0.5, 0.5, 0.5, 0.5));
        assert_eq!(m.auc, 0.75);
        let none = metrics_at("inj", &[0.1, 0.2], &[true, false], 0.5);
        assert_eq!((none.precision, none.recall, none.f1), (0.0, 0.0, 0.0));
    }
}
