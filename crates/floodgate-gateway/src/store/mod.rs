//! The state stores — keys, decision records with their usage, feedback — opened
//! together from `[store]`: SQLite (one embedded file, the default) or PostgreSQL (one
//! pool shared by the three stores, and one database shared by every gateway).
//!
//! Each store is a trait ([`KeyStore`], [`RecordStore`], [`FeedbackStore`]) with one
//! implementation per backend beside it (`sqlite.rs`, `postgres.rs`); this module only
//! picks the backend, opens it and applies its migrations.
//!
//! **Architecture invariant:** nothing outside the store implementations knows which
//! backend is in use; the rest of the gateway holds `Arc<dyn …Store>`.

mod postgres;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;

use crate::analytics::{AnalyticsStore, PgAnalyticsStore, SqliteAnalyticsStore};
use crate::auth::{KeyStore, PgKeyStore, SqliteKeyStore};
use crate::config::{Config, StoreUrl};
use crate::feedback::{FeedbackStore, PgFeedbackStore, SqliteFeedbackStore};
use crate::records::{PgRecordStore, RecordStore, SqliteRecordStore};

pub use crate::db::Embedded;
pub use postgres::POSTGRES_MIGRATIONS;

/// The three stores a gateway (or a CLI command) works with.
pub struct Stores {
    pub keys: Arc<dyn KeyStore>,
    pub records: Arc<dyn RecordStore>,
    pub feedback: Arc<dyn FeedbackStore>,
    /// Drift profiles and state, retrain suggestions, evaluation runs.
    pub analytics: Arc<dyn AnalyticsStore>,
}

impl Stores {
    /// Opens the configured store (creating and migrating its schema if needed).
    pub async fn open(config: &Config) -> anyhow::Result<Stores> {
        let max = config.store.max_connections;
        match config.store_url()? {
            StoreUrl::Sqlite(path) => Self::open_sqlite(&path, max)
                .await
                .with_context(|| format!("store {}", path.display())),
            StoreUrl::Postgres(url) => {
                let options = PgConnectOptions::from_str(&url)
                    .with_context(|| format!("store.url {}", crate::config::redact(&url)))?;
                Self::open_postgres(options, max)
                    .await
                    .with_context(|| format!("store {}", crate::config::redact(&url)))
            }
        }
    }

    /// SQLite at `path`: one WAL-mode file for all three stores.
    pub async fn open_sqlite(path: &Path, max_connections: u32) -> Result<Stores, sqlx::Error> {
        let pool = crate::db::open_sqlite_with(path, max_connections).await?;
        Ok(Stores {
            keys: Arc::new(SqliteKeyStore::from_pool(pool.clone())),
            records: Arc::new(SqliteRecordStore::from_pool(pool.clone())),
            feedback: Arc::new(SqliteFeedbackStore::from_pool(pool.clone())),
            analytics: Arc::new(SqliteAnalyticsStore::from_pool(pool)),
        })
    }

    /// PostgreSQL with these connection options (tests set a `search_path` here).
    pub async fn open_postgres(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Stores, sqlx::Error> {
        let pool = postgres::connect(options, max_connections).await?;
        Ok(Stores {
            keys: Arc::new(PgKeyStore::from_pool(pool.clone())),
            records: Arc::new(PgRecordStore::from_pool(pool.clone())),
            feedback: Arc::new(PgFeedbackStore::from_pool(pool.clone())),
            analytics: Arc::new(PgAnalyticsStore::from_pool(pool)),
        })
    }

    /// The configured store, for logs: the backend and where, never a password.
    pub fn describe(config: &Config) -> String {
        let from_env = config
            .store
            .url
            .trim()
            .strip_prefix("env::")
            .map(|name| format!(" (from ${name})"))
            .unwrap_or_default();
        match config.store_url() {
            Ok(StoreUrl::Sqlite(path)) => format!("sqlite {}{from_env}", path.display()),
            Ok(StoreUrl::Postgres(url)) => {
                format!("postgres {}{from_env}", crate::config::redact(&url))
            }
            Err(e) => format!("unusable store: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_the_backend_but_never_the_password() {
        let mut config = Config::default();
        config.auth.database = "/var/lib/fg.db".into();
        assert_eq!(Stores::describe(&config), "sqlite /var/lib/fg.db");
        config.store.url = "postgres://fg:hunter2@db:5432/fg?password=hunter2".into();
        let described = Stores::describe(&config);
        assert_eq!(described, "postgres postgres://fg:***@db:5432/fg");
        config.store.url = "env::FLOODGATE_SURELY_UNSET_STORE_URL".into();
        assert!(Stores::describe(&config).contains("FLOODGATE_SURELY_UNSET_STORE_URL"));
    }
}
