//! `[server]`: the listener, logging, reloads, region and role.

use serde::{Deserialize, Serialize};

/// What this process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in one process, local and upstream models alike.
    #[default]
    All,
    /// Upstream models only, with routes, guards and limits: no engine.
    Gateway,
    /// Local models only, served to gateways without routes or guards.
    Worker,
    /// No models: consumes the events from NATS JetStream into the store
    /// (`events.nats_url`, `store.url`), and answers decision lookups.
    Analytics,
}

crate::config::value_set!(Role { All => "all", Gateway => "gateway", Worker => "worker", Analytics => "analytics" });

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

crate::config::value_set!(LogFormat { Text => "text", Json => "json" });

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// How long in-flight requests may run after SIGTERM before the process exits.
    pub shutdown_grace_seconds: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// How often the configuration file is checked for changes to reload its routes
    /// (SIGHUP reloads at once); 0 = only on SIGHUP.
    pub reload_poll_seconds: u64,
    /// This process's region; upstream endpoints in it are preferred while healthy.
    pub region: String,
    /// `all` (everything in one process), `gateway` (upstream models only) or
    /// `worker` (local models only, served without routes or guards for a gateway).
    pub role: Role,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            shutdown_grace_seconds: 30,
            log_format: LogFormat::Text,
            reload_poll_seconds: 2,
            region: String::new(),
            role: Role::All,
        }
    }
}

impl ServerConfig {
    /// Problems with this section, each with its path.
    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(format!(
                "server.listen: `{}` is not a HOST:PORT socket address",
                self.listen
            ));
        }
    }
}
