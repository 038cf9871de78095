//! The gateway's error type and its one conversion to an OpenAI error response.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
#[cfg(feature = "engine")]
use floodgate_engine::EngineError;
use floodgate_protocol::ErrorBody;

/// Everything a request can fail with. Each variant knows its HTTP status, OpenAI
/// error `type` and `code`, and its metric label.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    #[error("We could not parse the JSON body of your request. ({0}) The OpenAI API expects a JSON payload.")]
    MalformedJson(String),
    #[error("The request body is not valid UTF-8.")]
    InvalidUtf8,
    #[error("The request body is {size} bytes; the limit is {limit} bytes.")]
    PayloadTooLarge { size: u64, limit: usize },
    #[error("The request headers are {size} bytes; the limit is {limit} bytes.")]
    HeadersTooLarge { size: usize, limit: usize },
    #[error("The request body was not received within {0} s.")]
    BodyTimeout(u64),
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    #[error("The model `{0}` is still loading; retry shortly.")]
    ModelLoading(String),
    #[error("Unknown request URL: {method} {path}. Please check the URL for typos.")]
    UnknownRoute { method: String, path: String },
    #[error("Method {method} is not allowed for {path}.")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    TooBusy(String),
    #[error("The request timed out.")]
    Timeout,
    #[error("{0}")]
    Unauthorized(String),
    #[error("This API key lacks the `{0}` scope needed for this endpoint.")]
    Forbidden(&'static str),
    #[error("{message}")]
    RateLimited {
        message: String,
        /// Seconds until the request would fit; `None` when it never will.
        retry_after: Option<f64>,
    },
    #[error(
        "This API key already has {0} requests in flight, its limit; retry when one finishes."
    )]
    ConcurrencyLimited(u32),
    #[error("The rate limiter is unavailable ({0}); retry shortly.")]
    LimiterUnavailable(String),
    #[error("The key store is unavailable ({0}); retry shortly.")]
    StoreUnavailable(String),
    #[error("The prompt was blocked by the input guard as a likely prompt injection (score {score:.2}; {rules}).")]
    PromptBlocked { score: f32, rules: String },
    #[error(
        "Requests like this one are blocked: they belong to coordinated abusive traffic ({0})."
    )]
    AbuseBlocked(String),
    #[error(
        "Requests like this one are throttled: they belong to coordinated abusive traffic ({0})."
    )]
    AbuseThrottled(String),
    #[error("This API key has spent ${spent:.4} of its ${budget:.4} budget for this {period}; raise the budget or wait for the next period.")]
    BudgetExceeded {
        spent: f64,
        budget: f64,
        period: String,
    },
    #[error("No such {what}: `{id}`.")]
    NotFound { what: &'static str, id: String },
    /// An upstream server failed or refused the gateway itself (502).
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Internal(String),
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>, param: impl Into<Option<String>>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: param.into(),
            code: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::MalformedJson(_) | Self::InvalidUtf8 => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::ModelNotFound(_) | Self::UnknownRoute { .. } | Self::NotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::AbuseBlocked(_) => StatusCode::FORBIDDEN,
            Self::PromptBlocked { .. } => StatusCode::BAD_REQUEST,
            Self::AbuseThrottled(_) | Self::BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RateLimited { .. } | Self::ConcurrencyLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::LimiterUnavailable(_) | Self::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::ModelLoading(_) | Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooBusy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &'static str {
        match self.status() {
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY => "server_error",
            StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            StatusCode::GATEWAY_TIMEOUT => "timeout",
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            _ => "invalid_request_error",
        }
    }

    /// OpenAI's error `code`; also the `reason` label on error metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { code, .. } => code.unwrap_or("invalid_value"),
            Self::MalformedJson(_) => "invalid_json",
            Self::InvalidUtf8 => "invalid_encoding",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::BodyTimeout(_) => "body_timeout",
            Self::ModelNotFound(_) => "model_not_found",
            Self::ModelLoading(_) => "model_loading",
            Self::UnknownRoute { .. } => "unknown_url",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Overloaded(_) => "overloaded",
            Self::TooBusy(_) => "queue_wait_too_long",
            Self::Timeout => "timeout",
            Self::Unauthorized(_) => "invalid_api_key",
            Self::Forbidden(_) => "insufficient_scope",
            Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::ConcurrencyLimited(_) => "concurrency_limit_exceeded",
            Self::LimiterUnavailable(_) => "rate_limiter_unavailable",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::NotFound { .. } => "not_found",
            Self::PromptBlocked { .. } => "prompt_blocked",
            Self::AbuseBlocked(_) => "abuse_blocked",
            Self::AbuseThrottled(_) => "abuse_throttled",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::Internal(_) => "internal_error",
            Self::Upstream(_) => "upstream_error",
        }
    }

    pub fn param(&self) -> Option<String> {
        match self {
            Self::InvalidRequest { param, .. } => param.clone(),
            Self::ModelNotFound(_) => Some("model".into()),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(
            self.to_string(),
            self.kind(),
            self.param(),
            Some(self.code().to_string()),
        )
    }

    fn record(&self) {
        metrics::counter!("floodgate_request_errors_total", "code" => self.code()).increment(1);
        if self.status().is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "request refused");
        }
    }
}

/// The OpenAI error code an error response carries (in the response's extensions).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.record();
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        // For the request's event, which the HTTP layer writes from the response.
        response.extensions_mut().insert(ErrorCode(self.code()));
        let retry_after = match &self {
            Self::RateLimited { retry_after, .. } => {
                retry_after.map(|s| format!("{}", s.ceil().max(1.0) as u64))
            }
            // Retrying soon will not help; the period's end is the caller's business.
            Self::BudgetExceeded { .. } => None,
            _ if matches!(
                self.status(),
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
            ) =>
            {
                Some("1".into())
            }
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert("retry-after", v);
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(feature = "engine")]
impl From<EngineError> for GatewayError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::ContextLengthExceeded { .. } => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("messages".into()),
                code: Some("context_length_exceeded"),
            },
            EngineError::NoChatTemplate(_) => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("model".into()),
                code: Some("model_not_chat_capable"),
            },
            EngineError::Template(_) => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("messages".into()),
                code: Some("invalid_messages"),
            },
            EngineError::EmptyPrompt => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("prompt".into()),
                code: None,
            },
            EngineError::InvalidToken(_) => Self::InvalidRequest {
                message: e.to_string(),
                param: Some("prompt".into()),
                code: None,
            },
            EngineError::QueueFull(_) | EngineError::Stopped(_) => Self::Overloaded(e.to_string()),
            EngineError::WaitTooLong { .. } => Self::TooBusy(e.to_string()),
            EngineError::Timeout => Self::Timeout,
            EngineError::Load { .. } | EngineError::Decode(_) => Self::Internal(e.to_string()),
            EngineError::Upstream(why) => Self::Upstream(why),
        }
    }
}
