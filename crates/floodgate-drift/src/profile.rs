//! The reference profile of one route/model: per-feature reference summaries, calibrated
//! thresholds, and the window test. See the crate docs for the method.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::calibrate::calibrate;
use crate::error::DriftError;
use crate::features::Features;
use crate::mmd::{median_distance, Rbf};
use crate::report::{FeatureResult, WindowReport};
use crate::rng::SplitMix64;
use crate::stats;
use crate::tail::{Family, TailFit};

/// Version of the stored profile format; a reader should rebuild a profile of another version.
pub const PROFILE_FORMAT: u32 = 1;

/// At most this many of a window's embeddings enter the MMD test (the first ones), in the
/// calibration and in the live test alike, so a large window costs no more than this.
pub const MMD_WINDOW_MAX: usize = 500;

/// Samples with embeddings used by the MMD calibration, at most (a kernel matrix of this
/// size squared: 2,500² floats are 25 MB while a profile is built).
const CALIBRATION_EMBEDDINGS: usize = 2500;

/// Fewer reference or held-out embeddings than this and the embedding test is left out.
const MIN_EMBEDDINGS: usize = 20;

/// Categories kept per categorical feature, most frequent first; the rest are "other".
const MAX_CATEGORIES: usize = 32;

/// How a profile is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// Requests per live window; the thresholds hold for windows of this size.
    pub window: usize,
    /// No-drift windows drawn to calibrate the thresholds, spread over `splits`.
    pub bootstrap_windows: usize,
    /// Random half/half splits of the samples the calibration windows come from.
    pub splits: usize,
    /// Target probability that a window without drift raises an alarm (any feature).
    pub false_alarm_rate: f64,
    /// Quantile bins per numeric feature (fewer when values tie).
    pub numeric_bins: usize,
    /// Reference embeddings kept for MMD (0 leaves the embedding test out).
    pub mmd_reference: usize,
    /// Seed of the split and of the bootstrap draws.
    pub seed: u64,
    /// Fewest samples a profile is built from (never fewer than twice `window`).
    pub min_reference: usize,
    /// Categories rarer than this share of the reference are pooled into "other".
    pub category_floor: f64,
    /// Smallest total-variation distance between window and reference (over bins or
    /// categories) for which a numeric or categorical feature may be called drifted. It keeps a
    /// handful of requests from tripping a feature whose reference never varies (a category
    /// absent from the whole reference, a constant value).
    pub min_effect: f64,
    /// Features left out of the profile by name (`prompt_tokens`, `refused`, `embedding`,
    /// ...): those the reference does not have, such as the answer's features when it
    /// was built from a file of requests.
    pub exclude: Vec<String>,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            window: 200,
            bootstrap_windows: 500,
            splits: 10,
            false_alarm_rate: 0.01,
            numeric_bins: 10,
            mmd_reference: 300,
            seed: 0x0D21_F7ED,
            min_reference: 400,
            category_floor: 0.01,
            min_effect: 0.05,
            exclude: Vec::new(),
        }
    }
}

impl ProfileConfig {
    /// Every problem at once.
    pub fn validate(&self) -> Result<(), DriftError> {
        let mut problems = Vec::new();
        if self.window < 10 {
            problems.push(format!("window must be at least 10, got {}", self.window));
        }
        if self.bootstrap_windows < 100 {
            problems.push(format!(
                "bootstrap_windows must be at least 100, got {}",
                self.bootstrap_windows
            ));
        }
        if self.splits == 0 || self.splits > self.bootstrap_windows {
            problems.push(format!(
                "splits must be in 1..=bootstrap_windows, got {}",
                self.splits
            ));
        }
        if !(self.false_alarm_rate > 0.0 && self.false_alarm_rate < 0.5) {
            problems.push(format!(
                "false_alarm_rate must be in (0, 0.5), got {}",
                self.false_alarm_rate
            ));
        }
        if !(2..=100).contains(&self.numeric_bins) {
            problems.push(format!(
                "numeric_bins must be in 2..=100, got {}",
                self.numeric_bins
            ));
        }
        if self.mmd_reference != 0 && self.mmd_reference < MIN_EMBEDDINGS {
            problems.push(format!(
                "mmd_reference must be 0 (no embedding test) or at least {MIN_EMBEDDINGS}, got {}",
                self.mmd_reference
            ));
        }
        if !(self.category_floor >= 0.0 && self.category_floor < 0.5) {
            problems.push(format!(
                "category_floor must be in [0, 0.5), got {}",
                self.category_floor
            ));
        }
        if !(self.min_effect >= 0.0 && self.min_effect <= 1.0) {
            problems.push(format!(
                "min_effect must be in [0, 1], got {}",
                self.min_effect
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DriftError::InvalidConfig(problems.join("; ")))
        }
    }
}

/// How the thresholds were calibrated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Random half/half splits of the samples.
    pub splits: usize,
    /// Rows of each split's reference half.
    pub split_reference_rows: usize,
    /// Rows of each split's held-out half, which the split's windows are drawn from.
    pub split_holdout_rows: usize,
    pub bootstrap_windows: usize,
    /// Bootstrap windows allowed to alarm: ⌊α · windows / 2⌋.
    pub allowed_alarms: usize,
    /// Per-feature upper-tail probability at which every threshold sits.
    pub p_star: f64,
    /// (allowed_alarms + 1) / (bootstrap_windows + 1): the expected rate of false alarms on
    /// fresh no-drift windows; at most `false_alarm_rate`.
    pub expected_false_alarm_rate: f64,
}

