//! The `RequestCtx` of each request (`oauth/context.rs`): made once by the request log
//! (`request_log`) when the request arrives, kept in the request's extensions, and handed to
//! handlers as an extractor, which pass it to the flows (a handler that reads a body first
//! takes `now` again once it has it, `body_read`).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::state::AppState;
use crate::oauth::context::{Caller, RequestCtx};

/// The context of `req`, arriving now: its caller is the client behind a trusted proxy, else
/// the peer (`client_addr.rs`); a request without a peer address is `Caller::Unknown`.
pub(crate) fn new_ctx(
    req: &HttpRequest,
    request_id: Option<String>,
    with_caller: bool,
) -> RequestCtx {
    let caller = req
        .app_data::<web::Data<AppState>>()
        .filter(|_| with_caller)
        .and_then(|state| state.client_ip(req))
        .map_or(Caller::Unknown, Caller::Address);
    RequestCtx {
        now: crate::clock::unix_now(),
        caller,
        request_id,
    }
}

/// The context the request log made for `req`; one made now for a request that did not pass
/// through it.
pub(crate) fn ctx_of(req: &HttpRequest) -> RequestCtx {
    req.extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(|| new_ctx(req, None, true))
}

/// `ctx` with `now` read again, for a handler that has read the request's body: a client may
/// send a body slowly, and its request is judged (a code's expiry, a grace window, an
/// assertion's lifetime) by when it was complete.
pub(crate) fn body_read(ctx: RequestCtx) -> RequestCtx {
    RequestCtx {
        now: crate::clock::unix_now(),
        ..ctx
    }
}

impl FromRequest for RequestCtx {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(ctx_of(req)))
    }
}
