//! Prints what drift detection costs: `text_features` on 1 KB prompts (request path),
//! `project` of a MiniLM-sized embedding, and building and testing a profile on synthetic
//! traffic (2,000 reference requests, windows of 200).
//!
//! `cargo run --release -p floodgate-drift --example costs`

#[path = "../tests/traffic/mod.rs"]
mod traffic;

use std::hint::black_box;
use std::time::{Duration, Instant};

use floodgate_drift::{project, text_features, Profile, ProfileConfig, SplitMix64};
use traffic::{Population, Traffic};

/// The fastest of five batches: the machine is shared, and the minimum is the least
/// disturbed estimate.
fn per_call<T>(calls: u32, mut f: impl FnMut() -> T) -> Duration {
    let batch = (calls / 5).max(1);
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            started.elapsed() / batch
        })
        .min()
        .unwrap_or_default()
}

/// The longest prefix of `text` up to `bytes` that ends on a character boundary.
fn cut(text: &str, bytes: usize) -> &str {
    let end = text
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|&i| i <= bytes)
        .last()
        .unwrap_or(0);
    &text[..end]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let english = "I'm working on a report about climate change, and I am stuck on the part about \
                   inflation. Please keep it simple, I am a complete beginner. Can you explain how \
                   black holes work? Thanks in advance! "
        .repeat(6);
    let french =
        "Je travaille sur un rapport sur le changement climatique et je bloque sur la partie \
                  concernant l'inflation. Merci de rester simple. "
            .repeat(8);
    let code = "def process(items, limit=10):\n    result = []\n    for item in items:\n        if item > limit:\n            result.append(item * 2)\n    return result\n"
        .repeat(8);
    println!("{:<40} {:>12}", "operation", "per call");
    for (label, text) in [
        ("English prose", &english),
        ("French prose", &french),
        ("Python code", &code),
    ] {
        let text = cut(text, 1024);
        let cost = per_call(5000, || text_features(text));
        println!(
            "{:<40} {:>12.1?}",
            format!("text_features, {label}, {} B", text.len()),
            cost
        );
        let sample = cut(text, floodgate_drift::LANGUAGE_SAMPLE_BYTES);
        let cost = per_call(5000, || whatlang::detect(sample));
        println!(
            "{:<40} {:>12.1?}",
            format!("  of which whatlang::detect, {} B", sample.len()),
            cost
        );
        let cost = per_call(5000, || floodgate_drift::kind(text));
        println!("{:<40} {:>12.1?}", "  of which kind", cost);
    }
    let mut rng = SplitMix64::new(1);
    let embedding: Vec<f32> = (0..384).map(|_| rng.gaussian() as f32).collect();
    println!(
        "{:<40} {:>12.1?}",
        "project, 384 → 32",
        per_call(20_000, || project(&embedding))
    );

    let samples = Traffic::new(1).requests(Population::English, 2000);
    let cfg = ProfileConfig::default();
    let mut build = Duration::MAX;
    let mut profile = Profile::build(&samples, &cfg)?;
    for _ in 0..3 {
        let started = Instant::now();
        profile = Profile::build(&samples, &cfg)?;
        build = build.min(started.elapsed());
    }
    println!("{:<40} {:>12.1?}", "Profile::build, 2,000 samples", build);
    let window = Traffic::new(2).requests(Population::English, profile.window);
    println!(
        "{:<40} {:>12.1?}",
        "Profile::test, window of 200",
        per_call(200, || profile.test(&window))
    );
    let json = serde_json::to_string(&profile)?;
    println!("{:<40} {:>9} KB", "profile as JSON", json.len() / 1024);
    Ok(())
}
