//! Configuration reloads: one mechanism for everything that may change while serving.
//!
//! A reload (the file changed, polled every `server.reload_poll_seconds`, or SIGHUP)
//! parses and validates the whole file, then [`apply`] swaps the running configuration
//! ([`AppState::config`], an `arc-swap`) and hands each live part its new section: the
//! guard (thresholds, policies, redaction), admission (rates, bursts, caps, trusted
//! proxies), the model registry (`[[model]]`: weights, prices, cards, switches; new or
//! changed weights load in the background) and the routes (`[[route]]`). Everything
//! else a request reads (`[limits]`, `[costs]`, `[feedback]`) comes from the swapped
//! configuration itself.
//!
//! What was built once at start stays until a restart: [`RESTART_ONLY`] lists it. A
//! reload that changes any of it keeps the running value, and its log line names it.
//! A file that does not parse, or names models this role cannot serve, is refused and
//! everything running stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigErrors};
use crate::AppState;

/// The settings a reload cannot apply, as `docs/configuration.md` lists them.
pub const RESTART_ONLY: &[&str] = &[
    "[server]",
    "[models]",
    "[auth]",
    "[abuse]",
    "[events]",
    "[store]",
    "ratelimit.backend",
    "ratelimit.redis_url",
    "ratelimit.backend_timeout_ms",
    "guard.classifier_dir",
    "guard.toxicity_probe",
    "dashboard.session_secret",
    "dashboard.stats_retention_days",
];

/// Puts the running value of every restart-only setting back into `fresh`; returns the
/// ones that differed.
pub fn keep_restart_only(fresh: &mut Config, running: &Config) -> Vec<&'static str> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($name:expr, $($field:ident).+) => {
            if fresh.$($field).+ != running.$($field).+ {
                kept.push($name);
                fresh.$($field).+ = running.$($field).+.clone();
            }
        };
    }
    keep!("[server]", server);
    keep!("[models]", models);
    keep!("[events]", events);
    keep!("[telemetry]", telemetry);
    keep!("[drift]", drift);
    keep!("[auth]", auth);
    keep!("[abuse]", abuse);
    keep!("[store]", store);
    keep!("ratelimit.backend", ratelimit.backend);
    keep!("ratelimit.redis_url", ratelimit.redis_url);
    keep!("ratelimit.backend_timeout_ms", ratelimit.backend_timeout_ms);
    keep!("guard.classifier_dir", guard.classifier_dir);
    keep!("guard.toxicity_probe", guard.toxicity_probe);
    keep!("dashboard.session_secret", dashboard.session_secret);
    keep!(
        "dashboard.stats_retention_days",
        dashboard.stats_retention_days
    );
    kept
}

/// The sections a reload changes, for its log line.
fn changed_sections(fresh: &Config, running: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("[limits]", fresh.limits != running.limits);
    check("[ratelimit]", fresh.ratelimit != running.ratelimit);
    check("[guard]", fresh.guard != running.guard);
    check("[feedback]", fresh.feedback != running.feedback);
    check("[costs]", fresh.costs != running.costs);
    check("[dashboard]", fresh.dashboard != running.dashboard);
    check("[[model]]", fresh.model != running.model);
    check("[[route]]", fresh.route != running.route);
    changed
}

/// Applies a freshly loaded configuration to a running server, or refuses it (and
/// everything running stays). Returns the restart-only settings it could not apply.
pub async fn apply(state: &AppState, mut fresh: Config) -> Result<Vec<&'static str>, ConfigErrors> {
    let running = state.config();
    // The role may come from the command line (`serve --role`): the running one stays.
    fresh.server.role = running.server.role;
    let errors = fresh.role_errors();
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut fresh = fresh.for_role();
    fresh.source.clone_from(&running.source);
    let kept = keep_restart_only(&mut fresh, &running);
    let changed = changed_sections(&fresh, &running);
    let fresh = Arc::new(fresh);
    state.config.store(Arc::clone(&fresh));
    state.guard.reconfigure(&fresh.guard);
    state.admission.reconfigure(&fresh.ratelimit);
    crate::loading::apply_models(&fresh, &state.registry);
    state.routes.reload(Arc::clone(&fresh)).await;
    if kept.is_empty() {
        tracing::info!(applied = ?changed, "configuration reloaded");
    } else {
        tracing::warn!(applied = ?changed, restart_needed = ?kept, "configuration reloaded; some changes need a restart and the running values stay");
    }
    let source = fresh.source.as_ref().map(|p| p.display().to_string());
    state
        .admin_event(
            "config.reloaded",
            "system",
            source.as_deref().unwrap_or(""),
            serde_json::json!({ "applied": changed, "restart_needed": kept }),
        )
        .await;
    Ok(kept)
}

/// Watches the configuration file and applies each change (see the module docs).
pub async fn watch(path: PathBuf, state: AppState) {
    let poll = state.config().server.reload_poll_seconds;
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
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
        let result = match Config::load(Some(&path)) {
            Ok(fresh) => apply(&state, fresh).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "configuration reload refused; everything running stays");
            let detail = serde_json::json!({ "error": e.to_string() });
            state
                .admin_event(
                    "config.reload_refused",
                    "system",
                    &path.display().to_string(),
                    detail,
                )
                .await;
        }
    }
}
