//! Tumbling windows per key (route/model) tested against that key's profile.
//!
//! Plain owned state, `Send`: the analytics consumer owns one and feeds it in order. Keys
//! should come from configuration (routes, models), not from callers, since each key seen is
//! remembered.

use std::collections::HashMap;

use crate::features::Features;
use crate::profile::Profile;
use crate::report::WindowReport;

/// Counters for one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Requests pushed for the key.
    pub seen: u64,
    /// Requests in the current, unfinished window (0 without a profile).
    pub pending: usize,
    /// Windows tested.
    pub windows: u64,
    /// Windows that drifted.
    pub drifted: u64,
}

#[derive(Default)]
struct KeyState {
    profile: Option<Profile>,
    window: Vec<Features>,
    stats: KeyStats,
}

/// Routes each request's features to its key's window and tests full windows.
#[derive(Default)]
pub struct Monitor {
    keys: HashMap<String, KeyState>,
}

impl Monitor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the profile of `key` and starts a fresh window for it.
    pub fn set_profile(&mut self, key: impl Into<String>, profile: Profile) {
        let state = self.keys.entry(key.into()).or_default();
        state.window = Vec::with_capacity(profile.window);
        state.profile = Some(profile);
        state.stats.pending = 0;
    }

    /// Removes the profile of `key` (its counters stay); the key's partial window is dropped.
    pub fn remove_profile(&mut self, key: &str) -> Option<Profile> {
        let state = self.keys.get_mut(key)?;
        state.window = Vec::new();
        state.stats.pending = 0;
        state.profile.take()
    }

    pub fn profile(&self, key: &str) -> Option<&Profile> {
        self.keys.get(key).and_then(|s| s.profile.as_ref())
    }

    /// Adds one request. When the key's window reaches the profile's window size it is tested,
    /// the report returned and the window started again. Keys without a profile are counted
    /// only.
    pub fn push(&mut self, key: &str, features: Features) -> Option<WindowReport> {
        let state = match self.keys.get_mut(key) {
            Some(state) => state,
            None => self.keys.entry(key.to_owned()).or_default(),
        };
        state.stats.seen += 1;
        let profile = state.profile.as_ref()?;
        state.window.push(features);
        if state.window.len() < profile.window {
            state.stats.pending = state.window.len();
            return None;
        }
        let report = profile.test(&state.window);
        state.window.clear();
        state.stats.pending = 0;
        state.stats.windows += 1;
        state.stats.drifted += u64::from(report.drifted);
        Some(report)
    }

    pub fn stats(&self, key: &str) -> Option<KeyStats> {
        self.keys.get(key).map(|s| s.stats)
    }

    /// Every key seen or given a profile.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileConfig;
    use crate::rng::SplitMix64;

    fn features(rng: &mut SplitMix64, shift: u32) -> Features {
        Features {
            prompt_chars: 100 + shift + rng.below(200) as u32,
            turns: 1,
            ..Features::default()
        }
    }

    #[test]
    fn windows_tumble_per_key() {
        let mut rng = SplitMix64::new(1);
        let reference: Vec<Features> = (0..600).map(|_| features(&mut rng, 0)).collect();
        let cfg = ProfileConfig {
            window: 50,
            ..ProfileConfig::default()
        };
        let profile = Profile::build(&reference, &cfg).unwrap();
        let mut monitor = Monitor::new();
        monitor.set_profile("a", profile);

        for i in 1..50 {
            assert!(
                monitor.push("a", features(&mut rng, 1000)).is_none(),
                "report before the window filled ({i})"
            );
            assert!(monitor.push("b", features(&mut rng, 0)).is_none());
        }
        assert_eq!(monitor.stats("a").unwrap().pending, 49);
        let report = monitor.push("a", features(&mut rng, 1000)).unwrap();
        assert_eq!(report.n, 50);
        assert!(report.moved().contains(&"prompt_chars"));
        assert_eq!(
            monitor.stats("a").unwrap(),
            KeyStats {
                seen: 50,
                pending: 0,
                windows: 1,
                drifted: 1
            }
        );
        // "b" has no profile: counted, never tested or buffered.
        assert_eq!(
            monitor.stats("b").unwrap(),
            KeyStats {
                seen: 49,
                pending: 0,
                windows: 0,
                drifted: 0
            }
        );
        let mut keys: Vec<&str> = monitor.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "b"]);

        assert!(monitor.remove_profile("a").is_some());
        assert!(monitor.push("a", features(&mut rng, 0)).is_none());
        assert_eq!(monitor.stats("a").unwrap().seen, 51);
    }

    #[test]
    fn a_monitor_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<Monitor>();
        send::<Profile>();
    }
}
