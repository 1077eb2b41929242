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
use crate::gateway::forward::{Answer, Failure, Outgoing, forward};
use crate::gateway::identity::identity_headers;
use crate::gateway::listing::{
    Listing, MAX_LIST_BYTES, filter_event_stream, filter_json, listing, read_whole,
};
use crate::gateway::message::{self, Malformed};
use crate::gateway::policy::{Decision, Who, decide, names_callers};
use crate::gateway::record::CallRecord;
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
    let mut record = CallRecord::new(
        tenant.id.as_str(),
        resource.uri.as_str(),
        req.method().as_str(),
    );
    let mut res = if req.method() == actix_web::http::Method::OPTIONS {
        preflight(origin.is_some())
    } else {
        admitted_call(state, ctx, target, req, payload, &mut record).await
    };
    if req.method() != actix_web::http::Method::OPTIONS {
        record.finish(res.status().as_u16());
    }
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
    record: &mut CallRecord<'_>,
) -> HttpResponse {
    let caller = match admitted_caller(state, ctx, target, req, record).await {
        Ok(caller) => caller,
        Err(res) => return res,
    };
    let body = match super::body::read_capped(payload, target.gateway.max_body_bytes).await {
        Ok(body) => web::Bytes::from(body),
        Err(res) => {
            record.outcome = "malformed";
            return res;
        }
    };
    let message = if req.method() == actix_web::http::Method::POST {
        match decided_message(target, &caller, req, &body, record) {
            Ok(message) => Some(message),
            Err(res) => return *res,
        }
    } else {
        None
    };
    if let Err(res) = within_limits(state, target, &caller, record) {
        return *res;
    }
    let call = Call {
        caller: &caller,
        message: message.as_ref(),
        body,
    };
    pass_on(state, ctx, target, call, req, record).await
}

/// The caller of an admitted request within its rate limits, or the refusal.
async fn admitted_caller(
    state: &AppState,
    ctx: &RequestCtx,
    target: Target<'_>,
    req: &HttpRequest,
    record: &mut CallRecord<'_>,
) -> Result<Caller, HttpResponse> {
    let Target {
        tenant, resource, ..
    } = target;
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    let token = super::body::bearer_token(req);
    let caller = match admit(state.auth(), tenant, resource, origin, token, ctx.now).await {
        Err(e) => {
            record.outcome = "unavailable";
            return Err(super::error::error_response(&e));
        }
        Ok(Err(refused)) => {
            record.outcome = match refused {
                Refused::Origin(_) => "refused_origin",
                Refused::Token(_) => "refused_token",
            };
            return Err(refusal(resource, &refused));
        }
        Ok(Ok(caller)) => caller,
    };
    record.caller(&caller);
    Ok(caller)
}

/// Counts an admitted call against the caller's rate limits, or refuses it (429).
fn within_limits(
    state: &AppState,
    target: Target<'_>,
    caller: &Caller,
    record: &mut CallRecord<'_>,
) -> Result<(), Box<HttpResponse>> {
    let Target {
        tenant, resource, ..
    } = target;
    let limits = state.gateway_limits();
    let (user, client) = (caller.text("sub"), caller.text("client_id"));
    if let Err(limited) = limits.check(resource.uri.as_str(), target.gateway, user, client) {
        record.outcome = "rate_limited";
        crate::metrics::metrics()
            .rate_limited
            .with_label_values(&[tenant.id.as_str(), limited.limit])
            .inc();
        tracing::info!(tenant = %tenant.id, resource = %resource.uri, client_id = client, limit = limited.limit, "a gateway call was over its rate limit");
        let mut res = jsonrpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            -32000,
            "too many calls to this resource; try again after the time Retry-After says",
        );
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_seconds),
        );
        return Err(Box::new(res));
    }
    Ok(())
}

/// A POST's message, checked and allowed by the rules, or the refusal.
fn decided_message(
    target: Target<'_>,
    caller: &Caller,
    req: &HttpRequest,
    body: &[u8],
    record: &mut CallRecord<'_>,
) -> Result<message::Message, Box<HttpResponse>> {
    let checked = checked_message(req, body).map_err(|e| {
        record.outcome = "malformed";
        Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            &e.to_string(),
        ))
    })?;
    record.message(&checked);
    let who = Who::of(&caller.claims);
    match decide(target.gateway, &checked, &who) {
        Decision::Allow => Ok(checked),
        Decision::NeedsScopes(missing) => {
            record.outcome = "refused_scope";
            Err(Box::new(insufficient_scope(
                target.resource,
                who.scopes(),
                &missing,
            )))
        }
        Decision::Forbidden(why) => {
            record.outcome = "refused_rule";
            tracing::info!(tenant = %target.tenant.id, resource = %target.resource.uri, client_id = caller.text("client_id"), reason = %why, "a gateway call was refused by a rule");
            Err(Box::new(jsonrpc_error_for(
                StatusCode::FORBIDDEN,
                &checked.id,
                -32001,
                &why,
            )))
        }
    }
}

