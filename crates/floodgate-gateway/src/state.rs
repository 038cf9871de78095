//! What every handler and pipeline stage shares: the configuration and the services
//! built from it. It sits above the services (auth, admission, guard, routes, stores)
//! and below the pipeline and the HTTP layer, so none of the services sees it.

use std::sync::Arc;

use crate::config::Config;
use crate::{admission, auth, cascade, events, feedback, guard, records, registry};

/// Shared, read-mostly state handed to every handler: one reference-counted pointer,
/// so the per-request clones that axum's layers and extractors make cost one atomic
/// increment, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What [`AppState`] points to.
pub struct Services {
    /// The running configuration; a reload swaps it whole ([`AppState::config`] reads it).
    pub config: Arc<arc_swap::ArcSwap<Config>>,
    pub registry: Arc<registry::ModelRegistry>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub auth: Arc<auth::Auth>,
    pub admission: Arc<admission::Admission>,
    pub guard: Arc<guard::Guard>,
    pub feedback: Arc<dyn feedback::FeedbackStore>,
    pub routes: Arc<cascade::Routes>,
    pub records: Arc<dyn records::RecordStore>,
    /// Drift profiles and state, retrain suggestions, evaluation runs.
    pub analytics: Arc<dyn crate::analytics::AnalyticsStore>,
    /// Keys' spend against their budgets (shared through Redis with a Redis limiter).
    pub budgets: Arc<crate::budget::Budgets>,
    /// Where every request's event goes (the durable local log, then the sinks).
    pub events: Arc<events::Spine>,
}

impl Services {
    /// The configuration as it is now. A request takes it once per use; a reload that
    /// lands meanwhile applies from the next read.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Records an operator's action as an admin event: into the log, then the sinks
    /// (the store's `admin_events`, JetStream's `<prefix>.admin`). It waits for the log
    /// as a request's event does, so an acknowledged change has its event.
    pub async fn admin_event(
        &self,
        action: &str,
        actor: &str,
        target: &str,
        detail: serde_json::Value,
    ) {
        let event = events::Event::admin(
            self.events.origin.clone(),
            events::AdminEvent {
                action: action.to_string(),
                actor: actor.to_string(),
                target: target.to_string(),
                detail,
            },
        );
        self.events.record(&event, None).await;
    }
}
