//! Running the server: bind, load models in the background, serve, shut down gracefully.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floodgate_models::ModelStore;

use crate::config::{Config, ModelConfig};
pub use crate::model_cache::{model_spec, model_store};
use crate::registry::{ModelRegistry, ModelState};
use crate::AppState;

/// Where a load reports its progress: the registry entry it will fill, and the load's
/// generation (so a superseded load reports nothing).
#[derive(Clone, Copy)]
struct Progress<'a> {
    registry: &'a ModelRegistry,
    generation: u64,
}

impl Progress<'_> {
    fn say(self, m: &ModelConfig, label: &str) {
        self.registry.progress(&m.name, self.generation, label);
    }
}

/// Makes one variant servable: an upstream pool, or local weights fetched, converted
/// and loaded into an engine.
async fn load_variant(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Progress<'_>,
    created: u64,
) -> ModelState {
    if m.is_upstream() {
        // Nothing to fetch or load: ready once built; health is the pool's business.
        return match crate::backend::UpstreamPool::from_config(m, &config.server.region, created) {
            Ok(pool) => {
                tracing::info!(model = %m.name, endpoints = m.endpoints.len(), "upstream model ready");
                ModelState::Ready(Arc::new(pool))
            }
            Err(e) => {
                tracing::error!(model = %m.name, error = %e, "upstream model unavailable");
                ModelState::Failed(e)
            }
        };
    }
    load_local(config, store, m, progress, created).await
}

#[cfg(feature = "engine")]
async fn load_local(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Progress<'_>,
    created: u64,
) -> ModelState {
    let say = |label: &str| progress.say(m, label);
    match crate::backend::local::load(config, store, m, Some(&say)).await {
        Ok(backend) => {
            tracing::info!(model = %m.name, "model ready");
            ModelState::Ready(Arc::new(backend.with_created(created)))
        }
        Err(e) => {
            tracing::error!(model = %m.name, error = %e, "model unavailable");
            ModelState::Failed(e)
        }
    }
}

/// Configuration validation refuses local models in a build without the engine, so
/// this is reached only through a configuration that bypassed it.
#[cfg(not(feature = "engine"))]
async fn load_local(
    _config: &Config,
    _store: &ModelStore,
    m: &ModelConfig,
    _progress: Progress<'_>,
    _created: u64,
) -> ModelState {
    ModelState::Failed(crate::config::no_engine(&m.name))
}

/// Loads variants one after another (each with the generation its load was given) and
/// installs each result unless a newer load of the same variant began meanwhile.
async fn load_models(
    config: Arc<Config>,
    registry: Arc<ModelRegistry>,
    work: Vec<(ModelConfig, u64)>,
) {
    let store = model_store(&config);
    let created = u64::try_from(crate::clock::unix_secs()).unwrap_or(0);
    for (m, generation) in work {
        let progress = Progress {
            registry: &registry,
            generation,
        };
        let state = load_variant(&config, &store, &m, progress, created).await;
        let name = m.name.clone();
        if !registry.finish_load(m, generation, state) {
            tracing::info!(model = %name, "a newer load or removal superseded this load");
        }
    }
    tracing::info!("all models processed");
}

/// Applies a reloaded configuration's `[[model]]` tables: new variants load, removed
/// ones leave the registry (requests running on them finish), changed weights or
/// sources load in the background while the old variant keeps serving, variants whose
/// load failed are tried again, and changes that need no load (weights, switches,
/// prices, cards, guard overrides) apply at once.
pub fn apply_models(fresh: &Arc<Config>, registry: &Arc<ModelRegistry>) {
    let current: std::collections::BTreeMap<String, Arc<ModelConfig>> = registry
        .configs()
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let mut work = Vec::new();
    for m in &fresh.model {
        match current.get(&m.name) {
            // A variant whose load failed is tried again on every reload.
            Some(old) if !old.needs_reload(m) && !registry.failed(&m.name) => {
                if **old != *m {
                    tracing::info!(model = %m.name, "model settings updated");
                    registry.refresh(m.clone());
                }
            }
            Some(_) => {
                tracing::info!(model = %m.name, "model changed; loading it again while the running one serves");
                work.push((m.clone(), registry.begin_load(&m.name)));
            }
            None => {
                tracing::info!(model = %m.name, "model added");
                let generation =
                    registry.insert_later(m.clone(), ModelState::Loading("queued".into()));
                work.push((m.clone(), generation));
            }
        }
    }
    for name in current.keys() {
        if !fresh.model.iter().any(|m| m.name == *name) {
            tracing::info!(model = %name, "model removed; requests running on it finish");
            registry.remove(name);
            metrics::gauge!("floodgate_model_loaded", "model" => name.clone()).set(0.0);
        }
    }
    if !work.is_empty() {
        tokio::spawn(load_models(Arc::clone(fresh), Arc::clone(registry), work));
    }
}