/// An admitted call: who makes it, its message (a POST's) and its body.
struct Call<'a> {
    caller: &'a Caller,
    message: Option<&'a message::Message>,
    body: web::Bytes,
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
    call: Call<'_>,
    req: &HttpRequest,
    record: &mut CallRecord<'_>,
) -> HttpResponse {
    let Target {
        tenant,
        resource,
        gateway,
    } = target;
    let caller = call.caller;
    let identity =
        match identity_headers(state.auth(), tenant, resource, gateway, caller, ctx.now).await {
            Ok(headers) => headers,
            Err(e) => {
                record.outcome = "unavailable";
                return super::error::error_response(&e);
            }
        };
    let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return HttpResponse::MethodNotAllowed().finish();
    };
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let outgoing = Outgoing {
        method,
        headers,
        identity,
        body: call.body,
    };
    let listed = call
        .message
        .and_then(|m| m.method.as_deref())
        .and_then(listing)
        .filter(|_| names_callers(gateway));
    let answer = forward(state.gateway_client(), gateway, outgoing).await;
    record.answered();
    match answer {
        Ok(answer) => match listed {
            Some(listed) => filtered_list(gateway, caller, listed, answer, record).await,
            None => {
                let mut out = answer_head(&answer);
                out.streaming(answer.body)
            }
        },
        Err(failure) => {
            tracing::warn!(tenant = %tenant.id, resource = %resource.uri, backend = %gateway.backend, reason = %failure, "a gateway call got no answer to pass on");
            let status = match failure {
                Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                Failure::Unreachable(_) | Failure::WrongType(_) => StatusCode::BAD_GATEWAY,
            };
            record.outcome = match failure {
                Failure::Timeout(_) => "timeout",
                Failure::Unreachable(_) => "unreachable",
                Failure::WrongType(_) => "wrong_type",
            };
            jsonrpc_error(status, -32603, &failure.to_string())
        }
    }
}

/// The status and headers of the MCP server's answer, as passed back.
fn answer_head(answer: &Answer) -> actix_web::HttpResponseBuilder {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        out.append_header((name.as_str(), value.as_str()));
    }
    out.insert_header((
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'; sandbox",
    ));
    out
}

/// A list answer with what the caller may not call left out (`gateway/listing.rs`).
async fn filtered_list(
    gateway: &GatewayConfig,
    caller: &Caller,
    listed: Listing,
    answer: Answer,
    record: &mut CallRecord<'_>,
) -> HttpResponse {
    let mut out = answer_head(&answer);
    let event_stream = answer
        .headers
        .first()
        .is_some_and(|(_, ct)| ct.to_ascii_lowercase().starts_with("text/event-stream"));
    let Some(body) = read_whole(answer.body, MAX_LIST_BYTES).await else {
        record.outcome = "wrong_type";
        tracing::warn!(backend = %gateway.backend, "a list answer was longer than the gateway filters, or broke off; it was refused");
        return jsonrpc_error(
            StatusCode::BAD_GATEWAY,
            -32603,
            "the MCP server's list answer could not be read whole to leave out what the caller may not call",
        );
    };
    let who = Who::of(&caller.claims);
    let keep = |name: &str| {
        let entry = message::Message {
            method: Some(listed.call.to_owned()),
            name: Some(name.to_owned()),
            id: serde_json::Value::Null,
        };
        !matches!(decide(gateway, &entry, &who), Decision::Forbidden(_))
    };
    let filtered = if event_stream {
        filter_event_stream(&body, listed, &keep)
    } else {
        filter_json(&body, listed, &keep)
    };
    out.body(filtered.unwrap_or(body))
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
    granted: &[&str],
    missing: &[String],
) -> HttpResponse {
    let why = format!("this call needs the scope {}", missing.join(" "));
    let mut scopes: Vec<&str> = granted.to_vec();
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
    jsonrpc_error_for(status, &serde_json::Value::Null, code, message)
}

/// A JSON-RPC error answer to the request `id`.
fn jsonrpc_error_for(
    status: StatusCode,
    id: &serde_json::Value,
    code: i64,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "jsonrpc": "2.0",
        "id": id,
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
