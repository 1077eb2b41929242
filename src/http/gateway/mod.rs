//! A gateway resource's MCP endpoint (`gateway/`): the HTTP side. A call is admitted
//! (`Origin`, token), its body read within the resource's limit and checked (one JSON-RPC
//! message whose `Mcp-*` headers agree), the caller's identity added, and the MCP server's
//! answer streamed back. `answers.rs` holds the answers the gateway gives itself (refusals,
//! CORS, metadata), `routes.rs` the routing by host and path.

mod answers;
mod routes;

pub(crate) use answers::metadata;
use answers::{
    CORS_EXPOSED_HEADERS, answer_head, dpop_refusal, insufficient_scope, insufficient_sign_in,
    jsonrpc_error, jsonrpc_error_for, method_not_allowed, preflight, refusal,
};
pub(crate) use routes::{gateway_of, is_for_gateway_host, on_gateway_host};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};

use super::state::AppState;
use crate::config::Tenant;
use crate::config::gateway::GatewayConfig;
use crate::config::resource::ResourceConfig;
use crate::gateway::admission::{Caller, Presented, Refused, Scheme, admit, origin_allowed};
use crate::gateway::downstream::Missing;
use crate::gateway::forward::{Answer, Failure, Outgoing, forward};
use crate::gateway::identity::identity_headers;
use crate::gateway::listing::{
    Listing, MAX_LIST_BYTES, filter_event_stream, filter_json, listing, read_whole,
};
use crate::gateway::message::{self, Malformed};
use crate::gateway::policy::{Decision, Who, decide, names_callers};
use crate::gateway::record::CallRecord;
use crate::oauth::context::RequestCtx;
use crate::oauth::dpop::ResourceRefusal;

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
    let mut res = match *req.method() {
        Method::OPTIONS => preflight(origin.is_some()),
        Method::GET | Method::POST | Method::DELETE => {
            let res = admitted_call(state, ctx, target, req, payload, &mut record).await;
            record.finish(res.status().as_u16());
            res
        }
        // Streamable HTTP has these three: nothing else reaches the MCP server.
        _ => {
            record.outcome = "malformed";
            record.finish(405);
            method_not_allowed()
        }
    };
    // The answer depends on the Origin: caches must key on it.
    res.headers_mut().append(
        actix_web::http::header::VARY,
        HeaderValue::from_static("Origin"),
    );
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
    }
    res
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
    let message = if req.method() == Method::POST {
        match decided_message(target, &caller, req, &body, record) {
            Ok(message) => Some(message),
            Err(res) => return *res,
        }
    } else if body.is_empty() {
        None
    } else {
        // A body the rules never read must not reach the MCP server (nor linger on a shared
        // connection to it).
        record.outcome = "malformed";
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "a GET or DELETE carries no body",
        );
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
    let presented = match presented_token(req) {
        Ok(p) => p,
        Err(refused) => {
            record.outcome = "refused_token";
            return Err(dpop_refusal(resource, &refused, String::new));
        }
    };
    let caller = match admit(state.auth(), tenant, resource, origin, presented, ctx.now).await {
        Err(e) => {
            record.outcome = "unavailable";
            return Err(super::error::error_response(&e));
        }
        Ok(Err(refused)) => {
            record.outcome = match refused {
                Refused::Origin(_) => "refused_origin",
                Refused::Token(_) | Refused::Dpop(_) => "refused_token",
            };
            if let Refused::Dpop(d) = &refused {
                let tokens = state.auth().tokens();
                return Err(dpop_refusal(resource, d, || {
                    tokens.dpop_nonce(tenant, ctx.now)
                }));
            }
            return Err(refusal(resource, &refused));
        }
        Ok(Ok(caller)) => caller,
    };
    record.caller(&caller);
    Ok(caller)
}

