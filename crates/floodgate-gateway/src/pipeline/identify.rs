//! Stage 2, identify: who is asking. The `edge::identify` middleware has already turned
//! the bearer key into a [`Caller`] (or answered 401); this stage checks that the key
//! may generate and picks what a variant choice sticks to.

use crate::auth::{Caller, Scope};
use crate::error::GatewayError;

use super::RequestContext;

/// The key must hold the inference scope (403 otherwise).
pub fn authorize(caller: &Caller) -> Result<(), GatewayError> {
    caller.require(Scope::Inference)
}

/// A/B choices stick to the request's `user` when it names one, else to the key.
pub fn sticky(ctx: &mut RequestContext) {
    ctx.sticky = match (&ctx.request.user, &ctx.caller) {
        (Some(u), _) if !u.is_empty() => u.clone(),
        (_, Caller::Key(k)) => k.id.clone(),
        _ => String::new(),
    };
}
