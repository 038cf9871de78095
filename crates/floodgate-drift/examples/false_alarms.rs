//! The false-alarm rate measured on many fresh windows, per feature (a measurement, not a
//! test): `cargo run --release -p floodgate-drift --example false_alarms`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/traffic/mod.rs"]
mod traffic;

use std::time::Instant;

use floodgate_drift::{Features, Profile, ProfileConfig, WindowReport};
use traffic::{Population, Traffic};

const REFERENCE_SAMPLES: usize = 2_000;

fn main() {
    let windows = 2000;
    let mut totals = 0;
    for reference_seed in [1u64, 101, 202] {
        let samples = Traffic::new(reference_seed).requests(Population::English, REFERENCE_SAMPLES);
        let started = Instant::now();
        let profile = Profile::build(&samples, &ProfileConfig::default()).unwrap();
        let built = started.elapsed();
        let mut traffic = Traffic::new(reference_seed + 7);
        let fresh: Vec<Vec<Features>> = (0..windows)
            .map(|_| traffic.requests(Population::English, profile.window))
            .collect();
        let started = Instant::now();
        let reports: Vec<WindowReport> = fresh.iter().map(|w| profile.test(w)).collect();
        let per_window = started.elapsed() / windows as u32;
        let alarms = reports.iter().filter(|r| r.drifted).count();
        totals += alarms;
        let mut per_feature: Vec<(String, usize)> = Vec::new();
        for r in &reports {
            for name in r.moved() {
                match per_feature.iter_mut().find(|(n, _)| n == name) {
                    Some((_, c)) => *c += 1,
                    None => per_feature.push((name.to_owned(), 1)),
                }
            }
        }
        println!(
            "reference seed {reference_seed}: {alarms} alarms in {windows} windows ({:.2}%), by feature {per_feature:?}; \
             build {built:?}, test {per_window:?} per window; expected {:.2}%",
            100.0 * alarms as f64 / windows as f64,
            100.0 * profile.calibration.expected_false_alarm_rate
        );
    }
    println!(
        "overall {:.2}%",
        100.0 * totals as f64 / (3 * windows) as f64
    );
}
