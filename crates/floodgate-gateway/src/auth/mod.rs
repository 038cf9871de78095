//! Stage 2, identity: API keys → key records, and the scopes routes demand.
//!
//! A key is `fg-` + 32 random bytes (base64url), shown once when created. The store keeps
//! only its first [`PREFIX_LEN`] characters (to find the record and to show in listings)
//! and the SHA-256 of the whole key; a presented key is hashed and compared in constant
//! time. A plain hash is enough because the key carries 256 bits of entropy: there is
//! nothing for a slow password hash to protect against.
//!
//! Looked-up keys (and unknown prefixes) are cached in memory, so a request costs no
//! database read. The store keeps a change counter ([`KeyStore::epoch`]) that every key
//! insert and revoke moves in its own transaction; each gateway polls it every
//! `store.key_cache_refresh_ms` (and PostgreSQL also pushes a notification) and drops its
//! cache when it moved. A revocation — from the CLI, the admin API or another gateway —
//! is thus refused everywhere within that interval. While the store cannot be read,
//! cached keys keep being served for at most `store.key_cache_stale_seconds`, so a store
//! outage or restart does not stop the gateways; a key not cached meanwhile is 503.
//!
//! **Architecture invariant:** nothing past this stage sees a secret; handlers get a
//! [`Caller`] with the key's record.

mod postgres;
mod sqlite;

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::stream::{BoxStream, StreamExt};

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;

pub use postgres::{PgKeyStore, KEYS_CHANNEL};
pub use sqlite::SqliteKeyStore;

/// Characters of a key kept in clear: `fg-` and 9 characters of the random part.
pub const PREFIX_LEN: usize = 12;

pub use crate::config::Scope;

/// A key's own limits; `None` falls back to the `ratelimit.key_*` defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd_per_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public identifier (`key_…`), used to revoke and in logs.
    pub id: String,
    /// The key's first characters, to recognise it in listings.
    pub prefix: String,
    pub name: String,
    pub tenant: String,
    /// User segment (e.g. `free`, `pro`), for routing rules and reports.
    pub segment: String,
    pub scopes: Vec<Scope>,
    pub limits: KeyLimits,
    /// Spending cap in US dollars, if any.
    pub budget_usd: Option<f64>,
    /// Unix seconds.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What `create` needs besides the generated secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewKey {
    pub name: String,
    pub tenant: String,
    pub segment: String,
    pub scopes: Vec<Scope>,
    pub limits: KeyLimits,
    pub budget_usd: Option<f64>,
}

/// A freshly created key: the only moment the secret exists outside the client.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    pub key: String,
    pub record: KeyRecord,
}

/// Where key records live: SQLite (the embedded default) or PostgreSQL.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key and moves the change counter, in one transaction.
    async fn insert(&self, record: &KeyRecord, hash: &[u8; 32]) -> Result<(), StoreError>;
    /// The record and stored hash for a key prefix.
    async fn find_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<(KeyRecord, [u8; 32])>, StoreError>;
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Marks a key revoked and moves the change counter; false when no such (unrevoked)
    /// key exists.
    async fn revoke(&self, id: &str, at: i64) -> Result<bool, StoreError>;
    /// The change counter: it moves with every insert and revoke.
    async fn epoch(&self) -> Result<i64, StoreError>;
    /// A stream that yields whenever keys may have changed, for stores that can push
    /// changes (PostgreSQL's `LISTEN`); `None` where polling [`KeyStore::epoch`] is all.
    async fn subscribe(&self) -> Result<Option<BoxStream<'static, ()>>, StoreError> {
        Ok(None)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("key store: corrupt record {id}: {why}")]
    Corrupt { id: String, why: String },
}

/// A record's scopes and limits as stored: space-separated names and JSON.
pub(crate) fn encode_columns(r: &KeyRecord) -> Result<(String, String), StoreError> {
    let scopes = r
        .scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let limits = serde_json::to_string(&r.limits).map_err(|e| StoreError::Corrupt {
        id: r.id.clone(),
        why: e.to_string(),
    })?;
    Ok((scopes, limits))
}