/// A feature's null distribution: sorted bootstrap statistics, their tail fit, and the
/// calibrated threshold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Null {
    threshold: f64,
    fit: TailFit,
    bootstrap: Vec<f64>,
}

impl Null {
    fn p_value(&self, statistic: f64) -> f64 {
        let below = self.bootstrap.partition_point(|&x| x < statistic);
        let at_least = self.bootstrap.len() - below;
        (1 + at_least) as f64 / (1 + self.bootstrap.len()) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NumericFeature {
    PromptChars,
    PromptTokens,
    CompletionTokens,
    Turns,
    GuardScore,
    RouterScore,
}

impl NumericFeature {
    const ALL: [Self; 6] = [
        Self::PromptChars,
        Self::PromptTokens,
        Self::CompletionTokens,
        Self::Turns,
        Self::GuardScore,
        Self::RouterScore,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::PromptChars => "prompt_chars",
            Self::PromptTokens => "prompt_tokens",
            Self::CompletionTokens => "completion_tokens",
            Self::Turns => "turns",
            Self::GuardScore => "guard_score",
            Self::RouterScore => "router_score",
        }
    }

    /// Scores are optional: their bins include one for "missing", so a scorer that stops
    /// scoring is drift too.
    fn optional(self) -> bool {
        matches!(self, Self::GuardScore | Self::RouterScore)
    }

    fn value(self, f: &Features) -> Option<f64> {
        let v = match self {
            Self::PromptChars => f64::from(f.prompt_chars),
            Self::PromptTokens => f64::from(f.prompt_tokens),
            Self::CompletionTokens => f64::from(f.completion_tokens),
            Self::Turns => f64::from(f.turns),
            Self::GuardScore => f64::from(f.guard_score?),
            Self::RouterScore => f64::from(f.router_score?),
        };
        v.is_finite().then_some(v)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CategoricalFeature {
    Script,
    Language,
    Kind,
    Refused,
    Escalated,
}

impl CategoricalFeature {
    const ALL: [Self; 5] = [
        Self::Script,
        Self::Language,
        Self::Kind,
        Self::Refused,
        Self::Escalated,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::Language => "language",
            Self::Kind => "kind",
            Self::Refused => "refused",
            Self::Escalated => "escalated",
        }
    }

    fn value(self, f: &Features) -> &str {
        let s = match self {
            Self::Script => f.script.as_str(),
            Self::Language => f.language.as_str(),
            Self::Kind => f.kind.as_str(),
            Self::Refused => bool_str(f.refused),
            Self::Escalated => bool_str(f.escalated),
        };
        if s.is_empty() {
            "(missing)"
        } else {
            s
        }
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// A numeric feature's reference: quantile bins and the reference part's share in each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct NumericReference {
    feature: NumericFeature,
    /// Interior bin edges (bin i is (edges[i-1], edges[i]]).
    edges: Vec<f64>,
    /// Whether the last bin counts missing values.
    missing_bin: bool,
    /// Reference share per bin.
    shares: Vec<f64>,
    /// Reference rows behind `shares`.
    rows: u64,
    mean: f64,
    /// Quantile function of the reference values, for Wasserstein-1.
    quantiles: Vec<f64>,
    null: Null,
}

impl NumericReference {
    fn build(feature: NumericFeature, reference: &[&Features], bins: usize) -> Option<Self> {
        let mut values: Vec<f64> = reference.iter().filter_map(|f| feature.value(f)).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let mut this = Self {
            feature,
            edges: stats::quantile_edges(&values, bins),
            missing_bin: feature.optional(),
            shares: Vec::new(),
            rows: reference.len() as u64,
            mean,
            quantiles: stats::quantile_function(&values),
            null: Null::default(),
        };
        let mut counts = vec![0u64; this.bins()];
        for f in reference {
            if let Some(c) = counts.get_mut(this.bin(f)) {
                *c += 1;
            }
        }
        this.shares = stats::shares(&counts);
        Some(this)
    }

    fn bins(&self) -> usize {
        self.edges.len() + 1 + usize::from(self.missing_bin)
    }

    fn bin(&self, f: &Features) -> usize {
        match self.feature.value(f) {
            Some(v) => stats::bin_of(&self.edges, v),
            None if self.missing_bin => self.edges.len() + 1,
            // A required feature is never missing; NaN-free u32s always have a value.
            None => 0,
        }
    }

    /// (PSI, total variation) of window bin counts against the profile's shares.
    fn window_statistic(&self, counts: &[u64]) -> (f64, f64) {
        let reference = stats::smoothed_shares(&self.shares, self.rows);
        let psi = stats::psi(&reference, &stats::smoothed(counts));
        (
            psi,
            stats::total_variation(&self.shares, &stats::shares(counts)),
        )
    }

    fn test(&self, window: &[Features], min_effect: f64) -> FeatureResult {
        let mut counts = vec![0u64; self.bins()];
        let mut values = Vec::with_capacity(window.len());
        for f in window {
            if let Some(c) = counts.get_mut(self.bin(f)) {
                *c += 1;
            }
            values.extend(self.feature.value(f));
        }
        let (psi, tv) = self.window_statistic(&counts);
        values.sort_by(f64::total_cmp);
        let mut detail = if values.is_empty() {
            format!("reference mean {}, window has no values", num(self.mean))
        } else {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let w1 = stats::wasserstein1(&self.quantiles, &stats::quantile_function(&values));
            format!(
                "mean {} → {}, Wasserstein-1 {}",
                num(self.mean),
                num(mean),
                num(w1)
            )
        };
        if self.missing_bin {
            let reference_missing = self.shares.last().copied().unwrap_or(0.0);
            let window_missing = 1.0 - values.len() as f64 / window.len().max(1) as f64;
            detail.push_str(&format!(
                ", missing {} → {}",
                pct(reference_missing),
                pct(window_missing)
            ));
        }
        detail.push_str(&format!(", total variation {tv:.3}"));
        FeatureResult {
            name: self.feature.name().to_owned(),
            test: "psi".to_owned(),
            statistic: psi,
            threshold: self.null.threshold,
            p_value: Some(self.null.p_value(psi)),
            drifted: psi > self.null.threshold && tv >= min_effect,
            detail,
        }
    }
}

/// A categorical feature's reference: its common categories' shares, "other" last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CategoricalReference {
    feature: CategoricalFeature,
    categories: Vec<String>,
    /// Reference share per category, then "other".
    shares: Vec<f64>,
    rows: u64,
    null: Null,
}

impl CategoricalReference {
    fn build(feature: CategoricalFeature, reference: &[&Features], floor: f64) -> Self {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for f in reference {
            *counts.entry(feature.value(f)).or_default() += 1;
        }
        let rows = reference.len() as u64;
        let mut common: Vec<(&str, u64)> = counts
            .into_iter()
            .filter(|&(_, c)| c as f64 >= floor * rows as f64)
            .collect();
        // Most frequent first, then by name, so the same samples give the same profile.
        common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        common.truncate(MAX_CATEGORIES);
        let categories: Vec<String> = common.iter().map(|(name, _)| (*name).to_owned()).collect();
        let mut this = Self {
            feature,
            categories,
            shares: Vec::new(),
            rows,
            null: Null::default(),
        };
        let mut counts = vec![0u64; this.categories.len() + 1];
        for f in reference {
            if let Some(c) = counts.get_mut(this.index(feature.value(f))) {
                *c += 1;
            }
        }
        this.shares = stats::shares(&counts);
        this
    }

    fn index(&self, value: &str) -> usize {
        self.categories
            .iter()
            .position(|c| c == value)
            .unwrap_or(self.categories.len())
    }

    /// (χ², total variation) of window category counts against the profile's shares.
    fn window_statistic(&self, counts: &[u64]) -> (f64, f64) {
        let expected = stats::smoothed_shares(&self.shares, self.rows);
        let chi2 = stats::chi2(counts, &expected, stats::MIN_EXPECTED);
        (
            chi2,
            stats::total_variation(&self.shares, &stats::shares(counts)),
        )
    }

    fn test(&self, window: &[Features], min_effect: f64) -> FeatureResult {
        let mut counts = vec![0u64; self.categories.len() + 1];
        let mut others: HashMap<&str, usize> = HashMap::new();
        for f in window {
            let value = self.feature.value(f);
            let i = self.index(value);
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
            }
            if i == self.categories.len() {
                *others.entry(value).or_default() += 1;
            }
        }
        let (chi2, tv) = self.window_statistic(&counts);
        let window_shares = stats::shares(&counts);
        let mut moves: Vec<(String, f64, f64)> = self
            .categories
            .iter()
            .cloned()
            .chain(std::iter::once(other_label(&others)))
            .zip(self.shares.iter().zip(&window_shares))
            .map(|(name, (&r, &w))| (name, r, w))
            .collect();
        moves.sort_by(|a, b| (b.2 - b.1).abs().total_cmp(&(a.2 - a.1).abs()));
        let mut detail: Vec<String> = moves
            .iter()
            .take(3)
            .filter(|(_, r, w)| r != w)
            .map(|(name, r, w)| format!("{name} {} → {}", pct(*r), pct(*w)))
            .collect();
        detail.push(format!("total variation {tv:.3}"));
        FeatureResult {
            name: self.feature.name().to_owned(),
            test: "chi2".to_owned(),
            statistic: chi2,
            threshold: self.null.threshold,
            p_value: Some(self.null.p_value(chi2)),
            drifted: chi2 > self.null.threshold && tv >= min_effect,
            detail: detail.join(", "),
        }
    }
}

/// "other", naming its most frequent members in the window.
fn other_label(others: &HashMap<&str, usize>) -> String {
    let mut top: Vec<(&str, usize)> = others.iter().map(|(k, v)| (*k, *v)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if top.is_empty() {
        return "(other)".to_owned();
    }
    let names: Vec<&str> = top.iter().take(3).map(|(k, _)| *k).collect();
    format!("(other: {})", names.join(" "))
}

/// The embedding reference: a subsample of projected reference embeddings and the kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct EmbeddingReference {
    dim: usize,
    /// RBF bandwidth σ (median pairwise distance of `vectors`).
    sigma: f64,
    /// Mean kernel over distinct pairs of `vectors`.
    within: f64,
    vectors: Vec<Vec<f32>>,
    null: Null,
}

impl EmbeddingReference {
    fn test(&self, window: &[Features]) -> Option<FeatureResult> {
        let xs: Vec<&[f32]> = window
            .iter()
            .filter_map(|f| usable(f, self.dim))
            .take(MMD_WINDOW_MAX)
            .collect();
        if xs.len() < 2 {
            return None;
        }
        let ys: Vec<&[f32]> = self.vectors.iter().map(Vec::as_slice).collect();
        let kernel = Rbf::new(self.sigma);
        let mmd2 = kernel.mmd2(&xs, &ys, Some(self.within));
        Some(FeatureResult {
            name: "embedding".to_owned(),
            test: "mmd".to_owned(),
            statistic: mmd2,
            threshold: self.null.threshold,
            p_value: Some(self.null.p_value(mmd2)),
            drifted: mmd2 > self.null.threshold,
            detail: format!(
                "MMD² of {} window against {} reference embeddings, RBF σ {:.3}",
                xs.len(),
                ys.len(),
                self.sigma
            ),
        })
    }
}

fn usable(f: &Features, dim: usize) -> Option<&[f32]> {
    f.embedding
        .as_deref()
        .filter(|e| e.len() == dim && e.iter().all(|v| v.is_finite()))
}

/// The reference profile of one route/model (stored as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// [`PROFILE_FORMAT`] when written.
    pub format: u32,
    /// Samples the profile was built from.
    pub n: usize,
    /// Window size the thresholds are calibrated for.
    pub window: usize,
    pub false_alarm_rate: f64,
    pub config: ProfileConfig,
    pub calibration: Calibration,
    numeric: Vec<NumericReference>,
    categorical: Vec<CategoricalReference>,
    embedding: Option<EmbeddingReference>,
}

