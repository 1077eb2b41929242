//! `GET /{tenant}/authorize` and `POST /{tenant}/consent`: thin wrappers over
//! `AuthServer::validate_authorization`, the consent ticket and `begin_upstream`.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::read_form;
use super::pages::{ConsentView, consent_page, error_page};
use super::state::{AppState, unix_now};
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::ClientId;
use crate::oauth::authorize::{AuthorizeError, TRANSACTION_SECONDS, UpstreamRedirect};
use crate::oauth::consent::{APPROVAL_SECONDS, ConsentError};
use crate::oauth::params::Params;
use crate::oauth::{ErrorCode, OAuthError};

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The redirect to the IdP, carrying the cookie that binds the transaction to this browser.
fn with_transaction_cookie(
    state: &AppState,
    mut res: HttpResponse,
    up: UpstreamRedirect,
) -> HttpResponse {
    let _ = res.add_cookie(&cookie(
        state,
        up.cookie_name,
        up.cookie_value,
        TRANSACTION_SECONDS as i64,
    ));
    res
}

fn refused(tenant: &Tenant, e: AuthorizeError) -> HttpResponse {
    match e {
        AuthorizeError::Page { status, message } => {
            tracing::info!(tenant = %tenant.id, reason = %message, "authorization request refused on a page");
            error_page(status, &message)
        }
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        } => {
            tracing::info!(tenant = %tenant.id, error = %error, "authorization request refused");
            found(&AuthorizeError::location(
                &redirect_uri,
                state.as_deref(),
                &error,
                &tenant.issuer,
            ))
        }
    }
}

pub(super) fn cookie<'c>(
    state: &AppState,
    name: String,
    value: String,
    max_age: i64,
) -> Cookie<'c> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.auth().secure_cookies);
    c.set_max_age(CookieDuration::seconds(max_age));
    c
}

/// A CSRF token that looks like one of ours (43 base64url characters).
fn plausible_token(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn authorize(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(tenant) = state.tenant(&tenant) else {
        return error_page(404, "There is no tenant by this name on this server.");
    };
    let now = unix_now();
    let params = Params::parse(req.query_string());
    // This browser's approvals of the client named in the request, read once.
    let approval = params.get("client_id").and_then(|id| {
        req.cookie(
            &state
                .auth()
                .approval_cookie_name(tenant, &ClientId::new(id)),
        )
    });
    let approval = approval.as_ref().map(|c| c.value());
    let authorized = match state
        .auth()
        .validate_authorization(tenant, &params, approval, now)
        .await
    {
        Ok(a) => a,
        Err(e) => return refused(tenant, e),
    };
    let approved = state
        .auth()
        .is_approved(tenant, &authorized.request, approval, now);
    if !state
        .auth()
        .needs_consent(tenant, &authorized.client, &authorized.request, approved)
    {
        return match state
            .auth()
            .begin_upstream(tenant, authorized.request, now)
            .await
        {
            Ok(up) => with_transaction_cookie(&state, found(&up.location), up),
            Err(e) => refused(tenant, e),
        };
    }
    // Reuse the browser's CSRF cookie so that a second GET does not break a form already open.
    let csrf_name = state.auth().csrf_cookie_name();
    let csrf = req
        .cookie(csrf_name)
        .map(|c| c.value().to_owned())
        .filter(|v| plausible_token(v))
        .map(|v| Handle::presented(&v))
        .unwrap_or_else(Handle::generate);
    let ticket = state
        .auth()
        .consent_ticket(tenant, &authorized.request, &csrf, now);
    let r = &authorized.request;
    let resource = tenant.resource(r.resource.as_str());
    let scopes = resource
        .map(|res| {
            res.scopes
                .iter()
                .filter(|s| r.scopes.contains(&s.name))
                .map(|s| {
                    (
                        s.name.clone(),
                        s.description.clone().unwrap_or_else(|| s.name.clone()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let redirect_host = r.redirect_uri.display_host();
    let action = format!("{}/consent", tenant.issuer);
    let client = &authorized.client;
    let view = ConsentView {
        action: &action,
        ticket: &ticket,
        tenant_name: tenant
            .config
            .display_name
            .as_deref()
            .unwrap_or(tenant.id.as_str()),
        client_name: client
            .metadata
            .client_name
            .as_deref()
            .unwrap_or("An unnamed application"),
        client_host: client.cimd_host(),
        redirect_host: &redirect_host,
        resource_name: resource
            .and_then(|x| x.name.as_deref())
            .unwrap_or(r.resource.as_str()),
        resource_uri: r.resource.as_str(),
        scopes,
        offline_access: r.offline_access,
    };
    let mut page = consent_page(&view);
    let _ = page.add_cookie(&cookie(
        &state,
        csrf_name.to_owned(),
        csrf.expose().to_owned(),
        24 * 3600,
    ));
    page
}

/// Largest consent form accepted.
const MAX_CONSENT_BODY: usize = 32 * 1024;

pub async fn consent(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(tenant) = state.tenant(&tenant) else {
        return error_page(404, "There is no tenant by this name on this server.");
    };
    let now = unix_now();
    let body = match read_form(&req, payload, MAX_CONSENT_BODY).await {
        Ok(b) => b,
        Err(_) => return error_page(400, "The consent form could not be read."),
    };
    let form = Params::parse(&body);
    let csrf = req.cookie(state.auth().csrf_cookie_name());
    let request = match form.get("ticket").filter(|_| form.repeated.is_empty()) {
        Some(ticket) => {
            state
                .auth()
                .open_consent_ticket(tenant, ticket, csrf.as_ref().map(|c| c.value()), now)
        }
        None => Err(ConsentError::BadTicket),
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(tenant = %tenant.id, reason = %e, "consent submission refused");
            return error_page(400, &format!("{}.", capitalize(&e.to_string())));
        }
    };
    match form.get("decision") {
        Some("approve") => {
            tracing::info!(target: "audit", event = "consent_approved", tenant = %tenant.id, client_id = %request.client_id, scopes = %request.scopes);
            let name = state
                .auth()
                .approval_cookie_name(tenant, &request.client_id);
            let current = req.cookie(&name);
            let approval = state.auth().approval_cookie(
                tenant,
                &request,
                current.as_ref().map(|c| c.value()),
                now,
            );
            match state.auth().begin_upstream(tenant, request, now).await {
                Ok(up) => {
                    let mut res = with_transaction_cookie(&state, see_other(&up.location), up);
                    let _ =
                        res.add_cookie(&cookie(&state, name, approval, APPROVAL_SECONDS as i64));
                    res
                }
                Err(e) => refused(tenant, e),
            }
        }
        Some("deny") => {
            tracing::info!(target: "audit", event = "consent_denied", tenant = %tenant.id, client_id = %request.client_id);
            // Back to the client only where that cannot be an open redirect: a loopback URI,
            // or a client this browser approved before (see validate_authorization).
            let approval = req.cookie(
                &state
                    .auth()
                    .approval_cookie_name(tenant, &request.client_id),
            );
            let safe = request.redirect_uri.is_loopback()
                || state.auth().has_any_approval(
                    tenant,
                    &request.client_id,
                    approval.as_ref().map(|c| c.value()),
                    now,
                );
            if !safe {
                return error_page(403, "You denied access. You can close this window.");
            }
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            see_other(&AuthorizeError::location(
                &request.redirect_uri,
                request.state.as_deref(),
                &error,
                &tenant.issuer,
            ))
        }
        _ => error_page(400, "The consent form did not say Allow or Deny."),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
