//! The record store as a sink: request events become decision records and usage, admin
//! events admin records.

use std::sync::Arc;

use crate::records::RecordStore;

use super::{Event, Sink};

pub struct StoreSink {
    records: Arc<dyn RecordStore>,
}

impl StoreSink {
    pub fn new(records: Arc<dyn RecordStore>) -> Self {
        Self { records }
    }
}

#[async_trait::async_trait]
impl Sink for StoreSink {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn apply(&self, events: &[Event]) -> anyhow::Result<()> {
        store(self.records.as_ref(), events).await
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