impl Profile {
    /// Builds a profile from reference samples (see the crate docs for the method).
    pub fn build(samples: &[Features], cfg: &ProfileConfig) -> Result<Profile, DriftError> {
        cfg.validate()?;
        let need = cfg.min_reference.max(2 * cfg.window);
        if samples.len() < need {
            return Err(DriftError::TooFewSamples {
                have: samples.len(),
                need,
            });
        }
        let n = samples.len();
        let mut rng = SplitMix64::new(cfg.seed);
        // One shuffled order: it picks the MMD reference subsample and the rows whose
        // embeddings the calibration uses.
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let rows: Vec<&Features> = samples.iter().collect();

        let kept = |name: &str| !cfg.exclude.iter().any(|e| e == name);
        let mut numeric: Vec<NumericReference> = NumericFeature::ALL
            .iter()
            .filter(|f| kept(f.name()))
            .filter_map(|&f| NumericReference::build(f, &rows, cfg.numeric_bins))
            .collect();
        let mut categorical: Vec<CategoricalReference> = CategoricalFeature::ALL
            .iter()
            .filter(|f| kept(f.name()))
            .map(|&f| CategoricalReference::build(f, &rows, cfg.category_floor))
            .collect();
        let embedding = if cfg.mmd_reference == 0 || !kept("embedding") {
            None
        } else {
            Embeddings::build(samples, &order, cfg.mmd_reference)
        };

        // Every row encoded once: its bin or category per binned feature.
        let binned: Vec<&dyn Binned> = numeric
            .iter()
            .map(|r| r as &dyn Binned)
            .chain(categorical.iter().map(|r| r as &dyn Binned))
            .collect();
        let codes: Vec<Vec<u16>> = binned
            .iter()
            .map(|b| {
                samples
                    .iter()
                    .map(|f| u16::try_from(b.code(f)).unwrap_or(u16::MAX))
                    .collect()
            })
            .collect();

        let boot = bootstrap(&binned, &codes, embedding.as_ref(), n, cfg, &mut rng);
        drop(binned);

        let families: Vec<Family> =
            std::iter::repeat_n(Family::Gamma, numeric.len() + categorical.len())
                .chain(embedding.iter().map(|_| Family::Pearson3))
                .collect();
        let calibrated = calibrate(&boot, &families, cfg.false_alarm_rate);
        let mut nulls = boot
            .into_iter()
            .zip(calibrated.fits)
            .zip(calibrated.thresholds)
            .map(|((mut bootstrap, fit), threshold)| {
                bootstrap.sort_by(f64::total_cmp);
                Null {
                    threshold,
                    fit,
                    bootstrap,
                }
            });
        for r in numeric.iter_mut() {
            r.null = nulls.next().unwrap_or_default();
        }
        for r in categorical.iter_mut() {
            r.null = nulls.next().unwrap_or_default();
        }
        let embedding = embedding.map(|e| EmbeddingReference {
            null: nulls.next().unwrap_or_default(),
            ..e.reference
        });

        Ok(Profile {
            format: PROFILE_FORMAT,
            n,
            window: cfg.window,
            false_alarm_rate: cfg.false_alarm_rate,
            config: cfg.clone(),
            calibration: Calibration {
                splits: cfg.splits,
                split_reference_rows: n - n / 2,
                split_holdout_rows: n / 2,
                bootstrap_windows: cfg.bootstrap_windows,
                allowed_alarms: calibrated.allowed_alarms,
                p_star: calibrated.p_star,
                expected_false_alarm_rate: (calibrated.allowed_alarms + 1) as f64
                    / (cfg.bootstrap_windows + 1) as f64,
            },
            numeric,
            categorical,
            embedding,
        })
    }

