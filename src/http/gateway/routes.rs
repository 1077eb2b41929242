//! Requests for gateway resources by where they arrive: on a resource's own host (a guard in
//! front of every other route), or at a resource's path on this server's host (`unknown_path`
//! in `http/mod.rs`), and the metrics' labels of both.

use actix_web::{HttpRequest, HttpResponse, web};

use super::super::state::AppState;
use super::{call, metadata};
use crate::config::Tenant;
use crate::oauth::context::RequestCtx;

/// The authority (host and port) a request names: its URI's (HTTP/2) or its `Host` header.
fn authority(head: &actix_web::dev::RequestHead) -> Option<&str> {
    head.uri.authority().map(|a| a.as_str()).or_else(|| {
        head.headers
            .get(actix_web::http::header::HOST)?
            .to_str()
            .ok()
    })
}

/// The gateway resource a request is for, on its own host or at its path on this server's
/// host, for the metrics' labels.
pub(crate) fn gateway_of(
    state: &AppState,
    head: &actix_web::dev::RequestHead,
    path: &str,
) -> Option<(std::sync::Arc<Tenant>, usize)> {
    let serving = state.serving();
    if serving.has_gateway_hosts()
        && let Some(found) = authority(head).and_then(|a| serving.gateway_at_host(a))
    {
        return Some(found);
    }
    serving.gateway_at_path(path)
}

/// Whether a request is for a gateway resource with a host of its own (the routes' guard).
pub(crate) fn is_for_gateway_host(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    let Some(state) = ctx.app_data::<web::Data<AppState>>() else {
        return false;
    };
    state.serving().has_gateway_hosts()
        && authority(ctx.head()).is_some_and(|a| state.serving().gateway_at_host(a).is_some())
}

/// A request on a gateway resource's own host: its metadata (at the root and at the
/// resource's path, as RFC 9728 §3.1 and the SDKs look), its endpoint, or 404.
pub(crate) async fn on_gateway_host(
    state: web::Data<AppState>,
    ctx: RequestCtx,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some((tenant, i)) = authority(req.head()).and_then(|a| state.serving().gateway_at_host(a))
    else {
        return super::super::error::not_found("there is nothing at this path");
    };
    let resource_path = url::Url::parse(tenant.resources()[i].uri.as_str())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let path = req.path().trim_end_matches('/');
    if let Some(rest) = path.strip_prefix("/.well-known/oauth-protected-resource") {
        if req.method() == actix_web::http::Method::GET
            && (rest.is_empty() || rest == resource_path)
        {
            return metadata(&tenant, i);
        }
    } else if path == resource_path {
        return call(&state, &ctx, &tenant, i, &req, payload).await;
    }
    super::super::error::not_found("there is nothing at this path")
}
