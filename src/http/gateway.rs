//! A gateway resource's MCP endpoint (`gateway/`): the HTTP side. A call is admitted
//! (`Origin`, token), its body read within the resource's limit and checked (one JSON-RPC
//! message whose `Mcp-*` headers agree), the caller's identity added, and the MCP server's
//! answer streamed back. A browser-based client of an allowed origin gets CORS.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::state::AppState;
use crate::config::Tenant;
use crate::config::gateway::GatewayConfig;
use crate::config::resource::ResourceConfig;
use crate::gateway::admission::{Caller, Refused, admit, origin_allowed};
use crate::gateway::forward::{Failure, Outgoing, forward};
use crate::gateway::identity::identity_headers;
use crate::gateway::message::{self, Malformed};
use crate::gateway::policy::missing_scopes;
use crate::oauth::context::RequestCtx;
use crate::oauth::resource_metadata::{Refusal, challenge, metadata_url};

/// Headers a browser-based client may send (CORS preflight).
const CORS_ALLOWED_HEADERS: &str = "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name";
/// Headers a browser-based client may read.
const CORS_EXPOSED_HEADERS: &str = "Mcp-Session-Id, WWW-Authenticate";

/// The gateway resource a call is for.
#[derive(Clone, Copy)]
struct Target<'a> {
    tenant: &'a Tenant,
    resource: &'a ResourceConfig,
    gateway: &'a GatewayConfig,
}

/// A call to the gateway resource `index` of `tenant`.
pub(crate) async fn call(
    state: &AppState,
    ctx: &RequestCtx,
    tenant: &Tenant,
    index: usize,
    req: &HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let resource = &tenant.resources()[index];
    let Some(gateway) = resource.gateway.as_ref() else {
        return super::error::not_found("there is nothing at this path");
    };
    let origin = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .filter(|o| origin_allowed(resource, o));
    let target = Target {
        tenant,
        resource,
        gateway,
    };
    let mut res = if req.method() == actix_web::http::Method::OPTIONS {
        preflight(origin.is_some())
    } else {
        admitted_call(state, ctx, target, req, payload).await
    };
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let headers = res.headers_mut();
        headers.insert(
            HeaderName::from_static("access-control-allow-origin"),
            origin,
        );
        headers.insert(
            HeaderName::from_static("access-control-expose-headers"),
            HeaderValue::from_static(CORS_EXPOSED_HEADERS),
        );
        headers.append(
            actix_web::http::header::VARY,
            HeaderValue::from_static("Origin"),
        );
    }
    res
}

/// The answer to a CORS preflight: allowed only for an origin the resource allows.
fn preflight(allowed: bool) -> HttpResponse {
    if !allowed {
        return HttpResponse::Forbidden()
            .json(json!({"error": "this origin may not call this resource"}));
    }
    HttpResponse::NoContent()
        .insert_header(("Access-Control-Allow-Methods", "GET, POST, DELETE"))
        .insert_header(("Access-Control-Allow-Headers", CORS_ALLOWED_HEADERS))
        .insert_header(("Access-Control-Max-Age", "86400"))
        .finish()
}

/// A call that is not a preflight: admitted, read, checked and passed on.
async fn admitted_call(
    state: &AppState,
    ctx: &RequestCtx,
    target: Target<'_>,
    req: &HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Target {
        tenant, resource, ..
    } = target;
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    let token = super::body::bearer_token(req);
    let caller = match admit(state.auth(), tenant, resource, origin, token, ctx.now).await {
        Err(e) => return super::error::error_response(&e),
        Ok(Err(refused)) => return refusal(resource, &refused),
        Ok(Ok(caller)) => caller,
    };
    let body = match super::body::read_capped(payload, target.gateway.max_body_bytes).await {
        Ok(body) => web::Bytes::from(body),
        Err(res) => return res,
    };
    if req.method() == actix_web::http::Method::POST {
        let message = match checked_message(req, &body) {
            Ok(message) => message,
            Err(e) => return jsonrpc_error(StatusCode::BAD_REQUEST, -32600, &e.to_string()),
        };
        let granted = caller.text("scope");
        let missing = missing_scopes(target.gateway, &message, granted);
        if !missing.is_empty() {
            return insufficient_scope(resource, granted, &missing);
        }
    }
    pass_on(state, ctx, target, &caller, req, body).await
}

