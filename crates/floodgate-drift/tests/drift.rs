//! The "done when": a profile built from reference traffic raises at most one false
//! alarm in 100 fresh reference windows, and raises drift within one window for another
//! language, code instead of prose, and much longer prompts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod traffic;

use std::sync::OnceLock;
use std::time::Instant;

use floodgate_drift::{project, Features, Monitor, Profile, ProfileConfig, WindowReport};
use traffic::{Population, Traffic};

const REFERENCE_SAMPLES: usize = 2000;

fn config() -> ProfileConfig {
    ProfileConfig::default()
}

/// One profile for every test here, built from 2,000 English prose requests.
fn profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(|| {
        let samples = Traffic::new(1).requests(Population::English, REFERENCE_SAMPLES);
        let started = Instant::now();
        let profile = Profile::build(&samples, &config()).unwrap();
        println!(
            "profile from {} samples built in {:?}: p* {:.2e}, expected false-alarm rate {:.4}",
            samples.len(),
            started.elapsed(),
            profile.calibration.p_star,
            profile.calibration.expected_false_alarm_rate
        );
        profile
    })
}

fn print_report(title: &str, report: &WindowReport) {
    println!(
        "{title}: drifted={} moved={:?}",
        report.drifted,
        report.moved()
    );
    for f in &report.features {
        println!(
            "  {:<18} {:<4} {:>10.4} / {:>9.4}  p={:.4}  {}{}",
            f.name,
            f.test,
            f.statistic,
            f.threshold,
            f.p_value.unwrap_or(f64::NAN),
            if f.drifted { "DRIFT " } else { "" },
            f.detail
        );
    }
}

#[test]
fn fresh_reference_windows_raise_at_most_one_false_alarm_in_100() {
    let profile = profile();
    let mut traffic = Traffic::new(2);
    let mut alarms = Vec::new();
    let mut closest = (0.0f64, String::new());
    let started = Instant::now();
    for i in 0..100 {
        let window = traffic.requests(Population::English, profile.window);
        let report = profile.test(&window);
        for f in &report.features {
            let ratio = f.statistic / f.threshold;
            if ratio > closest.0 {
                closest = (
                    ratio,
                    format!(
                        "window {i}, {} {:.4} / {:.4}",
                        f.name, f.statistic, f.threshold
                    ),
                );
            }
        }
        if report.drifted {
            print_report(&format!("false alarm in window {i}"), &report);
            alarms.push(i);
        }
    }
    println!(
        "false alarms: {} of 100 fresh reference windows (tested in {:?}); closest to a threshold: {:.2} of it ({})",
        alarms.len(),
        started.elapsed(),
        closest.0,
        closest.1
    );
    assert!(alarms.len() <= 1, "false alarms in windows {alarms:?}");
}

fn shifted_window(population: Population, seed: u64) -> Vec<Features> {
    Traffic::new(seed).requests(population, profile().window)
}

fn assert_moved(report: &WindowReport, expected: &[&str]) {
    assert!(report.drifted, "no drift raised");
    let moved = report.moved();
    for name in expected {
        assert!(
            moved.contains(name),
            "{name} not among the moved features {moved:?}"
        );
    }
}

#[test]
fn another_language_drifts_on_language() {
    let report = profile().test(&shifted_window(Population::French, 10));
    print_report("French prose", &report);
    assert_moved(&report, &["language", "embedding"]);
}

#[test]
fn code_instead_of_prose_drifts_on_kind() {
    let report = profile().test(&shifted_window(Population::Code, 11));
    print_report("code", &report);
    assert_moved(&report, &["kind", "embedding"]);
}

#[test]
fn much_longer_prompts_drift_on_length() {
    let report = profile().test(&shifted_window(Population::Long, 12));
    print_report("long prompts", &report);
    assert_moved(&report, &["prompt_chars", "prompt_tokens"]);
}

#[test]
fn a_window_half_code_still_drifts() {
    let window = profile().window;
    let mut reference = Traffic::new(13);
    let mut code = Traffic::new(14);
    let mixed: Vec<Features> = (0..window)
        .map(|i| {
            if i % 2 == 0 {
                reference.request(Population::English)
            } else {
                code.request(Population::Code)
            }
        })
        .collect();
    let report = profile().test(&mixed);
    print_report("half English, half code", &report);
    assert_moved(&report, &["kind"]);
}