    /// Tests one window of live requests against the profile. The thresholds are calibrated
    /// for windows of [`Profile::window`] requests; other sizes get the same thresholds, and
    /// smaller windows will alarm more often than `false_alarm_rate`.
    pub fn test(&self, window: &[Features]) -> WindowReport {
        let mut features: Vec<FeatureResult> = Vec::new();
        if !window.is_empty() {
            features.extend(
                self.numeric
                    .iter()
                    .map(|r| r.test(window, self.config.min_effect)),
            );
            features.extend(
                self.categorical
                    .iter()
                    .map(|r| r.test(window, self.config.min_effect)),
            );
            features.extend(self.embedding.as_ref().and_then(|r| r.test(window)));
        }
        WindowReport {
            n: window.len(),
            drifted: features.iter().any(|f| f.drifted),
            features,
        }
    }

    /// (feature, test, threshold) for every feature the profile tests.
    pub fn thresholds(&self) -> Vec<(&'static str, &'static str, f64)> {
        let numeric = self
            .numeric
            .iter()
            .map(|r| (r.feature.name(), "psi", r.null.threshold));
        let categorical = self
            .categorical
            .iter()
            .map(|r| (r.feature.name(), "chi2", r.null.threshold));
        let embedding = self
            .embedding
            .iter()
            .map(|r| ("embedding", "mmd", r.null.threshold));
        numeric.chain(categorical).chain(embedding).collect()
    }
}