/// The stored scopes and limits of key `id`, back into their types.
pub(crate) fn decode_columns(
    id: &str,
    scopes: &str,
    limits: &str,
) -> Result<(Vec<Scope>, KeyLimits), StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        id: id.to_string(),
        why,
    };
    let scopes = scopes
        .split_whitespace()
        .map(str::parse::<Scope>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    let limits = serde_json::from_str(limits).map_err(|e| corrupt(e.to_string()))?;
    Ok((scopes, limits))
}

/// A stored hash back into its array.
pub(crate) fn decode_hash(id: &str, hash: Vec<u8>) -> Result<[u8; 32], StoreError> {
    hash.try_into().map_err(|_| StoreError::Corrupt {
        id: id.to_string(),
        why: "hash is not 32 bytes".into(),
    })
}

fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Generates a key, stores its record, and returns the secret (once).
pub async fn create_key(store: &dyn KeyStore, new: NewKey) -> Result<CreatedKey, StoreError> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!(
        "fg-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut id_bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut id_bytes);
    let record = KeyRecord {
        id: format!("key_{}", hex::encode(id_bytes)),
        prefix: secret.chars().take(PREFIX_LEN).collect(),
        name: new.name,
        tenant: if new.tenant.is_empty() {
            "default".into()
        } else {
            new.tenant
        },
        segment: if new.segment.is_empty() {
            "default".into()
        } else {
            new.segment
        },
        scopes: new.scopes,
        limits: new.limits,
        budget_usd: new.budget_usd,
        created_at: crate::clock::unix_secs(),
        revoked_at: None,
    };
    store.insert(&record, &sha256(&secret)).await?;
    Ok(CreatedKey {
        key: secret,
        record,
    })
}

/// Who is calling: a key's record, or nobody in particular when auth is off.
#[derive(Debug, Clone)]
pub enum Caller {
    Key(Arc<KeyRecord>),
    Anonymous,
}

impl Caller {
    /// The id limits and records are kept under.
    pub fn key_id(&self) -> &str {
        match self {
            Caller::Key(k) => &k.id,
            Caller::Anonymous => "anonymous",
        }
    }

    pub fn tenant(&self) -> &str {
        match self {
            Caller::Key(k) => &k.tenant,
            Caller::Anonymous => "default",
        }
    }

    pub fn record(&self) -> Option<&KeyRecord> {
        match self {
            Caller::Key(k) => Some(k),
            Caller::Anonymous => None,
        }
    }

    /// 403 unless the caller has `scope`. The anonymous caller (auth off) may use the
    /// API but never the admin roles.
    pub fn require(&self, scope: Scope) -> Result<(), GatewayError> {
        let ok = match self {
            Caller::Key(k) => k.scopes.contains(&scope),
            Caller::Anonymous => matches!(
                scope,
                Scope::Inference | Scope::Moderations | Scope::Feedback
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(GatewayError::Forbidden(scope.as_str()))
        }
    }
}

/// Cached lookups stop here; past it the cache starts over (a flood of random keys
/// cannot grow it without bound).
const MAX_CACHED_KEYS: usize = 100_000;

/// A prefix's stored key, or `None` when no key has it.
type Cached = Option<(Arc<KeyRecord>, [u8; 32])>;

/// The identity stage: the key store, whether a key is required, and the key cache.
pub struct Auth {
    pub store: Arc<dyn KeyStore>,
    pub required: bool,
    cache: DashMap<String, Cached>,
    /// Moves on every invalidation, so that a lookup racing one drops what it read.
    generation: AtomicU64,
    /// The store's change counter when last checked (`i64::MIN`: never).
    epoch: AtomicI64,
}

impl Auth {
    pub fn new(store: Arc<dyn KeyStore>, required: bool) -> Self {
        Self {
            store,
            required,
            cache: DashMap::new(),
            generation: AtomicU64::new(0),
            epoch: AtomicI64::new(i64::MIN),
        }
    }

