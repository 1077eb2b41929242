//! `POST /{tenant}/register` (RFC 7591 §3): body cap, content type, rate limit, then the
//! registry; 201 only once the client is on disk.

use crate::oauth::context::RequestCtx;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::{bearer_token, read_json_metadata};
use super::error::{error_response, error_response_with_status, not_found};
use super::extract::ApiTenant;
use super::request_info::client_value;
use super::state::AppState;
use crate::config::Tenant;
use crate::oauth::{ErrorCode, OAuthError};

/// Largest registration request body accepted.
pub(crate) const MAX_REGISTRATION_BODY: usize = 16 * 1024;

pub(crate) async fn register(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    if !tenant.registration().dcr {
        return not_found("dynamic client registration is turned off for this tenant");
    }
    if let Some(refused) = rate_limited(&ctx, &state, &tenant) {
        return refused;
    }
    let value = match read_json_metadata(
        &req,
        payload,
        MAX_REGISTRATION_BODY,
        "the registration request",
    )
    .await
    {
        Ok(v) => v,
        Err(res) => return res,
    };
    let ctx = super::request_ctx::body_read(ctx);
    match state.registry().register(&tenant, &value, &ctx).await {
        Ok(registered) => {
            crate::metrics::metrics()
                .registrations
                .with_label_values(&[tenant.id.as_str()])
                .inc();
            let r = &registered.record;
            let apps = crate::domain::client::describe_apps(&r.apps);
            tracing::info!(target: "audit", event = "client_registered", tenant = %tenant.id, client_id = %r.client_id,
                apps = %apps, auth_method = r.metadata.token_endpoint_auth_method.as_str(),
                client_name = r.metadata.client_name.as_deref().unwrap_or(""),
                source = %crate::http::client_addr::describe(ctx.caller.address()));
            HttpResponse::Created()
                .insert_header(("Cache-Control", "no-store"))
                .json(registered.response_body(&tenant))
        }
        Err(e) => {
            let client_name = client_value(value.get("client_name").and_then(|v| v.as_str()));
            if crate::log_budget::admit_refusal(
                crate::log_budget::Refusal::Registration,
                &e,
                ctx.caller.address(),
            ) {
                tracing::info!(tenant = %tenant.id, client_name, error = %e, "registration refused");
            }
            error_response(&e)
        }
    }
}

/// The answer when this registration would go over the address's or the tenant's
/// registrations per minute.
fn rate_limited(ctx: &RequestCtx, state: &AppState, tenant: &Tenant) -> Option<HttpResponse> {
    let source = ctx.caller.address();
    let refusal = match source {
        Some(ip) if !state.allow_registration(&tenant.id, ip) => {
            Some("too many registrations from this address; try again in a minute")
        }
        _ if !state.allow_tenant_registration(&tenant.id) => {
            Some("too many registrations at this server right now; try again in a minute")
        }
        _ => None,
    };
    if let Some(why) = refusal {
        let limit = if why.contains("this address") {
            "address"
        } else {
            "tenant"
        };
        crate::metrics::metrics()
            .rate_limited
            .with_label_values(&[tenant.id.as_str(), limit])
            .inc();
        if crate::log_budget::admit(crate::log_budget::Refusal::RegistrationRateLimited, source) {
            tracing::warn!(target: "audit", event = "registration_rate_limited", tenant = %tenant.id,
                source = %crate::http::client_addr::describe(source), reason = why);
        }
        let mut res = error_response_with_status(
            StatusCode::TOO_MANY_REQUESTS,
            &OAuthError::new(ErrorCode::TemporarilyUnavailable, why),
        );
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("60"),
        );
        return Some(res);
    }
    None
}

/// RFC 7592's answers carry the token's realm on a 401.
fn configuration_error(
    ctx: &RequestCtx,
    tenant: &Tenant,
    client_id: &str,
    e: &OAuthError,
) -> HttpResponse {
    if crate::log_budget::admit_refusal(
        crate::log_budget::Refusal::ClientConfiguration,
        e,
        ctx.caller.address(),
    ) {
        tracing::info!(tenant = %tenant.id, client_id = client_value(Some(client_id)), error = %e, "client configuration request refused");
    }
    let mut res = error_response(e);
    if e.code == ErrorCode::InvalidToken {
        res.headers_mut().insert(
            actix_web::http::header::WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    res
}

/// `GET /{tenant}/register/{client_id}` (RFC 7592 §2.1).
pub(crate) async fn read_configuration(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    ctx: RequestCtx,
) -> HttpResponse {
    let client_id = &path.1;
    match state
        .auth()
        .client_configuration()
        .read_registration(&tenant, client_id, bearer_token(&req), ctx.now)
        .await
    {
        Ok(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body),
        Err(e) => configuration_error(&ctx, &tenant, client_id, &e),
    }
}

/// `PUT /{tenant}/register/{client_id}` (RFC 7592 §2.2).
pub(crate) async fn update_configuration(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let value = match read_json_metadata(&req, payload, MAX_REGISTRATION_BODY, "the update").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let ctx = super::request_ctx::body_read(ctx);
    match state
        .auth()
        .client_configuration()
        .update_registration(&tenant, &path.1, bearer_token(&req), &value, ctx.now)
        .await
    {
        Ok(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body),
        Err(e) => configuration_error(&ctx, &tenant, &path.1, &e),
    }
}

/// `DELETE /{tenant}/register/{client_id}` (RFC 7592 §2.3).
pub(crate) async fn delete_configuration(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    ctx: RequestCtx,
) -> HttpResponse {
    match state
        .auth()
        .client_configuration()
        .delete_registration(&tenant, &path.1, bearer_token(&req), ctx.now)
        .await
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => configuration_error(&ctx, &tenant, &path.1, &e),
    }
}