/// Statistics of every feature on `cfg.bootstrap_windows` no-drift windows: `boot[f][b]`.
/// The samples are split at random into halves `cfg.splits` times; each split's windows are
/// drawn with replacement from its held-out half and compared with its kept half.
fn bootstrap(
    binned: &[&dyn Binned],
    codes: &[Vec<u16>],
    embedding: Option<&Embeddings>,
    n: usize,
    cfg: &ProfileConfig,
    rng: &mut SplitMix64,
) -> Vec<Vec<f64>> {
    let features = binned.len() + usize::from(embedding.is_some());
    let mut boot: Vec<Vec<f64>> = vec![Vec::with_capacity(cfg.bootstrap_windows); features];
    let half = n / 2;
    let mut split: Vec<usize> = (0..n).collect();
    let mut window = vec![0usize; cfg.window];
    let mut counts: Vec<u64> = Vec::new();
    let mut picks: Vec<usize> = Vec::with_capacity(MMD_WINDOW_MAX);
    for s in 0..cfg.splits {
        rng.shuffle(&mut split);
        let (held, kept) = split.split_at(half);
        // The split's reference: shares of the kept half, per binned feature.
        let references: Vec<(Vec<f64>, u64)> = binned
            .iter()
            .zip(codes)
            .map(|(b, codes)| {
                counts.clear();
                counts.resize(b.cells(), 0);
                for &r in kept {
                    if let Some(c) = codes.get(r).and_then(|&c| counts.get_mut(usize::from(c))) {
                        *c += 1;
                    }
                }
                (stats::shares(&counts), kept.len() as u64)
            })
            .collect();
        let split_embeddings = embedding.map(|e| e.split(kept, held, cfg.mmd_reference));
        // This split's share of the bootstrap windows.
        let windows = cfg.bootstrap_windows / cfg.splits
            + usize::from(s < cfg.bootstrap_windows % cfg.splits);
        for _ in 0..windows {
            for r in window.iter_mut() {
                *r = held.get(rng.below(held.len())).copied().unwrap_or(0);
            }
            let mut slot = boot.iter_mut();
            for ((b, codes), (shares, rows)) in binned.iter().zip(codes).zip(&references) {
                counts.clear();
                counts.resize(b.cells(), 0);
                for &r in &window {
                    if let Some(c) = codes.get(r).and_then(|&c| counts.get_mut(usize::from(c))) {
                        *c += 1;
                    }
                }
                if let Some(slot) = slot.next() {
                    slot.push(b.statistic(shares, *rows, &counts));
                }
            }
            if let (Some(e), Some(split)) = (embedding, split_embeddings.as_ref()) {
                let m = window
                    .iter()
                    .filter(|&&r| e.has.get(r).copied().unwrap_or(false))
                    .count();
                picks.clear();
                picks.extend(
                    (0..m.min(MMD_WINDOW_MAX))
                        .filter_map(|_| split.pool.get(rng.below(split.pool.len())).copied()),
                );
                if let Some(slot) = slot.next() {
                    slot.push(e.pool_mmd2(split, &picks));
                }
            }
        }
    }
    boot
}

