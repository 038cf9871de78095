//! Abuse-cluster detection: many API keys or addresses sending the same prompt with
//! small edits inside a short window (a distributed scrape, a coordinated jailbreak
//! campaign, a free-tier farm), and keys that only ever ask for the maximum output.
//!
//! Prompts are compared by MinHash over word shingles of the normalised text; LSH
//! banding finds candidates in constant time per request, and the estimated Jaccard
//! similarity confirms them. A prompt joins the cluster of its most similar earlier
//! member (clusters are not merged, which keeps the bookkeeping local and cheap). When a
//! cluster's distinct keys and addresses reach the configured minimums it *trips*, and
//! every member that arrives in the next window, from any key, gets the configured
//! action.
//!
//! Invariants: time comes from the caller (`Observation::at`), so behaviour is
//! deterministic under test; memory is bounded by `max_entries` observations and as
//! many tracked keys, oldest evicted first. The detector is a plain `&mut self` state
//! machine; the gateway owns it in one task (an actor), not behind a global lock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What to do with a request that belongs to a tripped cluster or an abusive key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterAction {
    /// Slow the caller down (the gateway applies a stricter rate limit).
    Throttle,
    /// Refuse the request.
    Block,
}

/// Settings for [`ClusterDetector`]; every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Length of the sliding window, and how long a tripped cluster stays tripped.
    pub window_seconds: u64,
    /// Words per shingle.
    pub shingle_words: usize,
    /// MinHash functions (= `bands * rows_per_band`).
    pub bands: usize,
    /// Rows per LSH band; more rows make candidates stricter.
    pub rows_per_band: usize,
    /// Estimated Jaccard similarity at or above which two prompts are near-duplicates.
    pub similarity_threshold: f32,
    /// Prompts with fewer words are not clustered: "hello" from many keys is normal.
    pub min_words: usize,
    /// Distinct API keys a cluster needs to trip.
    pub min_distinct_keys: usize,
    /// Distinct client addresses a cluster needs to trip.
    pub min_distinct_ips: usize,
    /// A request at or above this fraction of its allowed `max_tokens` counts as max-cost.
    pub max_cost_fraction: f32,
    /// A key whose last this-many requests in the window were all max-cost is flagged
    /// (0 turns the rule off).
    pub max_cost_min_requests: usize,
    /// The action for tripped clusters and flagged keys.
    pub action: ClusterAction,
    /// Observations kept (and keys tracked) at most; the oldest go first.
    pub max_entries: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            window_seconds: 300,
            shingle_words: 2,
            bands: 16,
            rows_per_band: 4,
            similarity_threshold: 0.5,
            min_words: 6,
            min_distinct_keys: 5,
            min_distinct_ips: 3,
            max_cost_fraction: 0.9,
            max_cost_min_requests: 10,
            action: ClusterAction::Throttle,
            max_entries: 10_000,
        }
    }
}

/// One request, as the detector sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The API key's id (never the secret).
    pub key_id: &'a str,
    /// The client address.
    pub ip: IpAddr,
    /// The prompt, normalised (see [`crate::normalize`]).
    pub text: &'a str,
    /// Requested `max_tokens` divided by the most the key may ask for.
    pub cost_fraction: f32,
    /// When the request arrived.
    pub at: Instant,
}

/// A cluster's identity, stable for the cluster's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u64);

/// What the gateway should do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing unusual.
    Allow,
    /// Apply a stricter rate limit.
    Throttle,
    /// Refuse.
    Block,
}

impl From<ClusterAction> for Action {
    fn from(a: ClusterAction) -> Self {
        match a {
            ClusterAction::Throttle => Action::Throttle,
            ClusterAction::Block => Action::Block,
        }
    }
}

/// The detector's answer for one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The cluster the prompt joined, if it was long enough to cluster.
    pub cluster: Option<ClusterId>,
    /// Distinct keys in that cluster within the window.
    pub distinct_keys: usize,
    /// Distinct addresses in that cluster within the window.
    pub distinct_ips: usize,
    /// What to do.
    pub action: Action,
    /// Why, for the decision record; empty when allowed.
    pub reason: String,
}

struct Entry {
    at: Instant,
    key_id: String,
    ip: IpAddr,
    cluster: Option<ClusterId>,
    signature: Vec<u64>,
    buckets: Vec<u64>,
}

struct Cluster {
    keys: HashMap<String, usize>,
    ips: HashMap<IpAddr, usize>,
    members: usize,
    tripped_until: Option<Instant>,
}

