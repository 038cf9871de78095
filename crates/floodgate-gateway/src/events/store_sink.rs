//! The record store as a sink: request events become decision records, usage and
//! per-minute rollups, admin events admin records. Rollups older than
//! `dashboard.stats_retention_days` are deleted here, at most once an hour.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::records::RecordStore;

use super::{Event, Sink};

/// How often the sink deletes old rollups, at most (seconds).
const PRUNE_EVERY_SECS: i64 = 3600;

pub struct StoreSink {
    records: Arc<dyn RecordStore>,
    retention_days: u32,
    /// When rollups were last pruned (unix seconds; 0: not yet).
    pruned_at: AtomicI64,
}

impl StoreSink {
    pub fn new(records: Arc<dyn RecordStore>) -> Self {
        Self {
            records,
            retention_days: crate::config::DashboardConfig::default().stats_retention_days,
            pruned_at: AtomicI64::new(0),
        }
    }

    /// Keeps per-minute rollups for `days` days.
    pub fn with_retention(mut self, days: u32) -> Self {
        self.retention_days = days.max(1);
        self
    }

    /// Deletes rollups past the retention, when the last pruning is an hour old. A
    /// failure is logged and retried an hour later: it never holds back the events.
    async fn prune(&self) {
        let now = crate::clock::unix_secs();
        let last = self.pruned_at.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_SECS
            || self
                .pruned_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let before = now - i64::from(self.retention_days) * 86_400;
        match self.records.prune_stats(before).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "deleted per-minute rollups past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not delete old per-minute rollups"),
        }
    }
}

#[async_trait::async_trait]
impl Sink for StoreSink {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn apply(&self, events: &[Event]) -> anyhow::Result<()> {
        store(self.records.as_ref(), events).await?;
        self.prune().await;
        Ok(())
    }
}

/// Stores what the events say (idempotent by event id), whichever way they came.
pub(crate) async fn store(records: &dyn RecordStore, events: &[Event]) -> anyhow::Result<()> {
    let decisions: Vec<_> = events.iter().filter_map(Event::decision).collect();
    if !decisions.is_empty() {
        records.put_batch(&decisions).await?;
    }
    let admin: Vec<_> = events.iter().filter_map(Event::admin_record).collect();
    if !admin.is_empty() {
        records.put_admin(&admin).await?;
    }
    Ok(())
}
