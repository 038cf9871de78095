//! `[dashboard]`: the operators' web page (`GET /dashboard`) and its sessions, and how
//! long the per-minute rollups it reads are kept.

use serde::{Deserialize, Serialize};

/// The dashboard and its sign-in sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// How long a browser session (the `fg_session` cookie) lasts, in minutes.
    pub session_ttl_minutes: u64,
    /// The key that signs session cookies: `env::NAME`, or empty for a random key per
    /// process (sessions then end with a restart and work on this gateway only).
    pub session_secret: String,
    /// Mark the session cookie `Secure` (browsers then send it over HTTPS only); it is
    /// also set whenever a request arrived with `X-Forwarded-Proto: https`.
    pub secure_cookie: bool,
    /// Per-minute rollups older than this are deleted by the store sink.
    pub stats_retention_days: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 60,
            session_secret: String::new(),
            secure_cookie: false,
            stats_retention_days: 14,
        }
    }
}

impl DashboardConfig {
    pub fn validate(&self, errors: &mut Vec<String>) {
        if !(1..=7 * 24 * 60).contains(&self.session_ttl_minutes) {
            errors
                .push("dashboard.session_ttl_minutes: must be between 1 and 10080 (a week)".into());
        }
        let secret = self.session_secret.trim();
        if !secret.is_empty() && !secret.starts_with("env::") {
            errors.push(
                "dashboard.session_secret: must be `env::NAME` (secrets never sit in the file)"
                    .into(),
            );
        }
        if self.stats_retention_days == 0 {
            errors.push("dashboard.stats_retention_days: must be at least 1".into());
        }
    }
}
