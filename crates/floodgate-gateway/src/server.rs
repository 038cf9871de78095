//! Running the server: bind, load models in the background, serve, shut down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ModelConfig};
pub use crate::model_cache::{model_spec, model_store};
use crate::registry::{ModelRegistry, ModelState};
use crate::AppState;

/// The learned layer of the guard: whatever trained heads are installed.
#[cfg(feature = "engine")]
fn learned_scorer(config: &Config) -> Option<Arc<dyn crate::guard::LearnedScorer>> {
    let learned = crate::learned::EmbeddingScorer::load(config);
    match &learned {
        Some(l) => {
            use crate::guard::LearnedScorer as _;
            tracing::info!(
                dir = %crate::learned::classifier_dir(config).display(),
                toxicity_model = l.toxicity_model(),
                "guard: rules + embedding classifier"
            )
        }
        None => tracing::info!(
            "guard: rules only (no trained classifier installed; see `floodgate guard train`)"
        ),
    }
    learned.map(|l| Arc::new(l) as Arc<dyn crate::guard::LearnedScorer>)
}

/// Without the engine the guard runs its rules only.
#[cfg(not(feature = "engine"))]
fn learned_scorer(_config: &Config) -> Option<Arc<dyn crate::guard::LearnedScorer>> {
    tracing::info!("guard: rules only (this build has no `engine` feature for learned heads)");
    None
}

/// The services a server runs with, over the stores in its state database.
async fn build_state(
    config: &Arc<Config>,
    registry: &Arc<ModelRegistry>,
) -> anyhow::Result<AppState> {
    let stores = crate::store::Stores::open(config).await?;
    tracing::info!(store = %crate::store::Stores::describe(config), "state store open");
    let auth = Arc::new(crate::auth::Auth::new(stores.keys, config.auth_required()));
    auth.spawn_refresh(
        Duration::from_millis(config.store.key_cache_refresh_ms),
        Duration::from_secs(config.store.key_cache_stale_seconds),
    );
    let admission = crate::admission::Admission::from_config(&config.ratelimit)?;
    let guard = crate::guard::Guard::new(config, learned_scorer(config))?;
    let origin = format!(
        "{}/{}:{}",
        config.server.region,
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        config.server.listen.rsplit(':').next().unwrap_or(""),
    );
    let events = crate::events::Spine::open(config, origin)
        .map_err(|e| anyhow::anyhow!("event log: {e}"))?;
    let routes = Arc::new(crate::cascade::Routes::pending(config));
    {
        let (routes, config) = (Arc::clone(&routes), Arc::clone(config));
        tokio::spawn(async move { routes.load(config).await });
    }
    Ok(AppState::new(crate::state::Services {
        config: Arc::new(arc_swap::ArcSwap::new(Arc::clone(config))),
        registry: Arc::clone(registry),
        metrics: crate::telemetry::recorder(),
        auth,
        admission: Arc::new(admission),
        guard: Arc::new(guard),
        feedback: stores.feedback,
        routes,
        records: stores.records,
        analytics: stores.analytics,
        budgets: Arc::new(crate::budget::Budgets::from_config(config)?),
        events: Arc::new(events),
    }))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for up to
/// `server.shutdown_grace_seconds`.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    let role_errors = config.role_errors();
    if !role_errors.is_empty() {
        return Err(crate::config::ConfigErrors(role_errors).into());
    }
    let config = Arc::new(config.for_role());
    tracing::info!(role = %config.server.role, region = %config.server.region, "starting");
    let registry = Arc::new(ModelRegistry::new(&config.server.region));
    let initial: Vec<(ModelConfig, u64)> = config
        .model
        .iter()
        .map(|m| {
            let generation = registry.insert(m.clone(), ModelState::Loading("queued".into()));
            (m.clone(), generation)
        })
        .collect();
    let state = build_state(&config, &registry).await?;
    let mut sinks =
        crate::events::Sinks::start(&config, &state.events, Arc::clone(&state.records)).await?;
    // Drift runs where the whole stream is: the analytics role when NATS carries the
    // events, else every process that stores its own events.
    let watcher = config.drift.enabled.then(|| {
        crate::analytics::DriftWatcher::new(
            &config,
            Arc::clone(&state.analytics),
            Some(Arc::clone(&state.events)),
        )
    });
    if config.server.role == crate::config::Role::Analytics {
        let js = crate::events::JetStream::connect(&config.events).await?;
        let also = watcher
            .map(|w| Arc::new(crate::analytics::DriftSink(w)) as Arc<dyn crate::events::Sink>);
        sinks.add_consumer(
            js,
            Arc::clone(&state.records),
            config.events.sink_batch,
            also,
        );
        tracing::info!("analytics: consuming JetStream events into the store");
    } else if let Some(w) =
        watcher.filter(|_| config.events.nats_url.is_empty() && config.events.store_sink)
    {
        sinks.add_log_sink(
            &config,
            &state.events,
            Arc::new(crate::analytics::DriftSink(w)),
        );
    }
    if config.server.role != crate::config::Role::Worker {
        crate::analytics::spawn_eval_gauges(Arc::clone(&state.analytics), Duration::from_secs(60));
    }
    if let Some(sampler) = &state.events.prompts {
        crate::prompt_features::spawn_embedder_load(Arc::clone(&config), sampler);
    }
    let events = Arc::clone(&state.events);
    if let Some(path) = config.source.clone() {
        tokio::spawn(crate::reload::watch(path, state.clone()));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    if state.auth.required {
        tracing::info!(keys = %crate::store::Stores::describe(&config), "API keys required (create one with `floodgate keys create`)");
    } else if local.ip().is_loopback() {
        tracing::warn!(%local, "authentication is OFF: listening on loopback only, so requests without an API key are served; set auth.required = true to demand keys");
    } else {
        tracing::warn!(%local, "authentication is OFF on a non-loopback address because auth.required = false: anyone who can reach this port can use it");
    }
    tracing::info!(
        backend = state.admission.backend_name(),
        "rate limiter ready"
    );
    // Tests and scripts read this line to find a random port.
    tracing::info!(addr = %local, "listening on http://{local}");
    tokio::spawn(crate::loading::load_models(
        Arc::clone(&config),
        Arc::clone(&registry),
        initial,
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        let _ = stop_tx.send(true);
    };
    let app =
        crate::app::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // No Nagle delay: an SSE token or a small answer goes out as soon as it is written.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let deadline = async move {
        let mut rx = stop_rx;
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; exiting with requests still running"),
    }
    // Everything answered has its event queued: write it, let the sinks catch up.
    sinks.stop().await;
    events.close();
    tracing::info!("stopped");
    Ok(())
}
