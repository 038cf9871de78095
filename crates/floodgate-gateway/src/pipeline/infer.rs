//! Stage 6, infer: hand the request to a tier's backend (the embedded engine, an
//! upstream server or a worker). Dropping the returned generation cancels it.

use crate::backend::Generation;
use crate::error::GatewayError;
use crate::validate::GenParams;

use super::{resolve, Api, RequestContext};

/// Starts tier `tier` with `params` (the client's, or the cascade's check settings).
pub async fn start(
    ctx: &RequestContext,
    tier: usize,
    params: &GenParams,
) -> Result<Generation, GatewayError> {
    let backend = resolve::backend(ctx, tier);
    let default_max = ctx.config.limits.default_max_tokens;
    backend
        .generate(&ctx.request.prompt, params, default_max, ctx.request.echo)
        .await
        .map_err(|e| for_api(ctx.api, e))
}

/// The engine speaks of "messages"; on the text endpoint the client sent a prompt.
fn for_api(api: Api, e: GatewayError) -> GatewayError {
    match (api, e) {
        (
            Api::Text,
            GatewayError::InvalidRequest {
                message,
                param,
                code,
            },
        ) if param.as_deref() == Some("messages") => GatewayError::InvalidRequest {
            message,
            param: Some("prompt".into()),
            code,
        },
        (_, e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_error_names_the_prompt_on_the_text_endpoint() {
        let e = GatewayError::InvalidRequest {
            message: "too long".into(),
            param: Some("messages".into()),
            code: Some("context_length_exceeded"),
        };
        match for_api(Api::Text, e) {
            GatewayError::InvalidRequest { param, code, .. } => {
                assert_eq!(param.as_deref(), Some("prompt"));
                assert_eq!(code, Some("context_length_exceeded"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = GatewayError::invalid("bad", Some("messages".to_string()));
        match for_api(Api::Chat, e) {
            GatewayError::InvalidRequest { param, .. } => {
                assert_eq!(param.as_deref(), Some("messages"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
