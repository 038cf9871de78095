//! Any text through the input-guard path must not panic, and the stream redactor must
//! agree with one-shot redaction however the text is split.
#![no_main]

use std::sync::LazyLock;

use floodgate_guard::injection::InjectionRules;
use floodgate_guard::normalize::normalize;
use floodgate_guard::pii::{redact, PiiConfig, StreamRedactor};
use floodgate_guard::toxicity::ToxicityRules;
use libfuzzer_sys::fuzz_target;

static RULES: LazyLock<(InjectionRules, ToxicityRules)> = LazyLock::new(|| {
    match (InjectionRules::new(), ToxicityRules::new()) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => panic!("rules do not compile: {e}"),
    }
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let normalized = normalize(&text);
    let score = RULES.0.score(&normalized);
    assert!((0.0..=1.0).contains(&score.score));
    let _ = RULES.1.score(&normalized);

    let config = PiiConfig::default();
    let whole = redact(&text, &config);
    let mut stream = StreamRedactor::new(config);
    let mut streamed = String::new();
    let split = data.first().map_or(1, |b| usize::from(*b % 16) + 1);
    let chars: Vec<char> = text.chars().collect();
    for chunk in chars.chunks(split) {
        streamed.push_str(&stream.push(&chunk.iter().collect::<String>()));
    }
    streamed.push_str(&stream.finish());
    assert_eq!(streamed, whole.text);
});