/// Reloads the `[[model]]` and `[[route]]` tables when the configuration file changes
/// (polled every `server.reload_poll_seconds`) or on SIGHUP; other sections are
/// reported as needing a restart. A file that no longer parses (or names models this
/// role cannot serve) is refused and everything running stays.
async fn reload_config(
    path: PathBuf,
    running: Arc<Config>,
    registry: Arc<ModelRegistry>,
    routes: Arc<crate::cascade::Routes>,
) {
    let poll = running.server.reload_poll_seconds;
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let tick = async {
            if poll == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_secs(poll)).await;
        };
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let forced = tokio::select! {
            () = tick => false,
            () = signalled => true,
        };
        let now = modified(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let mut fresh = match Config::load(Some(&path)) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "configuration reload refused; the running models and routes stay");
                continue;
            }
        };
        // The role comes from the command line as well as the file: the running one
        // stays.
        fresh.server.role.clone_from(&running.server.role);
        let errors = fresh.role_errors();
        if !errors.is_empty() {
            tracing::error!(error = %crate::config::ConfigErrors(errors), "configuration reload refused; the running models and routes stay");
            continue;
        }
        let fresh = fresh.for_role();
        if !same_except_models_and_routes(&fresh, &running) {
            tracing::warn!(
                "sections other than [[model]] and [[route]] changed: they apply at the next restart"
            );
        }
        let fresh = Arc::new(fresh);
        apply_models(&fresh, &registry);
        routes.reload(fresh).await;
    }
}

/// True when two configurations differ at most in what a reload applies (and in
/// `[server]`, which the command line also sets).
fn same_except_models_and_routes(a: &Config, b: &Config) -> bool {
    let strip = |c: &Config| Config {
        model: Vec::new(),
        route: Vec::new(),
        server: crate::config::ServerConfig::default(),
        ..c.clone()
    };
    strip(a) == strip(b)
}

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
    let db = config.state_db_path();
    let store = crate::auth::SqliteKeyStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
    let auth = crate::auth::Auth {
        store: Arc::new(store),
        required: config.auth_required(),
    };
    let admission = crate::admission::Admission::from_config(&config.ratelimit)?;
    let guard = crate::guard::Guard::new(&config, learned_scorer(&config))?;
    let feedback = crate::feedback::SqliteFeedbackStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
    let records = crate::records::SqliteRecordStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
    let routes = Arc::new(crate::cascade::Routes::pending(&config));
    {
        let (routes, config) = (Arc::clone(&routes), Arc::clone(&config));
        tokio::spawn(async move { routes.load(config).await });
    }
    if let Some(path) = config.source.clone() {
        tokio::spawn(reload_config(
            path,
            Arc::clone(&config),
            Arc::clone(&registry),
            Arc::clone(&routes),
        ));
    }
    let state = AppState {
        config: Arc::clone(&config),
        registry: Arc::clone(&registry),
        metrics: crate::telemetry::recorder(),
        auth: Arc::new(auth),
        admission: Arc::new(admission),
        guard: Arc::new(guard),
        feedback: Arc::new(feedback),
        routes,
        records: Arc::new(records),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    if state.auth.required {
        tracing::info!(keys = %db.display(), "API keys required (create one with `floodgate keys create`)");
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
    tokio::spawn(load_models(
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
    tracing::info!("stopped");
    Ok(())
}