#[test]
fn the_monitor_raises_drift_within_the_configured_window() {
    let profile = profile().clone();
    let window = profile.window;
    let mut monitor = Monitor::new();
    monitor.set_profile("chat/small", profile);
    let mut traffic = Traffic::new(15);
    let mut reports = Vec::new();
    // Unprofiled keys are counted, never tested.
    assert!(monitor
        .push("chat/unprofiled", traffic.request(Population::English))
        .is_none());
    // One reference window, then French from the middle of the second window on.
    for i in 0..3 * window {
        let population = if i < window + window / 2 {
            Population::English
        } else {
            Population::French
        };
        if let Some(report) = monitor.push("chat/small", traffic.request(population)) {
            reports.push(report);
        }
    }
    assert_eq!(reports.len(), 3);
    assert!(
        !reports[0].drifted,
        "reference window alarmed: {:?}",
        reports[0].moved()
    );
    // The window that the shift started in already drifts.
    assert_moved(&reports[1], &["language"]);
    assert_moved(&reports[2], &["language"]);
    let stats = monitor.stats("chat/small").unwrap();
    assert_eq!(
        (stats.seen, stats.windows, stats.drifted, stats.pending),
        (3 * window as u64, 3, 2, 0)
    );
    assert_eq!(monitor.stats("chat/unprofiled").unwrap().seen, 1);
}

#[test]
fn moved_embeddings_alone_are_caught_by_mmd() {
    // Scalars from the English generator, embeddings replaced by synthetic vectors: a mixture
    // of topic centres plus noise for the reference, the same with every centre moved along
    // one direction for the shifted traffic.
    let dim = 384;
    let mut vectors = Traffic::new(20);
    let centres: Vec<Vec<f32>> = (0..6).map(|_| vectors.gaussian_vector(dim)).collect();
    let direction = vectors.gaussian_vector(dim);
    let mut embed = |shift: f32, f: &mut Features| {
        let centre = &centres[vectors.below(centres.len())];
        let noise = vectors.gaussian_vector(dim);
        let v: Vec<f32> = (0..dim)
            .map(|i| centre[i] + 1.5 * noise[i] + shift * direction[i])
            .collect();
        f.embedding = Some(project(&v));
    };
    let mut reference = Traffic::new(21).requests(Population::English, REFERENCE_SAMPLES);
    reference.iter_mut().for_each(|f| embed(0.0, f));
    let profile = Profile::build(&reference, &config()).unwrap();

    let mut scalars = Traffic::new(22);
    let mut same = scalars.requests(Population::English, profile.window);
    same.iter_mut().for_each(|f| embed(0.0, f));
    let quiet = profile.test(&same);
    print_report("synthetic embeddings, no shift", &quiet);
    assert!(!quiet.drifted);

    let mut shifted = scalars.requests(Population::English, profile.window);
    shifted.iter_mut().for_each(|f| embed(0.5, f));
    let report = profile.test(&shifted);
    print_report("synthetic embeddings, shifted mean", &report);
    assert_eq!(report.moved(), vec!["embedding"]);
}

#[test]
fn a_profile_survives_json() {
    let profile = profile();
    let json = serde_json::to_string(profile).unwrap();
    let back: Profile = serde_json::from_str(&json).unwrap();
    let window = shifted_window(Population::Code, 16);
    let (a, b) = (back.test(&window), profile.test(&window));
    assert_eq!(a.moved(), b.moved());
    // serde_json reads floats back to within an ulp, not always bit for bit.
    for (x, y) in a.features.iter().zip(&b.features) {
        assert_eq!(x.name, y.name);
        assert!(
            (x.statistic - y.statistic).abs() <= 1e-9 * y.statistic.abs().max(1.0),
            "{x:?} {y:?}"
        );
        assert!(
            (x.threshold - y.threshold).abs() <= 1e-9 * y.threshold.abs().max(1.0),
            "{x:?} {y:?}"
        );
    }
    println!("profile JSON: {} KB", json.len() / 1024);
}