    /// Drops every cached key (after a change made through this process, or a push).
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.clear();
    }

    /// Reads the store's change counter and drops the cache if it moved; returns
    /// whether it did.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let epoch = self.store.epoch().await?;
        let moved = self.epoch.swap(epoch, Ordering::SeqCst) != epoch;
        if moved {
            self.forget();
        }
        Ok(moved)
    }

    /// Keeps the cache in step with the store until the last `Arc` of `self` is gone:
    /// polls [`Auth::refresh`] every `every` and, where the store pushes changes,
    /// forgets on each. While the store cannot be read, the keys already cached keep
    /// being served for at most `stale` (a store outage does not take the gateway
    /// down; a revocation made meanwhile elsewhere applies once the store is back);
    /// past that the cache is dropped and keys not cached are answered 503.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration, stale: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_read = tokio::time::Instant::now();
            let mut failing = false;
            loop {
                tick.tick().await;
                let Some(auth) = weak.upgrade() else { return };
                match auth.refresh().await {
                    Ok(_) => {
                        if failing {
                            tracing::info!("the key store is readable again");
                        }
                        failing = false;
                        last_read = tokio::time::Instant::now();
                    }
                    Err(e) => {
                        metrics::counter!("floodgate_store_errors_total", "store" => "keys")
                            .increment(1);
                        if !failing {
                            tracing::warn!(error = %e, stale_seconds = stale.as_secs(), "could not check the key store for changes; serving cached keys meanwhile");
                        }
                        failing = true;
                        if last_read.elapsed() > stale {
                            auth.forget();
                        }
                    }
                }
            }
        });
        let weak = Arc::downgrade(self);
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            let mut changes = match store.subscribe().await {
                Ok(Some(changes)) => changes,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "no key change notifications; polling only");
                    return;
                }
            };
            while changes.next().await.is_some() {
                let Some(auth) = weak.upgrade() else { return };
                auth.forget();
            }
        });
    }

    /// The stored key with this prefix, from the cache or else the store.
    async fn lookup(&self, prefix: &str) -> Result<Cached, StoreError> {
        if let Some(hit) = self.cache.get(prefix).map(|e| e.value().clone()) {
            return Ok(hit);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = self
            .store
            .find_by_prefix(prefix)
            .await?
            .map(|(record, hash)| (Arc::new(record), hash));
        if self.cache.len() >= MAX_CACHED_KEYS {
            self.cache.clear();
        }
        self.cache.insert(prefix.to_string(), found.clone());
        // Invalidated while we read: what we read may be stale, so it is not kept.
        if self.generation.load(Ordering::SeqCst) != generation {
            self.cache.remove(prefix);
        }
        Ok(found)
    }

    /// Resolves the presented key. With auth off, no key (or an unknown one) is the
    /// anonymous caller; a known but revoked key is still refused.
    pub async fn identify(&self, presented: Option<&str>) -> Result<Caller, GatewayError> {
        let Some(secret) = presented else {
            return if self.required {
                Err(GatewayError::Unauthorized(
                    "You didn't provide an API key. Send it as `Authorization: Bearer fg-…`."
                        .into(),
                ))
            } else {
                Ok(Caller::Anonymous)
            };
        };
        let found = match secret.get(..PREFIX_LEN) {
            Some(prefix) if secret.starts_with("fg-") => self
                .lookup(prefix)
                .await
                .map_err(|e| GatewayError::StoreUnavailable(e.to_string()))?,
            _ => None,
        };
        let matched = found.filter(|(_, hash)| bool::from(sha256(secret).ct_eq(hash)));
        match matched {
            Some((record, _)) if record.revoked_at.is_some() => Err(GatewayError::Unauthorized(
                format!("The API key {}… has been revoked.", record.prefix),
            )),
            Some((record, _)) => Ok(Caller::Key(record)),
            None if !self.required => Ok(Caller::Anonymous),
            None => Err(GatewayError::Unauthorized(
                "Incorrect API key provided.".into(),
            )),
        }
    }
}

