//! The embedded state database: one SQLite file (WAL mode, so the `floodgate` CLI can
//! write while the server reads) shared by the key, record and feedback stores, with its
//! schema kept by versioned migrations (`migrations/sqlite`); and [`Embedded`], the
//! migrations compiled into the binary, which the PostgreSQL store uses too.

use std::borrow::Cow;
use std::path::Path;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;

/// The SQLite schema, oldest first. Version 1 is the schema from before migrations
/// (every statement `IF NOT EXISTS`), so older databases upgrade in place.
pub const SQLITE_MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "event ids and key epoch",
        include_str!("../migrations/sqlite/0002_event_ids_and_key_epoch.sql"),
    ),
    (
        3,
        "admin events",
        include_str!("../migrations/sqlite/0003_admin_events.sql"),
    ),
    (
        4,
        "per-minute stats",
        include_str!("../migrations/sqlite/0004_stats_minute.sql"),
    ),
    (
        5,
        "drift and evaluations",
        include_str!("../migrations/sqlite/0005_analytics.sql"),
    ),
]);

/// Opens (creating and migrating if needed) the database at `path`, with a small pool.
pub async fn open_sqlite(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    open_sqlite_with(path, 4).await
}

/// Opens (creating and migrating if needed) the database at `path`.
pub async fn open_sqlite_with(
    path: &Path,
    max_connections: u32,
) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await?;
    SQLITE_MIGRATIONS.run(&pool).await?;
    Ok(pool)
}

/// Migrations compiled into the binary: (version, description, SQL), oldest first.
/// Applied by sqlx's [`Migrator`], which records each version (and its checksum) in
/// `_sqlx_migrations` and applies each pending one in its own transaction.
#[derive(Debug, Clone, Copy)]
pub struct Embedded(pub &'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

impl Embedded {
    /// Applies the pending migrations to the database behind `pool`.
    pub async fn run<'a, A>(self, pool: A) -> Result<(), sqlx::Error>
    where
        A: sqlx::Acquire<'a>,
        <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
    {
        let migrator = Migrator::new(self).await?;
        migrator.run(pool).await?;
        Ok(())
    }
}