/// The access token a call presents (`Authorization: Bearer` or `DPoP`), with its one DPoP
/// proof; a call with two proofs is refused.
fn presented_token(req: &HttpRequest) -> Result<Option<Presented<'_>>, ResourceRefusal> {
    let proof = super::token::dpop_proof(req).map_err(|e| ResourceRefusal::Proof(e.description))?;
    let Some(value) = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let (scheme, token) = match value.split_once(' ') {
        Some((s, t)) if s.eq_ignore_ascii_case("bearer") => (Scheme::Bearer, t.trim()),
        Some((s, t)) if s.eq_ignore_ascii_case("dpop") => (Scheme::Dpop, t.trim()),
        _ => return Ok(None),
    };
    Ok(Some(Presented {
        scheme,
        token,
        proof,
        method: req.method().as_str(),
        path: req.path(),
    }))
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
    match decide(target.gateway, &target.resource.scopes, &checked, &who) {
        Decision::Allow => Ok(checked),
        Decision::NeedsSignIn(acr_values) => {
            record.outcome = "refused_sign_in";
            Err(Box::new(insufficient_sign_in(
                target.resource,
                who.scopes(),
                &acr_values,
            )))
        }
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
    let mut sent = [None, None];
    for (i, name) in [("Mcp-Method", "mcp-method"), ("Mcp-Name", "mcp-name")]
        .iter()
        .enumerate()
    {
        let mut values = req.headers().get_all(name.1);
        sent[i] = values.next().and_then(|v| v.to_str().ok());
        // One copy is checked and passed on; a second would reach the MCP server unchecked.
        if values.next().is_some() {
            return Err(Malformed::RepeatedHeader(name.0));
        }
    }
    let message = message::read(body)?;
    message::check_headers(&message, sent[0], sent[1])?;
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
    let mut identity =
        match identity_headers(state.auth(), tenant, resource, gateway, caller, ctx.now).await {
            Ok(headers) => headers,
            Err(e) => {
                record.outcome = "unavailable";
                return super::error::error_response(&e);
            }
        };
    // A message the MCP server acts on carries the downstream API's token; the event stream
    // (GET) and the end of a session (DELETE) do not, so that a reconnecting stream never
    // costs a call to the IdP.
    if let Some(api) = gateway
        .downstream_api
        .as_ref()
        .filter(|_| call.message.is_some())
    {
        let on_behalf_of = gateway.on_behalf_of_app.as_deref();
        let bearer = super::body::bearer_token(req).unwrap_or_default();
        match state
            .gateway_downstream()
            .header(
                state.auth(),
                (tenant, api, on_behalf_of),
                caller,
                bearer,
                ctx.now,
            )
            .await
        {
            Ok(header) => identity.extend(header),
            Err(missing) => return no_downstream_token(target, api, missing, record),
        }
    }
    let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return HttpResponse::MethodNotAllowed().finish();
    };
    // Where rules hide entries of lists, a resumed stream (`Last-Event-ID`) could replay a
    // list answer the gateway never saw: resumption is not offered there.
    let resumable = !names_callers(gateway);
    let Some(session) = backend_session(state, resource, caller, req) else {
        record.outcome = "refused_session";
        return jsonrpc_error(
            StatusCode::NOT_FOUND,
            -32001,
            "Session not found: the session id is unknown, or was made for another user or client",
        );
    };
    let headers = req
        .headers()
        .iter()
        .filter(|(name, _)| resumable || name.as_str() != "last-event-id")
        .filter(|(name, _)| name.as_str() != "mcp-session-id")
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .chain(session.as_deref().map(|id| ("mcp-session-id", id)))
        .collect();
    let expires = caller
        .claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(ctx.now);
    let outgoing = Outgoing {
        method,
        headers,
        identity,
        lifetime: std::time::Duration::from_secs(expires.saturating_sub(ctx.now)),
        body: call.body,
    };
    let listed = call
        .message
        .and_then(|m| m.method.as_deref())
        .and_then(listing)
        .filter(|_| names_callers(gateway));
    let answer = forward(state.gateway_client(), gateway, outgoing).await;
    record.answered();
    pass_back(state, target, caller, listed, answer, record).await
}