impl Auth {
    /// The key behind a signed dashboard session (its prefix and id, never its secret),
    /// looked up again on every use through the same cache as [`Auth::identify`], so a
    /// revoked key loses its sessions as soon as its requests are refused.
    pub async fn session_key(
        &self,
        prefix: &str,
        key_id: &str,
    ) -> Result<Arc<KeyRecord>, GatewayError> {
        let found = self
            .lookup(prefix)
            .await
            .map_err(|e| GatewayError::StoreUnavailable(e.to_string()))?;
        match found {
            Some((record, _)) if record.id == key_id && record.revoked_at.is_none() => Ok(record),
            _ => Err(GatewayError::Unauthorized(
                "The session's key is no longer valid.".into(),
            )),
        }
    }
}

/// The key from `Authorization: Bearer …` (or `api-key`, as Azure-style clients send it).
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim);
    }
    headers.get("api-key").and_then(|v| v.to_str().ok())
}

/// The client's address, after trusted proxies' `X-Forwarded-For` (see
/// [`crate::limits::client_ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[cfg(test)]
mod tests {
    use super::*;

    async fn auth(required: bool) -> (Auth, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteKeyStore::open(&dir.path().join("s.db"))
            .await
            .unwrap();
        (Auth::new(Arc::new(store), required), dir)
    }

    #[tokio::test]
    async fn a_created_key_identifies_its_record_and_only_it() {
        let (auth, _dir) = auth(true).await;
        let created = create_key(
            auth.store.as_ref(),
            NewKey {
                name: "n".into(),
                tenant: "acme".into(),
                scopes: vec![Scope::Inference],
                ..NewKey::default()
            },
        )
        .await
        .unwrap();
        assert!(created.key.starts_with("fg-"));
        assert_eq!(created.key.len(), 3 + 43);
        let caller = auth.identify(Some(&created.key)).await.unwrap();
        assert_eq!(caller.tenant(), "acme");
        assert!(caller.require(Scope::Inference).is_ok());
        assert!(matches!(
            caller.require(Scope::Admin),
            Err(GatewayError::Forbidden("admin"))
        ));
        // Same prefix, different tail: refused.
        let mut forged = created.key.clone();
        forged.pop();
        forged.push(if created.key.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(
            auth.identify(Some(&forged)).await,
            Err(GatewayError::Unauthorized(_))
        ));
        assert!(matches!(
            auth.identify(None).await,
            Err(GatewayError::Unauthorized(_))
        ));
        assert!(matches!(
            auth.identify(Some("sk-short")).await,
            Err(GatewayError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn revocation_is_seen_once_the_change_counter_is_read() {
        let (auth, _dir) = auth(false).await;
        let created = create_key(auth.store.as_ref(), NewKey::default())
            .await
            .unwrap();
        assert!(matches!(
            auth.identify(Some(&created.key)).await,
            Ok(Caller::Key(_))
        ));
        assert!(auth.store.revoke(&created.record.id, 1).await.unwrap());
        assert!(!auth.store.revoke(&created.record.id, 2).await.unwrap());
        // The cached key stays until the store's change counter is read.
        assert!(matches!(
            auth.identify(Some(&created.key)).await,
            Ok(Caller::Key(_))
        ));
        assert!(auth.refresh().await.unwrap());
        assert!(!auth.refresh().await.unwrap());
        // Even with auth off, a revoked key is refused rather than downgraded.
        assert!(matches!(
            auth.identify(Some(&created.key)).await,
            Err(GatewayError::Unauthorized(_))
        ));
        // An unknown key with auth off is the anonymous caller.
        assert!(matches!(
            auth.identify(Some("whatever")).await,
            Ok(Caller::Anonymous)
        ));
        let listed = auth.store.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at, Some(1));
    }
}