/// The POST body's message, checked against the `Mcp-Method` and `Mcp-Name` headers.
fn checked_message(req: &HttpRequest, body: &[u8]) -> Result<message::Message, Malformed> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let message = message::read(body)?;
    message::check_headers(&message, header("mcp-method"), header("mcp-name"))?;
    Ok(message)
}

/// The call passed to the MCP server with the caller's identity, its answer streamed back.
async fn pass_on(
    state: &AppState,
    ctx: &RequestCtx,
    target: Target<'_>,
    caller: &Caller,
    req: &HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Target {
        tenant,
        resource,
        gateway,
    } = target;
    let identity =
        match identity_headers(state.auth(), tenant, resource, gateway, caller, ctx.now).await {
            Ok(headers) => headers,
            Err(e) => return super::error::error_response(&e),
        };
    let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return HttpResponse::MethodNotAllowed().finish();
    };
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let call = Outgoing {
        method,
        headers,
        identity,
        body,
    };
    match forward(state.gateway_client(), gateway, call).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = HttpResponse::build(status);
            for (name, value) in answer.headers {
                out.append_header((name, value));
            }
            out.insert_header((
                "Content-Security-Policy",
                "default-src 'none'; frame-ancestors 'none'; sandbox",
            ));
            out.streaming(answer.body)
        }
        Err(failure) => {
            tracing::warn!(tenant = %tenant.id, resource = %resource.uri, backend = %gateway.backend, reason = %failure, "a gateway call got no answer to pass on");
            let status = match failure {
                Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                Failure::Unreachable(_) | Failure::WrongType(_) => StatusCode::BAD_GATEWAY,
            };
            jsonrpc_error(status, -32603, &failure.to_string())
        }
    }
}

/// A refused call: 401 with the challenge MCP clients follow to log in, or 403 for a page of
/// another origin.
fn refusal(resource: &ResourceConfig, refused: &Refused) -> HttpResponse {
    match refused {
        Refused::Origin(why) => HttpResponse::Forbidden()
            .json(json!({"error": "forbidden_origin", "error_description": why})),
        Refused::Token(why) => {
            // What a login asks for first: the resource's default scopes (the rules' scope
            // challenges widen it when a call needs more), else all of its scopes.
            let scopes: Vec<&str> = if resource.default_scopes.is_empty() {
                resource.scopes.iter().map(|s| s.name.as_str()).collect()
            } else {
                resource.default_scopes.iter().map(String::as_str).collect()
            };
            let public_why =
                "the access token is missing, expired, revoked or not for this resource";
            tracing::info!(resource = %resource.uri, reason = %why, "a gateway call was refused");
            HttpResponse::Unauthorized()
                .insert_header((
                    "WWW-Authenticate",
                    challenge(
                        Refusal::InvalidToken,
                        public_why,
                        &scopes,
                        &metadata_url(resource.uri.as_str()),
                    ),
                ))
                .json(json!({"error": "invalid_token", "error_description": public_why}))
        }
    }
}

/// 403 `insufficient_scope`: the challenge names the scopes held and those missing, so that a
/// client asking again for what it names keeps what it had (RFC 6750 §3.1; the MCP
/// specification's scope challenge).
fn insufficient_scope(
    resource: &ResourceConfig,
    granted: &str,
    missing: &[String],
) -> HttpResponse {
    let why = format!("this call needs the scope {}", missing.join(" "));
    let mut scopes: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
    scopes.extend(missing.iter().map(String::as_str));
    tracing::info!(resource = %resource.uri, missing = %missing.join(" "), "a gateway call lacked a scope");
    HttpResponse::Forbidden()
        .insert_header((
            "WWW-Authenticate",
            challenge(
                Refusal::InsufficientScope,
                &why,
                &scopes,
                &metadata_url(resource.uri.as_str()),
            ),
        ))
        .json(json!({"error": "insufficient_scope", "error_description": why}))
}

/// A JSON-RPC error answer (with no request id: the gateway answers before or instead of the
/// MCP server).
fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    }))
}

/// The protected-resource metadata of the gateway resource `index` of `tenant`, for any
/// origin (MCP clients in browsers read it).
pub(crate) fn metadata(tenant: &Tenant, index: usize) -> HttpResponse {
    let doc = crate::oauth::resource_metadata::protected_resource_metadata(
        tenant,
        &tenant.resources()[index],
    );
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(doc)
}

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
        return super::error::not_found("there is nothing at this path");
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
    super::error::not_found("there is nothing at this path")
}