/// Numeric and categorical features alike: rows fall in cells, and a window's cell counts are
/// compared with a reference's cell shares.
trait Binned {
    fn cells(&self) -> usize;
    fn code(&self, f: &Features) -> usize;
    fn statistic(&self, shares: &[f64], rows: u64, counts: &[u64]) -> f64;
}

impl Binned for NumericReference {
    fn cells(&self) -> usize {
        self.bins()
    }
    fn code(&self, f: &Features) -> usize {
        self.bin(f)
    }
    fn statistic(&self, shares: &[f64], rows: u64, counts: &[u64]) -> f64 {
        stats::psi(
            &stats::smoothed_shares(shares, rows),
            &stats::smoothed(counts),
        )
    }
}

impl Binned for CategoricalReference {
    fn cells(&self) -> usize {
        self.categories.len() + 1
    }
    fn code(&self, f: &Features) -> usize {
        self.index(self.feature.value(f))
    }
    fn statistic(&self, shares: &[f64], rows: u64, counts: &[u64]) -> f64 {
        stats::chi2(
            counts,
            &stats::smoothed_shares(shares, rows),
            stats::MIN_EXPECTED,
        )
    }
}

/// Embeddings prepared for the calibration: the profile's reference, and a kernel matrix over
/// the calibration rows so that each split's MMD² is a matter of lookups.
struct Embeddings {
    reference: EmbeddingReference,
    /// Whether each sample has a usable embedding.
    has: Vec<bool>,
    /// Each sample's position among the calibration rows, if it is one.
    position: Vec<Option<usize>>,
    /// Calibration rows: up to `CALIBRATION_EMBEDDINGS` samples with embeddings, in shuffled
    /// order.
    len: usize,
    /// `len` × `len` kernel matrix.
    kernel: Vec<f32>,
}

