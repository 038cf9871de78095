//! `[store]`: where keys, decision records, usage and feedback live.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The state database: SQLite (embedded, the default) or PostgreSQL (shared by every
/// gateway pointing at it). Built once at start; a change needs a restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `""` (SQLite at the state database path), `sqlite://PATH`, `postgres://…` /
    /// `postgresql://…`, or `env::NAME` to read the URL from an environment variable, so
    /// a database password never sits in the file.
    pub url: String,
    /// Connections in the pool the three stores share.
    pub max_connections: u32,
    /// How often each gateway asks the key store whether a key was created or revoked
    /// (and drops its cached keys if so): the bound on how long a revocation takes.
    pub key_cache_refresh_ms: u64,
    /// While the key store cannot be read, how long cached keys keep being served (s):
    /// a store outage does not stop the gateways; a revocation made elsewhere meanwhile
    /// applies once the store is readable again. 0: cached keys are dropped at the first
    /// failed check, which makes the store a dependency of every request.
    pub key_cache_stale_seconds: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            key_cache_refresh_ms: 250,
            key_cache_stale_seconds: 300,
        }
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// SQLite at this path.
    Sqlite(PathBuf),
    /// PostgreSQL at this URL (it may hold a password: never log it as is).
    Postgres(String),
}

impl StoreUrl {
    /// Parses a resolved URL (not `env::NAME`); `""` is SQLite at `default_sqlite`.
    pub fn parse(url: &str, default_sqlite: PathBuf) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Self::Sqlite(default_sqlite));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return if path.is_empty() {
                Err("`sqlite://` needs a file path, e.g. `sqlite:///var/lib/floodgate.db`".into())
            } else {
                Ok(Self::Sqlite(PathBuf::from(path)))
            };
        }
        let scheme = url.split("://").next().unwrap_or_default();
        if url.contains("://") && matches!(scheme, "postgres" | "postgresql") {
            return Ok(Self::Postgres(url.to_string()));
        }
        Err(format!(
            "`{}` is not a store URL: use `sqlite://PATH`, `postgres://USER@HOST/DB` (or `postgresql://…`), `env::NAME`, or \"\" for SQLite at the state database",
            redact(url)
        ))
    }
}

/// The URL without its password and query string (which may carry one), for messages.
pub fn redact(url: &str) -> String {
    let without_query = url.split('?').next().unwrap_or_default();
    let Some((scheme, rest)) = without_query.split_once("://") else {
        return without_query.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{user}{hidden}@{host}")
        }
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{path}")
}

impl StoreConfig {
    /// Problems with this section, each with its path. An `env::NAME` URL is checked
    /// when the store opens (the variable may be set only where the server runs).
    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        match self.url.trim().strip_prefix("env::") {
            Some(name) if name.is_empty() || name.contains(char::is_whitespace) => {
                errors.push(format!(
                    "store.url: `env::{name}` must name an environment variable"
                ));
            }
            Some(_) => {}
            None => {
                if let Err(e) = StoreUrl::parse(&self.url, PathBuf::new()) {
                    errors.push(format!("store.url: {e}"));
                }
            }
        }
        if self.max_connections == 0 {
            errors.push("store.max_connections: must be at least 1".into());
        }
        if !(1..=1000).contains(&self.key_cache_refresh_ms) {
            errors.push(
                "store.key_cache_refresh_ms: must be between 1 and 1000 (a revocation must take effect within a second)"
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_a_backend_or_a_clear_error() {
        let d = PathBuf::from("/d.db");
        assert_eq!(
            StoreUrl::parse("", d.clone()),
            Ok(StoreUrl::Sqlite(d.clone()))
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///x/s.db", d.clone()),
            Ok(StoreUrl::Sqlite("/x/s.db".into()))
        );
        for pg in [
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db?sslmode=disable",
        ] {
            assert_eq!(
                StoreUrl::parse(pg, d.clone()),
                Ok(StoreUrl::Postgres(pg.into()))
            );
        }
        for bad in [
            "mysql://u:secret@h/db",
            "sqlite://",
            "postgres:/x",
            "/path.db",
        ] {
            let e = StoreUrl::parse(bad, d.clone()).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn redaction_hides_the_password_and_query() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/fg?password=x"),
            "postgres://app:***@db:5432/fg"
        );
        assert_eq!(redact("postgres://app@db/fg"), "postgres://app@db/fg");
        assert_eq!(redact("postgres://db"), "postgres://db");
    }

    #[test]
    fn bad_values_are_config_errors() {
        let c = StoreConfig {
            url: "redis://x".into(),
            max_connections: 0,
            key_cache_refresh_ms: 5000,
            key_cache_stale_seconds: 300,
        };
        let mut errors = Vec::new();
        c.validate(&mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
        let mut errors = Vec::new();
        StoreConfig {
            url: "env::".into(),
            ..StoreConfig::default()
        }
        .validate(&mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
