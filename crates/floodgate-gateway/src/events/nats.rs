//! NATS JetStream: the events sink (one subject per event kind, `Nats-Msg-Id` = event
//! id so the stream stores a replayed event once) and the analytics role's consumer
//! (a durable pull consumer with explicit acknowledgements, writing into the store).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

use crate::config::EventsConfig;
use crate::records::RecordStore;

use super::{Event, Sink};

/// A JetStream connection and the events stream.
#[derive(Clone)]
pub struct JetStream {
    context: jetstream::Context,
    stream: String,
    prefix: String,
    dedup_window: Duration,
}

impl JetStream {
    /// Connects to `events.nats_url` (reconnecting in the background whenever the
    /// server is away, from the first attempt on), and makes sure the stream exists
    /// when the server is there.
    pub async fn connect(config: &EventsConfig) -> anyhow::Result<Self> {
        let url = crate::config::resolve_secret(&config.nats_url)?;
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .connect(url.as_str())
            .await?;
        let js = Self {
            context: jetstream::new(client),
            stream: config.nats_stream.clone(),
            prefix: config.nats_subject_prefix.clone(),
            dedup_window: Duration::from_secs(config.nats_dedup_window_seconds),
        };
        if let Err(e) = js.ensure_stream().await {
            tracing::warn!(error = %e, "NATS JetStream not reachable yet; events wait in the local log");
        }
        Ok(js)
    }

    async fn ensure_stream(&self) -> anyhow::Result<stream::Stream> {
        let stream = self
            .context
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                duplicate_window: self.dedup_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        Ok(stream)
    }

    pub fn subject(&self, kind: &str) -> String {
        format!("{}.{kind}", self.prefix)
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    pub fn stream_name(&self) -> &str {
        &self.stream
    }
}

#[async_trait::async_trait]
impl Sink for JetStream {
    fn name(&self) -> &'static str {
        "nats"
    }

    /// Publishes the batch, then waits for every acknowledgement: one round trip per
    /// batch, not per event.
    async fn apply(&self, events: &[Event]) -> anyhow::Result<()> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event)?;
            let publish = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(event.id.as_str());
            let ack = match self
                .context
                .send_publish(self.subject(event.body.kind()), publish)
                .await
            {
                Ok(ack) => ack,
                Err(e) => {
                    // The stream may be missing (a fresh server): create it and retry.
                    let _ = self.ensure_stream().await;
                    return Err(e.into());
                }
            };
            acks.push(ack);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }
}

/// The analytics role's loop: events of every kind from the stream into the record store,
/// acknowledged only once stored (redelivered otherwise), until `stop`.
pub async fn consume_into_store(
    js: JetStream,
    records: Arc<dyn RecordStore>,
    batch: usize,
    also: Option<Arc<dyn super::Sink>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        let result = tokio::select! {
            r = consume_batches(&js, records.as_ref(), batch, also.as_deref()) => r,
            _ = stop.changed() => return,
        };
        if let Err(e) = result {
            metrics::counter!("floodgate_analytics_errors_total").increment(1);
            tracing::warn!(error = %e, "analytics: consuming events failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

async fn consume_batches(
    js: &JetStream,
    records: &dyn RecordStore,
    batch: usize,
    also: Option<&dyn super::Sink>,
) -> anyhow::Result<()> {
    let stream = js.ensure_stream().await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            "floodgate-analytics",
            consumer::pull::Config {
                durable_name: Some("floodgate-analytics".into()),
                filter_subject: js.subject(">"),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .await?;
    loop {
        let mut messages = consumer
            .fetch()
            .max_messages(batch)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        let mut got = Vec::new();
        while let Some(m) = messages.next().await {
            got.push(m.map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        if got.is_empty() {
            continue;
        }
        let events: Vec<Event> = got
            .iter()
            .filter_map(|m| match serde_json::from_slice::<Event>(&m.payload) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::error!(error = %e, "analytics: undecodable event skipped");
                    None
                }
            })
            .collect();
        super::store_sink::store(records, &events).await?;
        // Before the acks: a batch redelivered after a crash here is fed twice, which
        // drift tolerates (one window a little fuller); a stored batch never waits on it.
        if let Some(sink) = also {
            if let Err(e) = sink.apply(&events).await {
                tracing::warn!(sink = sink.name(), error = %e, "analytics: batch not applied");
            }
        }
        for m in &got {
            m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        metrics::counter!("floodgate_analytics_events_total").increment(got.len() as u64);
    }
}