/// One split's view of the calibration rows.
struct SplitEmbeddings {
    /// Calibration positions of the held-out half's embeddings.
    pool: Vec<usize>,
    /// Mean kernel of each calibration position with the split's reference (only `pool`
    /// entries are filled).
    cross: Vec<f64>,
    /// Mean kernel within the split's reference.
    within: f64,
}

impl Embeddings {
    fn build(samples: &[Features], order: &[usize], keep: usize) -> Option<Self> {
        // The most common dimension: events from one encoder all have it.
        let mut dims: HashMap<usize, usize> = HashMap::new();
        for f in samples {
            if let Some(e) = &f.embedding {
                *dims.entry(e.len()).or_default() += 1;
            }
        }
        let dim = dims
            .into_iter()
            .filter(|&(d, _)| d > 0)
            .max_by_key(|&(d, c)| (c, d))?
            .0;
        let has: Vec<bool> = samples.iter().map(|f| usable(f, dim).is_some()).collect();
        let rows: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| has.get(i).copied().unwrap_or(false))
            .take(CALIBRATION_EMBEDDINGS)
            .collect();
        // Each half of a split needs enough of them.
        if rows.len() < 4 * MIN_EMBEDDINGS {
            return None;
        }
        let vectors: Vec<&[f32]> = rows
            .iter()
            .filter_map(|&i| samples.get(i).and_then(|f| usable(f, dim)))
            .collect();
        let reference: Vec<Vec<f32>> = vectors.iter().take(keep).map(|v| v.to_vec()).collect();
        let ys: Vec<&[f32]> = reference.iter().map(Vec::as_slice).collect();
        let sigma = median_distance(&ys);
        let kernel = Rbf::new(sigma);
        let within = kernel.mean_within(&ys);
        let len = vectors.len();
        let mut matrix = vec![0f32; len * len];
        for (i, a) in vectors.iter().enumerate() {
            for (j, b) in vectors.iter().enumerate().skip(i) {
                let k = kernel.k(a, b) as f32;
                if let Some(slot) = matrix.get_mut(i * len + j) {
                    *slot = k;
                }
                if let Some(slot) = matrix.get_mut(j * len + i) {
                    *slot = k;
                }
            }
        }
        let mut position = vec![None; samples.len()];
        for (p, &i) in rows.iter().enumerate() {
            if let Some(slot) = position.get_mut(i) {
                *slot = Some(p);
            }
        }
        Some(Self {
            reference: EmbeddingReference {
                dim,
                sigma,
                within,
                vectors: reference,
                null: Null::default(),
            },
            has,
            position,
            len,
            kernel: matrix,
        })
    }

    fn k(&self, a: usize, b: usize) -> f64 {
        f64::from(self.kernel.get(a * self.len + b).copied().unwrap_or(0.0))
    }

    /// The split's reference (the first `keep` kept calibration rows, as large as the
    /// profile's) and its held-out pool.
    fn split(&self, kept: &[usize], held: &[usize], keep: usize) -> SplitEmbeddings {
        let positions = |rows: &[usize]| -> Vec<usize> {
            rows.iter()
                .filter_map(|&i| self.position.get(i).copied().flatten())
                .collect()
        };
        let mut reference = positions(kept);
        reference.truncate(keep);
        let pool = positions(held);
        let mut within = 0.0;
        for (i, &a) in reference.iter().enumerate() {
            for &b in &reference[i + 1..] {
                within += self.k(a, b);
            }
        }
        let r = reference.len() as f64;
        let within = if reference.len() > 1 {
            2.0 * within / (r * (r - 1.0))
        } else {
            0.0
        };
        let mut cross = vec![0.0; self.len];
        for &p in &pool {
            if let Some(slot) = cross.get_mut(p) {
                *slot = reference.iter().map(|&y| self.k(p, y)).sum::<f64>() / r.max(1.0);
            }
        }
        SplitEmbeddings {
            pool,
            cross,
            within,
        }
    }

    /// Unbiased MMD² of calibration rows `picks` (drawn with replacement from the split's
    /// pool) against the split's reference. Pairs that picked the same row twice are left out
    /// of the within-window mean: they are one request counted twice, not two requests.
    fn pool_mmd2(&self, split: &SplitEmbeddings, picks: &[usize]) -> f64 {
        if picks.len() < 2 {
            return 0.0;
        }
        let (mut sum, mut pairs) = (0.0f64, 0usize);
        for (i, &a) in picks.iter().enumerate() {
            let row = self
                .kernel
                .get(a * self.len..(a + 1) * self.len)
                .unwrap_or(&[]);
            for &b in &picks[i + 1..] {
                if a != b {
                    sum += f64::from(row.get(b).copied().unwrap_or(0.0));
                    pairs += 1;
                }
            }
        }
        let within = if pairs > 0 { sum / pairs as f64 } else { 0.0 };
        let between = picks
            .iter()
            .map(|&a| split.cross.get(a).copied().unwrap_or(0.0))
            .sum::<f64>()
            / picks.len() as f64;
        within + split.within - 2.0 * between
    }
}

