//! `POST /{tenant}/token`, `POST /{tenant}/revoke` and `POST /{tenant}/introspect`.

use crate::oauth::context::RequestCtx;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::read_form;
use super::error::error_response;
use super::extract::ApiTenant;
use super::request_info::client_value;
use super::state::AppState;
use crate::config::Tenant;
use crate::oauth::client_auth::{ClientCredentials, parse_basic};
use crate::oauth::params::Params;
use crate::oauth::{ErrorCode, OAuthError};

/// Largest token or revocation request accepted.
const MAX_TOKEN_BODY: usize = 16 * 1024;

fn credentials(req: &HttpRequest) -> Result<ClientCredentials, OAuthError> {
    let basic = match req.headers().get(AUTHORIZATION) {
        None => None,
        Some(h) => Some(h.to_str().ok().and_then(parse_basic).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidClient,
                "the Authorization header is not valid HTTP Basic",
            )
        })?),
    };
    Ok(ClientCredentials {
        basic,
        dpop: dpop_proof(req)?.map(str::to_owned),
    })
}

/// The request's one DPoP proof, if it sends one (RFC 9449 §4.3 step 1).
pub(crate) fn dpop_proof(req: &HttpRequest) -> Result<Option<&str>, OAuthError> {
    let mut values = Vec::new();
    for v in req.headers().get_all("dpop") {
        values.push(v.to_str().map_err(|_| {
            OAuthError::new(ErrorCode::InvalidDpopProof, "the DPoP header is not ASCII")
        })?);
    }
    crate::oauth::dpop::single_header(values.into_iter())
        .map_err(|why| OAuthError::new(ErrorCode::InvalidDpopProof, why))
}

/// Error responses of the token endpoint: `no-store`, and 401 with `WWW-Authenticate` for
/// client authentication failures (RFC 6749 §5.2).
fn token_error(tenant: &Tenant, e: &OAuthError) -> HttpResponse {
    let mut res = error_response(e);
    res.headers_mut().insert(
        actix_web::http::header::PRAGMA,
        actix_web::http::header::HeaderValue::from_static("no-cache"),
    );
    if e.code == ErrorCode::InvalidClient
        && let Ok(v) = actix_web::http::header::HeaderValue::from_str(&format!(
            "Basic realm=\"{}\"",
            tenant.issuer
        ))
    {
        res.headers_mut()
            .insert(actix_web::http::header::WWW_AUTHENTICATE, v);
    }
    res
}

/// The form and client credentials of a token or revocation request, or the response that
/// refuses it.
async fn read_request(
    tenant: &Tenant,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Params, ClientCredentials), HttpResponse> {
    let body = read_form(req, payload, MAX_TOKEN_BODY).await?;
    let creds = credentials(req).map_err(|e| token_error(tenant, &e))?;
    Ok((Params::parse(&body), creds))
}

pub(crate) async fn token(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let (form, creds) = match read_request(&tenant, &req, payload).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let ctx = super::request_ctx::body_read(ctx);
    crate::telemetry::record_client(presented_client(&form, &creds));
    let tokens = state.auth().tokens();
    // A tenant that wants nonces in proofs gives a fresh one with every answer to a request
    // that sent a proof (RFC 9449 §8.2), and with every `use_dpop_nonce`.
    let nonce = (tenant.dpop_requires_nonce() && creds.dpop.is_some())
        .then(|| ("DPoP-Nonce", tokens.dpop_nonce(&tenant, ctx.now)));
    let mut res = token_answer(&tenant, &form, &creds, &ctx, &state).await;
    if let Some(header) = nonce
        && let Ok(v) = actix_web::http::header::HeaderValue::from_str(&header.1)
    {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("dpop-nonce"),
            v,
        );
    }
    res
}

async fn token_answer(
    tenant: &Tenant,
    form: &Params,
    creds: &ClientCredentials,
    ctx: &RequestCtx,
    state: &AppState,
) -> HttpResponse {
    match state.auth().tokens().token(tenant, form, creds, ctx).await {
        Ok(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"))
            .json(body),
        Err(e) => {
            if crate::log_budget::admit_refusal(
                crate::log_budget::Refusal::Token,
                &e,
                ctx.caller.address(),
            ) {
                tracing::info!(tenant = %tenant.id, client_id = presented_client(form, creds), grant_type = client_value(form.get("grant_type")), error = %e, "token request refused");
            }
            token_error(tenant, &e)
        }
    }
}

/// The client id a token or revocation request presented (Basic, else the form), for its log
/// line; an assertion's `sub` is not read here.
fn presented_client<'a>(form: &'a Params, creds: &'a ClientCredentials) -> Option<&'a str> {
    let id = creds
        .basic
        .as_ref()
        .map(|(id, _)| id.as_str())
        .or_else(|| form.get("client_id"));
    client_value(id)
}

pub(crate) async fn revoke(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let (form, creds) = match read_request(&tenant, &req, payload).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let ctx = super::request_ctx::body_read(ctx);
    match state
        .auth()
        .tokens()
        .revoke(&tenant, &form, &creds, &ctx)
        .await
    {
        Ok(()) => HttpResponse::build(StatusCode::OK)
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(e) => {
            if crate::log_budget::admit_refusal(
                crate::log_budget::Refusal::Token,
                &e,
                ctx.caller.address(),
            ) {
                tracing::info!(tenant = %tenant.id, client_id = presented_client(&form, &creds), error = %e, "revocation request refused");
            }
            token_error(&tenant, &e)
        }
    }
}

pub(crate) async fn introspect(
    state: web::Data<AppState>,
    ApiTenant(tenant): ApiTenant,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let (form, creds) = match read_request(&tenant, &req, payload).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let ctx = super::request_ctx::body_read(ctx);
    match state
        .auth()
        .tokens()
        .introspect(&tenant, &form, &creds, &ctx)
        .await
    {
        Ok(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body),
        Err(e) => {
            if crate::log_budget::admit_refusal(
                crate::log_budget::Refusal::Token,
                &e,
                ctx.caller.address(),
            ) {
                tracing::info!(tenant = %tenant.id, client_id = presented_client(&form, &creds), error = %e, "introspection request refused");
            }
            token_error(&tenant, &e)
        }
    }
}