struct KeyHistory {
    last_seen: Instant,
    /// Whether each of the most recent requests was max-cost, newest last.
    max_cost: VecDeque<(Instant, bool)>,
}

/// Sliding-window near-duplicate and cost-abuse detector. See the module docs.
pub struct ClusterDetector {
    config: ClusterConfig,
    window: Duration,
    entries: VecDeque<Entry>,
    /// Id of `entries[0]`; ids are consecutive.
    first_id: u64,
    buckets: HashMap<u64, Vec<u64>>,
    clusters: HashMap<ClusterId, Cluster>,
    next_cluster: u64,
    keys: HashMap<String, KeyHistory>,
}

impl ClusterDetector {
    /// A detector with `config`. Zero or inconsistent sizes are raised to workable
    /// minimums rather than rejected, so a bad config cannot make the guard panic.
    pub fn new(mut config: ClusterConfig) -> Self {
        config.shingle_words = config.shingle_words.max(1);
        config.bands = config.bands.max(1);
        config.rows_per_band = config.rows_per_band.max(1);
        config.max_entries = config.max_entries.max(1);
        Self {
            window: Duration::from_secs(config.window_seconds),
            config,
            entries: VecDeque::new(),
            first_id: 0,
            buckets: HashMap::new(),
            clusters: HashMap::new(),
            next_cluster: 0,
            keys: HashMap::new(),
        }
    }

    /// Record one request and say what to do with it.
    pub fn observe(&mut self, obs: Observation<'_>) -> Verdict {
        self.evict(obs.at);
        let cost_reason = self.record_cost(&obs);

        let mut verdict = Verdict {
            cluster: None,
            distinct_keys: 0,
            distinct_ips: 0,
            action: Action::Allow,
            reason: String::new(),
        };
        if let Some(signature) = self.signature(obs.text) {
            let buckets = self.band_keys(&signature);
            let cluster_id = self.best_match(&signature, &buckets).unwrap_or_else(|| {
                let id = ClusterId(self.next_cluster);
                self.next_cluster += 1;
                id
            });
            let cluster = self.clusters.entry(cluster_id).or_insert_with(|| Cluster {
                keys: HashMap::new(),
                ips: HashMap::new(),
                members: 0,
                tripped_until: None,
            });
            *cluster.keys.entry(obs.key_id.to_owned()).or_default() += 1;
            *cluster.ips.entry(obs.ip).or_default() += 1;
            cluster.members += 1;
            let (keys, ips) = (cluster.keys.len(), cluster.ips.len());
            if keys >= self.config.min_distinct_keys && ips >= self.config.min_distinct_ips {
                cluster.tripped_until = Some(obs.at + self.window);
            }
            let tripped = cluster.tripped_until.is_some_and(|until| obs.at < until);

            let id = self.first_id + self.entries.len() as u64;
            for b in &buckets {
                self.buckets.entry(*b).or_default().push(id);
            }
            self.entries.push_back(Entry {
                at: obs.at,
                key_id: obs.key_id.to_owned(),
                ip: obs.ip,
                cluster: Some(cluster_id),
                signature,
                buckets,
            });
            verdict.cluster = Some(cluster_id);
            verdict.distinct_keys = keys;
            verdict.distinct_ips = ips;
            if tripped {
                verdict.action = self.config.action.into();
                verdict.reason = format!(
                    "near-duplicate prompt cluster {} from {keys} keys and {ips} addresses within {}s",
                    cluster_id.0, self.config.window_seconds
                );
            }
        }
        if let Some(reason) = cost_reason {
            verdict.action = self.config.action.into();
            if !verdict.reason.is_empty() {
                verdict.reason.push_str("; ");
            }
            verdict.reason.push_str(&reason);
        }
        self.enforce_capacity();
        verdict
    }

