//! The PostgreSQL pool the three stores share, and its schema (`migrations/postgres`).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::db::Embedded;

/// The PostgreSQL schema, oldest first.
pub const POSTGRES_MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "admin events",
        include_str!("../../migrations/postgres/0002_admin_events.sql"),
    ),
    (
        3,
        "per-minute stats",
        include_str!("../../migrations/postgres/0003_stats_minute.sql"),
    ),
    (
        4,
        "drift and evaluations",
        include_str!("../../migrations/postgres/0004_analytics.sql"),
    ),
]);

/// Connects a pool of `max_connections` and applies pending migrations (under
/// PostgreSQL's advisory lock, so gateways starting together migrate once).
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await?;
    POSTGRES_MIGRATIONS.run(&pool).await?;
    Ok(pool)
}
