use super::*;

/// Two Gaussian-ish blobs in `dim` dimensions, separated along the first
/// axis; `positives` of `n` carry `label`. Deterministic.
fn blobs(
    n: usize,
    positives: usize,
    dim: usize,
    label: &str,
    seed: u64,
) -> Vec<(Vec<f32>, String)> {
    let mut state = seed.max(1);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Sum of uniforms: roughly normal, mean 0, sd ~0.58.
        (0..3)
            .map(|k| ((state.rotate_left(k * 21) >> 40) as f32 / (1u64 << 24) as f32) - 0.5)
            .sum::<f32>()
    };
    (0..n)
        .map(|i| {
            let positive = i < positives;
            let mut x: Vec<f32> = (0..dim).map(|_| noise()).collect();
            x[0] += if positive { 1.5 } else { -1.5 };
            (
                x,
                if positive {
                    label.to_string()
                } else {
                    "benign".to_string()
                },
            )
        })
        .collect()
}

#[test]
fn learns_a_separable_problem_and_round_trips_through_json() {
    let data = blobs(400, 100, 8, "injection", 3);
    let model = train(&data, &TrainOptions::default()).unwrap();
    assert_eq!(model.heads.len(), 1);
    assert_eq!(model.heads[0].label, "injection");
    assert_eq!(model.input_dim, 8);
    assert_eq!(model.meta.examples, 400);
    assert_eq!(model.meta.label_counts["injection"], 100);
    assert_eq!(model.meta.label_counts["benign"], 300);
    assert!(model.meta.trained_at.ends_with('Z'));
    // The informative axis dominates the weights.
    let w = &model.heads[0].weights;
    assert!(
        w[0] > 0.0 && w[1..].iter().all(|v| v.abs() < w[0].abs()),
        "{w:?}"
    );

    let cv = &model.meta.cross_validation[0];
    assert!(cv.auc > 0.95, "{cv:?}");
    assert!(cv.fpr <= 0.05 + 1e-9, "{cv:?}");

    let metrics = evaluate(&model, &blobs(200, 50, 8, "injection", 99)).unwrap();
    assert!(metrics[0].auc > 0.95, "{:?}", metrics[0]);
    assert!(metrics[0].recall > 0.8, "{:?}", metrics[0]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("injection.json");
    model.save(&path).unwrap();
    let back = Classifier::load(&path).unwrap();
    // Weights are f32 and survive exactly; f64 metadata figures may move by
    // one ulp through serde_json's default float parser.
    assert_eq!(back.heads, model.heads);
    assert_eq!(back.meta.options, model.meta.options);
    assert_eq!(back.meta.label_counts, model.meta.label_counts);
    assert!((back.meta.cross_validation[0].f1 - cv.f1).abs() < 1e-12);
    let x = &data[0].0;
    assert_eq!(
        back.predict_proba(x).unwrap(),
        model.predict_proba(x).unwrap()
    );
}

#[test]
fn one_head_per_positive_label() {
    let mut data = blobs(200, 60, 4, "toxic", 5);
    // A second positive class, separated along another axis.
    for (x, label) in data.iter_mut().skip(150) {
        x[1] += 3.0;
        *label = "threat".into();
    }
    let model = train(&data, &TrainOptions::default()).unwrap();
    let labels: Vec<&str> = model.heads.iter().map(|h| h.label.as_str()).collect();
    assert_eq!(labels, ["threat", "toxic"]);
    let scores = model.score(&data[160].0).unwrap();
    assert_eq!(scores[0].label, "threat");
    assert!(scores[0].probability > scores[1].probability, "{scores:?}");
}

#[test]
fn caller_features_are_named_and_checked() {
    let mut data = blobs(100, 30, 4, "injection", 7);
    for (x, label) in &mut data {
        x.push(if label == "injection" { 3.0 } else { 0.0 }); // e.g. rule hits
    }
    let opts = TrainOptions {
        feature_names: vec!["rule_hits".into()],
        threshold: ThresholdRule::Fixed { threshold: 0.5 },
        ..TrainOptions::default()
    };
    let model = train(&data, &opts).unwrap();
    assert_eq!(model.input_dim, 5);
    assert_eq!(model.feature_names, ["rule_hits"]);
    assert!(model.meta.cross_validation.is_empty());
    assert_eq!(model.heads[0].threshold, 0.5);
    let err = model.predict_proba(&[0.0; 4]).unwrap_err();
    assert!(err.to_string().contains("rule_hits"), "{err}");
}

#[test]
fn refuses_unusable_training_sets() {
    let opts = TrainOptions::default();
    assert!(train(&[], &opts).is_err());
    let all_negative = vec![(vec![0.0, 1.0], "benign".to_string()); 10];
    assert!(train(&all_negative, &opts)
        .unwrap_err()
        .to_string()
        .contains("no positive label"));
    let ragged = vec![
        (vec![0.0, 1.0], "x".to_string()),
        (vec![0.0], "benign".to_string()),
    ];
    assert!(train(&ragged, &opts).is_err());
    let nan = vec![
        (vec![f32::NAN], "x".to_string()),
        (vec![0.0], "benign".to_string()),
    ];
    assert!(train(&nan, &opts).is_err());
    // One positive cannot be split for out-of-fold threshold selection.
    let mut lonely = blobs(20, 1, 2, "x", 1);
    lonely[0].1 = "x".into();
    assert!(train(&lonely, &opts).is_err());
}

#[test]
fn cross_validation_scores_every_example_once() {
    let data = blobs(150, 50, 6, "injection", 11);
    let metrics = cross_validate(&data, &TrainOptions::default(), 5).unwrap();
    assert_eq!(metrics.len(), 1);
    let m = &metrics[0];
    assert_eq!(m.examples, 150);
    assert_eq!(m.positives, 50);
    assert_eq!(
        m.true_positives + m.false_positives + m.true_negatives + m.false_negatives,
        150
    );
    assert!(m.auc > 0.9, "{m:?}");
    assert!(m.threshold.is_nan());
}

#[test]
fn folds_are_stratified_and_reproducible() {
    let classes: Vec<&str> = (0..50).map(|i| if i < 10 { "a" } else { "b" }).collect();
    let folds = assign_folds(&classes, 5, 1).unwrap();
    for f in 0..5 {
        let a = (0..10).filter(|&i| folds[i] == f).count();
        assert_eq!(a, 2, "fold {f}");
    }
    assert_eq!(folds, assign_folds(&classes, 5, 1).unwrap());
    assert!(assign_folds(&classes, 1, 1).is_err());
}

#[test]
fn rejects_models_that_do_not_fit_their_shape() {
    let data = blobs(60, 20, 3, "injection", 2);
    let mut model = train(&data, &TrainOptions::default()).unwrap();
    model.heads[0].weights.pop();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    model.save(&path).unwrap();
    let err = Classifier::load(&path).unwrap_err();
    assert!(err.to_string().contains("weights"), "{err}");
}

#[test]
fn formats_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400 + 3_661), "2000-02-29T01:01:01Z");
    assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
}