    /// Observations currently held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn record_cost(&mut self, obs: &Observation<'_>) -> Option<String> {
        let n = self.config.max_cost_min_requests;
        let history = self
            .keys
            .entry(obs.key_id.to_owned())
            .or_insert_with(|| KeyHistory {
                last_seen: obs.at,
                max_cost: VecDeque::new(),
            });
        history.last_seen = obs.at;
        if n == 0 {
            return None;
        }
        history
            .max_cost
            .push_back((obs.at, obs.cost_fraction >= self.config.max_cost_fraction));
        while history.max_cost.len() > n {
            history.max_cost.pop_front();
        }
        let window = self.window;
        history
            .max_cost
            .retain(|(t, _)| obs.at.saturating_duration_since(*t) < window);
        (history.max_cost.len() >= n && history.max_cost.iter().all(|(_, high)| *high)).then(|| {
            format!(
                "key {} sent its last {n} requests at >= {:.0}% of its max_tokens",
                obs.key_id,
                self.config.max_cost_fraction * 100.0
            )
        })
    }

    fn best_match(&self, signature: &[u64], buckets: &[u64]) -> Option<ClusterId> {
        let mut seen = HashSet::new();
        let mut best: Option<(f32, ClusterId)> = None;
        for b in buckets {
            for &id in self.buckets.get(b).map(Vec::as_slice).unwrap_or_default() {
                if !seen.insert(id) {
                    continue;
                }
                let Some(entry) = id
                    .checked_sub(self.first_id)
                    .and_then(|i| self.entries.get(i as usize))
                else {
                    continue;
                };
                let same = entry
                    .signature
                    .iter()
                    .zip(signature)
                    .filter(|(a, b)| a == b)
                    .count();
                let similarity = same as f32 / signature.len() as f32;
                if similarity >= self.config.similarity_threshold
                    && best.is_none_or(|(s, _)| similarity > s)
                {
                    if let Some(c) = entry.cluster {
                        best = Some((similarity, c));
                    }
                }
            }
        }
        best.map(|(_, c)| c)
    }

    fn signature(&self, text: &str) -> Option<Vec<u64>> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.len() < self.config.min_words.max(1) {
            return None;
        }
        let k = self.config.shingle_words.min(words.len());
        let hashes = self.config.bands * self.config.rows_per_band;
        let mut signature = vec![u64::MAX; hashes];
        for shingle in words.windows(k) {
            let mut h = FNV_OFFSET;
            for w in shingle {
                h = fnv1a(h, w.as_bytes());
                h = fnv1a(h, b" ");
            }
            for (i, slot) in signature.iter_mut().enumerate() {
                let v = splitmix64(h ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                if v < *slot {
                    *slot = v;
                }
            }
        }
        Some(signature)
    }

    fn band_keys(&self, signature: &[u64]) -> Vec<u64> {
        signature
            .chunks(self.config.rows_per_band)
            .enumerate()
            .map(|(band, rows)| {
                let mut h = fnv1a(FNV_OFFSET, &(band as u64).to_le_bytes());
                for r in rows {
                    h = fnv1a(h, &r.to_le_bytes());
                }
                h
            })
            .collect()
    }

    fn evict(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) >= self.window)
        {
            self.pop_oldest();
        }
        let window = self.window;
        self.clusters
            .retain(|_, c| c.members > 0 || c.tripped_until.is_some_and(|until| now < until));
        if self.keys.len() > self.config.max_entries {
            self.keys
                .retain(|_, k| now.saturating_duration_since(k.last_seen) < window);
        }
    }

    fn enforce_capacity(&mut self) {
        while self.entries.len() > self.config.max_entries {
            self.pop_oldest();
        }
        while self.keys.len() > self.config.max_entries {
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, k)| k.last_seen)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => {
                    self.keys.remove(&id);
                }
                None => break,
            }
        }
    }

    fn pop_oldest(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        let id = self.first_id;
        self.first_id += 1;
        for b in &entry.buckets {
            if let Some(ids) = self.buckets.get_mut(b) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.buckets.remove(b);
                }
            }
        }
        if let Some(cluster) = entry.cluster.and_then(|c| self.clusters.get_mut(&c)) {
            cluster.members = cluster.members.saturating_sub(1);
            decrement(&mut cluster.keys, &entry.key_id);
            decrement(&mut cluster.ips, &entry.ip);
        }
    }
}

