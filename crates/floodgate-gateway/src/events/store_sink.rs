//! The record store as a sink: request events become decision records and usage.

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
        let decisions: Vec<_> = events.iter().filter_map(Event::decision).collect();
        if !decisions.is_empty() {
            self.records.put_batch(&decisions).await?;
        }
        Ok(())
    }
}
