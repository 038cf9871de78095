//! Dashboard sessions: a stateless token in the `fg_session` cookie, signed with
//! HMAC-SHA256, carrying the key's id and public prefix (never its secret), the role it
//! signed in with and when it expires. The key is looked up again on every use
//! (`Auth::session_key`), so revoking it ends its sessions.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
//! page sends it) and `Path=/dashboard`; only the dashboard's handlers read it, so it
//! never authenticates `/v1/*` or `/admin/*`. Logins and logouts also need a same-origin
//! `Origin` (or, without one, `Referer`) header: with `SameSite=Strict` that closes
//! cross-site request forgery on the two POSTs, including login CSRF.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::Scope;

pub const COOKIE: &str = "fg_session";
/// Bound into every signature, so a token signed for something else never verifies here.
const CONTEXT: &[u8] = b"floodgate-dashboard-session-v1.";

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The key's id (`key_…`).
    #[serde(rename = "k")]
    pub key_id: String,
    /// The key's public prefix, to find it in the key cache.
    #[serde(rename = "p")]
    pub prefix: String,
    /// The role it signed in with: admin or auditor.
    #[serde(rename = "s")]
    pub scope: Scope,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// The signing key: from `dashboard.session_secret`, or random for this process.
pub struct Sessions {
    secret: Vec<u8>,
}

impl Sessions {
    /// From the configured secret reference; empty (or unreadable) gives a random key
    /// for this process, and says what that means.
    pub fn from_config(reference: &str) -> Self {
        let reference = reference.trim();
        if !reference.is_empty() {
            match crate::config::resolve_secret(reference) {
                Ok(secret) if secret.len() >= 16 => return Self::with_secret(secret.into_bytes()),
                Ok(_) => tracing::error!(
                    "dashboard.session_secret is shorter than 16 bytes; using a random per-process key"
                ),
                Err(e) => tracing::error!(error = %e, "dashboard.session_secret cannot be read; using a random per-process key"),
            }
        } else {
            tracing::info!("dashboard sessions are signed with a random per-process key (dashboard.session_secret is empty): they end when this process restarts and are valid on this gateway only");
        }
        let mut secret = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        Self::with_secret(secret)
    }

    pub fn with_secret(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    /// The MAC over a payload (HMAC takes a key of any length, so this is always `Some`).
    fn mac(&self, payload: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).ok()?;
        mac.update(CONTEXT);
        mac.update(payload.as_bytes());
        Some(mac)
    }

    /// `base64url(claims JSON) . base64url(HMAC)`.
    pub fn sign(&self, claims: &Claims) -> Option<String> {
        let json = serde_json::to_vec(claims).ok()?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(&payload)?.finalize().into_bytes();
        Some(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// The claims of a token signed here and not expired at `now`, else `None`. The
    /// signature is compared in constant time before anything in it is read.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let (payload, tag) = token.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(payload)?.verify_slice(&tag).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.expires > now && matches!(claims.scope, Scope::Admin | Scope::Auditor))
            .then_some(claims)
    }
}

/// The session token in the request's cookies, if any.
pub fn from_cookies(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that deletes the session.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

/// Whether the cookie should be `Secure`: configured, or the request came over HTTPS
/// (through a proxy that says so; believing it only ever makes the cookie stricter).
pub fn secure(headers: &HeaderMap, configured: bool) -> bool {
    configured
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Whether a state-changing request came from one of the dashboard's own pages: its
/// `Origin` (or, when a browser sent none, its `Referer`) names the host the request
/// was sent to. A request with neither is refused.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = |url: &str| -> Option<String> {
        let rest = url.split_once("://")?.1;
        Some(rest.split(['/', '?', '#']).next()?.to_ascii_lowercase())
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null");
    let source = match origin {
        Some(o) => authority(o),
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(authority),
    };
    source.is_some_and(|s| s == host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn claims(expires: i64) -> Claims {
        Claims {
            key_id: "key_1".into(),
            prefix: "fg-abcdefghi".into(),
            scope: Scope::Auditor,
            expires,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_only_with_its_key() {
        let s = Sessions::with_secret(b"0123456789abcdef0123".to_vec());
        let token = s.sign(&claims(1000)).unwrap();
        assert_eq!(s.verify(&token, 999), Some(claims(1000)));
        assert_eq!(s.verify(&token, 1000), None);
        let other = Sessions::with_secret(b"another secret, also long".to_vec());
        assert_eq!(other.verify(&token, 0), None);
    }

    #[test]
    fn a_forged_or_altered_token_is_refused() {
        let s = Sessions::with_secret(b"0123456789abcdef0123".to_vec());
        let token = s.sign(&claims(1000)).unwrap();
        let (payload, tag) = token.split_once('.').unwrap();
        // The same signature over claims that last longer.
        let longer = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(9_999_999)).unwrap());
        assert_eq!(s.verify(&format!("{longer}.{tag}"), 0), None);
        // An admin role in place of the auditor's.
        let mut admin = claims(1000);
        admin.scope = Scope::Admin;
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
        assert_eq!(s.verify(&format!("{forged}.{tag}"), 0), None);
        for bad in [
            "",
            ".",
            "x.y",
            payload,
            &format!("{payload}."),
            &format!("{payload}.{tag}x"),
        ] {
            assert_eq!(s.verify(bad, 0), None, "{bad}");
        }
        // A validly signed token for a role that may not see the dashboard.
        let mut inference = claims(1000);
        inference.scope = Scope::Inference;
        assert_eq!(s.verify(&s.sign(&inference).unwrap(), 0), None);
    }

    #[test]
    fn the_cookie_is_httponly_strict_and_scoped_to_the_dashboard() {
        let c = set_cookie("tok", 3600, false);
        assert_eq!(
            c,
            "fg_session=tok; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=3600"
        );
        assert!(set_cookie("tok", 60, true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; fg_session=tok; b=2"),
        );
        assert_eq!(from_cookies(&h), Some("tok"));
        h.insert(header::COOKIE, HeaderValue::from_static("fg_session_x=1"));
        assert_eq!(from_cookies(&h), None);
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let with = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(k.clone(), HeaderValue::from_static(v));
            }
            same_origin(&h)
        };
        let host = (header::HOST, "gw.example:8080");
        assert!(with(&[
            host.clone(),
            (header::ORIGIN, "http://gw.example:8080")
        ]));
        assert!(with(&[
            host.clone(),
            (header::ORIGIN, "https://GW.example:8080")
        ]));
        assert!(!with(&[
            host.clone(),
            (header::ORIGIN, "http://evil.example")
        ]));
        assert!(!with(&[
            host.clone(),
            (header::ORIGIN, "http://gw.example:8080.evil")
        ]));
        assert!(!with(&[host.clone(), (header::ORIGIN, "null")]));
        assert!(with(&[
            host.clone(),
            (header::REFERER, "http://gw.example:8080/dashboard/login")
        ]));
        assert!(!with(&[
            host.clone(),
            (header::REFERER, "http://evil.example/gw.example:8080")
        ]));
        assert!(!with(&[host]));
        assert!(!with(&[(header::ORIGIN, "http://gw.example:8080")]));
    }

    #[test]
    fn x_forwarded_proto_https_makes_the_cookie_secure() {
        let mut h = HeaderMap::new();
        assert!(!secure(&h, false));
        assert!(secure(&h, true));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(secure(&h, false));
    }
}