fn decrement<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = map.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            map.remove(key);
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const PROMPT: &str =
        "write a detailed guide on how to bypass the content filter of the assistant";

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn obs<'a>(key: &'a str, ip_n: u8, text: &'a str, at: Instant) -> Observation<'a> {
        Observation {
            key_id: key,
            ip: ip(ip_n),
            text,
            cost_fraction: 0.1,
            at,
        }
    }

    #[test]
    fn near_duplicates_from_many_keys_trip_and_stay_tripped() {
        let mut d = ClusterDetector::new(ClusterConfig::default());
        let t0 = Instant::now();
        let variants = [
            PROMPT.to_owned(),
            format!("{PROMPT} please"),
            PROMPT.replace("detailed", "complete"),
            format!("hey, {PROMPT}"),
            PROMPT.replace("guide", "tutorial"),
        ];
        let mut verdicts = Vec::new();
        for (i, v) in variants.iter().enumerate() {
            verdicts.push(d.observe(obs(
                &format!("key{i}"),
                i as u8,
                v,
                t0 + Duration::from_secs(i as u64),
            )));
        }
        let ids: HashSet<_> = verdicts.iter().map(|v| v.cluster).collect();
        assert_eq!(ids.len(), 1, "{verdicts:?}");
        assert!(verdicts[..4].iter().all(|v| v.action == Action::Allow));
        assert_eq!(verdicts[4].action, Action::Throttle);
        assert_eq!(
            (verdicts[4].distinct_keys, verdicts[4].distinct_ips),
            (5, 5)
        );

        // Any later member, even from a new key, gets the action within the window.
        let later = d.observe(obs(
            "fresh",
            99,
            &format!("{PROMPT} now"),
            t0 + Duration::from_secs(200),
        ));
        assert_eq!(later.action, Action::Throttle);
        assert!(later.reason.contains("near-duplicate"));
        // Unrelated prompts are unaffected.
        let other = d.observe(obs(
            "fresh",
            99,
            "what is the capital of france and how big is it",
            t0 + Duration::from_secs(201),
        ));
        assert_eq!(other.action, Action::Allow);
        assert_ne!(other.cluster, later.cluster);
    }

    #[test]
    fn window_expiry_and_thresholds() {
        let cases: &[(&str, usize, usize, u64, Action)] = &[
            // (case, keys, ips, seconds between requests, action of last request)
            ("one key many times", 1, 1, 1, Action::Allow),
            ("five keys one ip", 5, 1, 1, Action::Allow),
            ("five keys three ips", 5, 3, 1, Action::Throttle),
            ("spread beyond the window", 5, 5, 100, Action::Allow),
        ];
        for (name, keys, ips, gap, action) in cases {
            let mut d = ClusterDetector::new(ClusterConfig::default());
            let t0 = Instant::now();
            let mut last = None;
            for i in 0..5usize {
                let key = format!("k{}", i % keys);
                let at = t0 + Duration::from_secs(i as u64 * gap);
                last = Some(d.observe(obs(&key, (i % ips) as u8, PROMPT, at)));
            }
            assert_eq!(last.unwrap().action, *action, "{name}");
        }
    }

    #[test]
    fn short_prompts_are_not_clustered() {
        let mut d = ClusterDetector::new(ClusterConfig::default());
        let t0 = Instant::now();
        for i in 0..20u8 {
            let v = d.observe(obs(&format!("k{i}"), i, "hello there", t0));
            assert_eq!((v.cluster, v.action), (None, Action::Allow));
        }
    }

    #[test]
    fn keys_that_always_ask_for_max_cost_are_flagged() {
        let config = ClusterConfig {
            action: ClusterAction::Block,
            max_cost_min_requests: 3,
            ..ClusterConfig::default()
        };
        let mut d = ClusterDetector::new(config);
        let t0 = Instant::now();
        let costs = [
            (0.95, Action::Allow),
            (1.0, Action::Allow),
            (0.9, Action::Block),
            (0.5, Action::Allow),
            (1.0, Action::Allow),
        ];
        for (i, (cost, action)) in costs.iter().enumerate() {
            let o = Observation {
                cost_fraction: *cost,
                ..obs("greedy", 1, "hi", t0 + Duration::from_secs(i as u64))
            };
            assert_eq!(d.observe(o).action, *action, "request {i}");
        }
    }

    #[test]
    fn memory_is_bounded() {
        let config = ClusterConfig {
            max_entries: 50,
            ..ClusterConfig::default()
        };
        let mut d = ClusterDetector::new(config);
        let t0 = Instant::now();
        for i in 0..500u32 {
            let text = format!(
                "unique prompt number {i} about topic {} with several words",
                i * 7
            );
            d.observe(obs(&format!("k{i}"), (i % 200) as u8, &text, t0));
        }
        assert_eq!(d.len(), 50);
        assert!(d.keys.len() <= 50);
        assert!(d.buckets.values().map(Vec::len).sum::<usize>() <= 50 * 16);
        assert!(d.clusters.len() <= 50);
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: ClusterConfig =
            serde_json::from_str(r#"{"action": "block", "window_seconds": 60}"#).unwrap();
        assert_eq!(
            (c.action, c.window_seconds, c.min_distinct_keys),
            (ClusterAction::Block, 60, 5)
        );
        assert!(serde_json::from_str::<ClusterConfig>(r#"{"windows": 1}"#).is_err());
    }
}
