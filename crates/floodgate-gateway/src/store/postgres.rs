//! The PostgreSQL pool the three stores share, and its schema (`migrations/postgres`).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::Embedded;

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
