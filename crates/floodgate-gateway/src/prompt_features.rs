//! A prompt's drift features, computed on the request path for the request's event:
//! length, dominant script, language, prose or code, turns (`floodgate_drift`), and the
//! 32-number projection of its sentence embedding (MiniLM's static token table, when
//! loaded). The analytics side adds what the event itself says (tokens, scores,
//! refusal, escalation) and tests windows ([`crate::analytics`]).
//!
//! Cost is bounded twice: the text analysis looks at a bounded prefix (microseconds),
//! and at most `drift.max_samples_per_second` requests per process are sampled (a
//! lock-free GCRA bucket); the others carry no features.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use floodgate_drift::Features;

use crate::config::{Config, DriftEmbedder};

/// Bytes of a prompt given to the embedder (its head; the rest changes little).
const EMBED_SAMPLE_BYTES: usize = 2048;

/// A sentence embedder for drift (dimension-agnostic: the result is projected).
pub trait Embed: Send + Sync {
    fn embed(&self, text: &str) -> Option<Vec<f32>>;
}

/// Samples requests and computes their prompt features.
pub struct PromptSampler {
    /// Nanoseconds between samples at the configured rate (0: unlimited).
    interval_ns: u64,
    /// Burst allowance, in nanoseconds of credit.
    burst_ns: u64,
    /// GCRA's theoretical arrival time, in nanoseconds since `epoch`.
    tat: AtomicU64,
    epoch: Instant,
    embedder: Arc<OnceLock<Box<dyn Embed>>>,
}

impl PromptSampler {
    /// `None` when drift is off.
    pub fn new(config: &Config) -> Option<Self> {
        let d = &config.drift;
        if !d.enabled || d.max_samples_per_second <= 0.0 {
            return None;
        }
        let interval_ns = (1e9 / d.max_samples_per_second) as u64;
        Some(Self {
            interval_ns,
            burst_ns: 1_000_000_000,
            tat: AtomicU64::new(0),
            epoch: Instant::now(),
            embedder: Arc::new(OnceLock::new()),
        })
    }

    /// Where the embedder goes once it is loaded (in the background, at start).
    pub fn embedder_slot(&self) -> Arc<OnceLock<Box<dyn Embed>>> {
        Arc::clone(&self.embedder)
    }

    /// Takes one sample's credit; false when over the rate.
    fn admit(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start > now + self.burst_ns {
                return false;
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }

    /// The features of a prompt (`text`: its messages' text; `turns`: user turns), or
    /// `None` when this request is not sampled.
    pub fn sample(&self, text: &str, turns: u32) -> Option<Features> {
        if !self.admit() {
            return None;
        }
        Some(compute(
            text,
            turns,
            self.embedder.get().map(|e| e.as_ref()),
        ))
    }
}

/// A prompt's features: what the request path samples, and what `floodgate drift
/// profile --from` computes for its reference rows (the same function, so the two agree).
pub fn compute(text: &str, turns: u32, embedder: Option<&dyn Embed>) -> Features {
    let mut f = Features::from_text(text);
    f.turns = turns;
    if let Some(e) = embedder {
        let head = floor_char_boundary(text, EMBED_SAMPLE_BYTES);
        f.embedding = e.embed(&text[..head]).map(|v| floodgate_drift::project(&v));
    }
    f
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where the distilled MiniLM token table for drift lives.
pub fn static_table_path(config: &Config) -> PathBuf {
    crate::model_cache::model_store(config)
        .root()
        .join("drift")
        .join("minilm-static.safetensors")
}

/// The configured drift embedder: the MiniLM static table, distilled and saved once when
/// missing (tens of seconds). `Ok(None)` when embeddings are off, the build has no
/// encoder, or the MiniLM model is not in the cache.
pub fn load_embedder(config: &Config) -> Result<Option<Box<dyn Embed>>, String> {
    if config.drift.embedder == DriftEmbedder::None {
        return Ok(None);
    }
    let model_dir = crate::model_cache::embedder_dir(config);
    if !model_dir.join("tokenizer.json").exists() {
        return Ok(None);
    }
    static_embedder(&static_table_path(config), &model_dir)
}

#[cfg(feature = "engine")]
fn static_embedder(table: &Path, model_dir: &Path) -> Result<Option<Box<dyn Embed>>, String> {
    use floodgate_embed::{EmbedOptions, Embedder, StaticEmbedder};
    struct Static(StaticEmbedder);
    impl Embed for Static {
        fn embed(&self, text: &str) -> Option<Vec<f32>> {
            self.0.embed_one(text).ok()
        }
    }
    if !table.exists() {
        tracing::info!(table = %table.display(), "drift: distilling MiniLM's token table (once)");
        let encoder =
            Embedder::load(model_dir, EmbedOptions::default()).map_err(|e| e.to_string())?;
        let distilled = StaticEmbedder::distill(&encoder, |_, _| {}).map_err(|e| e.to_string())?;
        if let Some(dir) = table.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // Written beside and renamed, so a concurrent reader never sees half a file.
        let partial = table.with_extension("partial");
        distilled.save(&partial).map_err(|e| e.to_string())?;
        std::fs::rename(&partial, table).map_err(|e| format!("{}: {e}", table.display()))?;
    }
    let s = StaticEmbedder::load(table, model_dir).map_err(|e| e.to_string())?;
    Ok(Some(Box::new(Static(s))))
}

#[cfg(not(feature = "engine"))]
fn static_embedder(_: &Path, _: &Path) -> Result<Option<Box<dyn Embed>>, String> {
    Ok(None)
}

/// Loads the embedder into `sampler` in the background (blocking work off the runtime).
pub fn spawn_embedder_load(config: Arc<Config>, sampler: &PromptSampler) {
    let slot = sampler.embedder_slot();
    tokio::task::spawn_blocking(move || {
        match load_embedder(&config) {
        Ok(Some(e)) => {
            let _ = slot.set(e);
            tracing::info!("drift: prompt embeddings on");
        }
        Ok(None) => tracing::info!("drift: no sentence encoder (all-minilm-l6-v2 not cached, or drift.embedder = \"none\"); features without embeddings"),
        Err(e) => tracing::warn!(error = %e, "drift: the sentence encoder did not load; features without embeddings"),
    }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_capped_with_a_one_second_burst() {
        let mut c = Config::default();
        c.drift.max_samples_per_second = 100.0;
        let s = PromptSampler::new(&c).unwrap();
        let taken = (0..1000)
            .filter(|_| s.sample("How tall is the Eiffel tower?", 1).is_some())
            .count();
        // One second of credit (100) plus what accrues while the loop runs.
        assert!((100..=130).contains(&taken), "{taken}");
    }

    #[test]
    fn features_carry_the_text_and_the_turns() {
        let f = compute(
            "Bonjour, pouvez-vous m'aider avec ma lettre de motivation ?",
            2,
            None,
        );
        assert_eq!(f.turns, 2);
        assert_eq!(f.language, "fra");
        assert_eq!(f.kind, "prose");
        assert!(f.embedding.is_none() && f.prompt_chars > 40);
    }

    #[test]
    fn off_when_disabled() {
        let mut c = Config::default();
        c.drift.enabled = false;
        assert!(PromptSampler::new(&c).is_none());
    }
}