/// The answer when the MCP server's downstream API token cannot be had: the user signs in
/// again (401) when the login cannot be used, else 502 with the reason in the log.
fn no_downstream_token(
    target: Target<'_>,
    api: &str,
    missing: Missing,
    record: &mut CallRecord<'_>,
) -> HttpResponse {
    let (tenant, resource) = (&target.tenant.id, &target.resource.uri);
    match missing {
        Missing::SignIn(why) => {
            record.outcome = "refused_token";
            tracing::info!(tenant = %tenant, resource = %resource, api, reason = %why, "a gateway call's login cannot obtain its MCP server's downstream token; the user must sign in again");
            refusal(target.resource, &Refused::Token(why))
        }
        Missing::Failed(why) => {
            record.outcome = "unavailable";
            tracing::warn!(tenant = %tenant, resource = %resource, api, reason = %why, "the MCP server's downstream API token could not be obtained; the call was not passed on");
            jsonrpc_error(
                StatusCode::BAD_GATEWAY,
                -32603,
                "a token for the MCP server's downstream API could not be obtained; the operator's log has the reason",
            )
        }
    }
}

/// The MCP server's answer passed back (its session id bound to the caller, a list filtered),
/// or what became of the call instead.
async fn pass_back(
    state: &AppState,
    target: Target<'_>,
    caller: &Caller,
    listed: Option<Listing>,
    answer: Result<Answer, Failure>,
    record: &mut CallRecord<'_>,
) -> HttpResponse {
    let Target {
        tenant,
        resource,
        gateway,
    } = target;
    match answer {
        Ok(mut answer) => {
            for (name, value) in &mut answer.headers {
                if name == "mcp-session-id" {
                    *value = state
                        .gateway_sessions()
                        .seal(resource.uri.as_str(), caller, value);
                }
            }
            match listed {
                Some(listed) => filtered_list(gateway, caller, listed, answer, record).await,
                None => {
                    let mut out = answer_head(&answer);
                    out.streaming(answer.body)
                }
            }
        }
        Err(failure) => {
            let detail = match &failure {
                Failure::Unreachable(detail) => detail.clone(),
                other => other.to_string(),
            };
            tracing::warn!(tenant = %tenant.id, resource = %resource.uri, backend = %gateway.backend, reason = %detail, "a gateway call got no answer to pass on");
            let status = match failure {
                Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            };
            record.outcome = match failure {
                Failure::Timeout(_) => "timeout",
                Failure::Unreachable(_) => "unreachable",
                Failure::WrongType(_) | Failure::WrongStatus(_) => "wrong_type",
            };
            jsonrpc_error(status, -32603, &failure.to_string())
        }
    }
}

/// The MCP server's own session id for the one the client presents (`gateway/sessions.rs`):
/// `Some(None)` without one, `None` when it is not this caller's (or is sent twice).
fn backend_session(
    state: &AppState,
    resource: &ResourceConfig,
    caller: &Caller,
    req: &HttpRequest,
) -> Option<Option<String>> {
    let mut sent = req.headers().get_all("mcp-session-id");
    let Some(presented) = sent.next() else {
        return Some(None);
    };
    if sent.next().is_some() {
        return None;
    }
    let presented = presented.to_str().ok()?;
    state
        .gateway_sessions()
        .open(resource.uri.as_str(), caller, presented)
        .map(Some)
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
            normal_name: None,
            id: serde_json::Value::Null,
        };
        !matches!(decide(gateway, &[], &entry, &who), Decision::Forbidden(_))
    };
    let filtered = if event_stream {
        filter_event_stream(&body, listed, &keep)
    } else {
        filter_json(&body, listed, &keep)
    };
    out.body(filtered.unwrap_or(body))
}