/// A number with a precision that suits its size.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain numeric samples: prompt length from a small cycle, a few refusals.
    fn samples(n: usize) -> Vec<Features> {
        let mut rng = SplitMix64::new(3);
        (0..n)
            .map(|_| Features {
                prompt_chars: 100 + rng.below(400) as u32,
                prompt_tokens: 25 + rng.below(100) as u32,
                turns: 1 + rng.below(3) as u32,
                language: "eng".into(),
                refused: rng.below(50) == 0,
                ..Features::default()
            })
            .collect()
    }

    #[test]
    fn too_few_samples_is_a_clear_error() {
        let cfg = ProfileConfig::default();
        let err = Profile::build(&samples(300), &cfg).unwrap_err();
        assert_eq!(
            err,
            DriftError::TooFewSamples {
                have: 300,
                need: 400
            }
        );
        assert!(err.to_string().contains("300, need at least 400"));
        let big_window = ProfileConfig { window: 500, ..cfg };
        assert_eq!(
            Profile::build(&samples(900), &big_window).unwrap_err(),
            DriftError::TooFewSamples {
                have: 900,
                need: 1000
            }
        );
    }

    #[test]
    fn every_config_problem_is_reported_at_once() {
        let cfg = ProfileConfig {
            window: 1,
            false_alarm_rate: 0.0,
            numeric_bins: 1,
            ..ProfileConfig::default()
        };
        let DriftError::InvalidConfig(message) = cfg.validate().unwrap_err() else {
            panic!("not a config error")
        };
        for field in ["window", "false_alarm_rate", "numeric_bins"] {
            assert!(message.contains(field), "{message}");
        }
        assert!(ProfileConfig::default().validate().is_ok());
        let parsed: ProfileConfig = serde_json::from_str(r#"{"window": 50}"#).unwrap();
        assert_eq!(
            parsed,
            ProfileConfig {
                window: 50,
                ..ProfileConfig::default()
            }
        );
        assert!(serde_json::from_str::<ProfileConfig>(r#"{"windw": 50}"#).is_err());
    }

    #[test]
    fn features_missing_from_the_reference_are_not_tested() {
        let profile = Profile::build(&samples(600), &ProfileConfig::default()).unwrap();
        let names: Vec<&str> = profile.thresholds().iter().map(|t| t.0).collect();
        assert!(names.contains(&"prompt_chars") && names.contains(&"refused"));
        // No scores and no embeddings in any sample: no guard, router or MMD test.
        assert!(!names.contains(&"guard_score") && !names.contains(&"router_score"));
        assert!(!names.contains(&"embedding"));
        assert!(profile.thresholds().iter().all(|t| t.2.is_finite()));
        assert_eq!(profile.test(&[]), WindowReport::default());
    }

    #[test]
    fn the_same_samples_and_seed_give_the_same_profile() {
        let cfg = ProfileConfig::default();
        let a = Profile::build(&samples(600), &cfg).unwrap();
        assert_eq!(a, Profile::build(&samples(600), &cfg).unwrap());
        let other_seed = ProfileConfig { seed: 9, ..cfg };
        assert_ne!(a, Profile::build(&samples(600), &other_seed).unwrap());
    }

    #[test]
    fn a_new_category_moves_the_feature_only_past_the_minimum_effect() {
        let profile = Profile::build(&samples(600), &ProfileConfig::default()).unwrap();
        let mut window = samples(200);
        // Three requests in a new language: χ² jumps, but a 1.5% move is below min_effect.
        for f in window.iter_mut().take(3) {
            f.language = "fra".into();
        }
        let language = |r: &WindowReport| {
            r.features
                .iter()
                .find(|f| f.name == "language")
                .cloned()
                .unwrap()
        };
        let few = profile.test(&window);
        assert!(!language(&few).drifted, "{:?}", language(&few));
        for f in window.iter_mut().take(40) {
            f.language = "fra".into();
        }
        let many = language(&profile.test(&window));
        assert!(many.drifted, "{many:?}");
        assert!(many.detail.contains("(other: fra)"), "{}", many.detail);
    }
}
