//! Stage 1, the edge: body limits, UTF-8, JSON parsing with named parameters, request ids.
//!
//! Invariant: nothing past this module sees raw bytes. A body becomes either a typed
//! request or an OpenAI-format error that names the offending parameter.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::GatewayError;
use crate::events::Trace;
use crate::AppState;

/// A JSON body parsed into `T`, or a precise 4xx.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ValidJson<T> {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config().limits.max_body_bytes;
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit as u64 {
                return Err(GatewayError::PayloadTooLarge { size: len, limit });
            }
        }
        let timeout =
            std::time::Duration::from_secs(state.config().limits.body_read_timeout_seconds);
        let read = axum::body::to_bytes(req.into_body(), limit);
        let bytes = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| GatewayError::BodyTimeout(timeout.as_secs()))?
            .map_err(|e| {
                if is_length_limit(&e) {
                    GatewayError::PayloadTooLarge {
                        size: limit as u64 + 1,
                        limit,
                    }
                } else {
                    GatewayError::invalid(format!("Could not read the request body: {e}"), None)
                }
            })?;
        parse_json(&bytes).map(ValidJson)
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Parses a JSON body, naming the parameter at fault in every error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(GatewayError::InvalidUtf8);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::MalformedJson("the body is empty".into()));
    }
    // serde would accept a struct spelled as an array; OpenAI's API wants an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Err(e) => GatewayError::MalformedJson(e.to_string()),
                Ok(_) => GatewayError::InvalidRequest {
                    message: "The request body must be a JSON object.".into(),
                    param: None,
                    code: Some("invalid_type"),
                },
            },
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                GatewayError::MalformedJson(inner.to_string())
            }
            Category::Data => data_error(&path, &inner.to_string()),
        }
    })
}

fn data_error(path: &str, message: &str) -> GatewayError {
    // serde_json appends " at line L column C"; the parameter path says more.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(m, _)| m)
        .to_string();
    let backticked = message.split('`').nth(1).map(str::to_string);
    let under = |field: &str| {
        if path == "." || path.is_empty() {
            field.to_string()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    if message.starts_with("unknown field") {
        let field = backticked.unwrap_or_default();
        return GatewayError::InvalidRequest {
            message: format!("Unrecognized request argument supplied: {field}"),
            param: Some(under(&field)),
            code: Some("unknown_parameter"),
        };
    }
    if message.starts_with("missing field") {
        let field = backticked.unwrap_or_default();
        return GatewayError::InvalidRequest {
            message: format!("Missing required parameter: '{}'.", under(&field)),
            param: Some(under(&field)),
            code: Some("missing_required_parameter"),
        };
    }
    let param = if path == "." || path.is_empty() {
        None
    } else {
        Some(path.to_string())
    };
    let what = param.clone().unwrap_or_else(|| "the request body".into());
    GatewayError::InvalidRequest {
        message: format!("Invalid value for '{what}': {message}."),
        param,
        code: Some("invalid_type"),
    }
}

/// Refuses requests whose headers together exceed `limits.max_header_bytes` with 431 in
/// OpenAI's format. (hyper's own, larger buffer limit still closes the connection on
/// anything bigger than it can parse.)
pub async fn header_limit(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let limit = state.config().limits.max_header_bytes;
    let size: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if size > limit {
        return axum::response::IntoResponse::into_response(GatewayError::HeadersTooLarge {
            size,
            limit,
        });
    }
    next.run(req).await
}

/// The id a request is known by in logs, headers and (later) decision records.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Accepts the client's `x-request-id` if it is sane, else uses the server's own id;
/// echoes it back, with the server's id as `x-floodgate-request-id`, and opens the
/// request's tracing span. The server's id ([`Trace`]) is unique whatever the client
/// sends: a reused `x-request-id` leaves two events and two decision records.
pub async fn request_id(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    use tracing::Instrument;
    let client_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string);
    let endpoint = format!("{} {}", req.method(), req.uri().path());
    let otel = state.events.begin_trace(
        req.headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    let trace = std::sync::Arc::new(Trace::new(client_id.clone(), endpoint, otel.clone()));
    let id = client_id.unwrap_or_else(|| trace.id.clone());
    let server_id = trace.id.clone();
    req.extensions_mut().insert(trace);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path()
    );
    let run = next.run(req).instrument(span);
    let mut response = match otel {
        Some(otel) => crate::otel::CURRENT.scope(otel, run).await,
        None => run.await,
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&server_id) {
        response.headers_mut().insert("x-floodgate-request-id", v);
    }
    response
}

/// Middleware: puts the [`Caller`] and [`ClientIp`] into the request's extensions, or
/// answers 401.
pub async fn identify(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = crate::auth::ClientIp(state.admission.client_ip(peer, forwarded));
    let caller = state
        .auth
        .identify(crate::auth::presented_key(req.headers()))
        .await;
    if let (Ok(c), Some(trace)) = (&caller, req.extensions().get::<std::sync::Arc<Trace>>()) {
        trace.identified(c, ip.0);
    }
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            req.extensions_mut().insert(ip);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_protocol::ChatCompletionRequest;

    fn err(body: &[u8]) -> GatewayError {
        match parse_json::<ChatCompletionRequest>(body) {
            Ok(_) => panic!("accepted {:?}", String::from_utf8_lossy(body)),
            Err(e) => e,
        }
    }

    #[test]
    fn errors_name_their_parameter() {
        let cases: &[(&[u8], &str, Option<&str>)] = &[
            (b"{", "invalid_json", None),
            (b"", "invalid_json", None),
            (b"[1,2]", "invalid_type", None),
            (
                b"{\"model\":\"m\"}",
                "missing_required_parameter",
                Some("messages"),
            ),
            (
                b"{\"model\":\"m\",\"messages\":[],\"max_tokens\":\"ten\"}",
                "invalid_type",
                Some("max_tokens"),
            ),
            (
                b"{\"model\":\"m\",\"messages\":[],\"max_tokens\":-1}",
                "invalid_type",
                Some("max_tokens"),
            ),
            (
                b"{\"model\":\"m\",\"messages\":[{\"role\":1}]}",
                "invalid_type",
                Some("messages[0].role"),
            ),
            (
                b"{\"model\":\"m\",\"messages\":[],\"bogus\":1}",
                "unknown_parameter",
                Some("bogus"),
            ),
            (
                b"{\"model\":\"m\",\"messages\":[],\"temperature\":1e999}",
                "invalid_json",
                None,
            ),
            (b"\xff\xfe{}", "invalid_encoding", None),
        ];
        for (body, code, param) in cases {
            let e = err(body);
            assert_eq!(e.code(), *code, "{}: {e}", String::from_utf8_lossy(body));
            assert_eq!(
                e.param().as_deref(),
                *param,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut body = String::from("{\"model\":\"m\",\"messages\":[],\"metadata\":");
        body.push_str(&"[".repeat(100_000));
        let e = err(body.as_bytes());
        assert_eq!(e.code(), "invalid_json", "{e}");
    }
}
