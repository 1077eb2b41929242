//! `GET /{tenant}/authorize` and `POST /{tenant}/consent`: thin wrappers over
//! `Logins::validate_authorization` (`oauth/login/`), the consent ticket and `begin_upstream`.
//!
//! authorize: validate → (approved or trusted) begin_upstream and redirect to the IdP
//!                     → (otherwise) the consent page, with a CSRF cookie.
//! consent:   open the ticket (signature, expiry, CSRF) → approve: remember the approval,
//!            begin_upstream → deny: access_denied back to the client where that is safe.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::read_form;
use super::extract::PageTenant;
use super::pages::{ConsentView, consent_page, error_page};
use super::request_info::client_value;
use super::state::AppState;
use crate::config::Tenant;
use crate::crypto::Handle;
use crate::domain::RedirectKind;
use crate::log_budget::{Refusal, admit, admit_refusal};
use crate::oauth::authorize::{AuthorizeError, Authorized, UpstreamRedirect};
use crate::oauth::consent::ConsentError;
use crate::oauth::context::RequestCtx;
use crate::oauth::params::Params;
use crate::oauth::records::PendingAuthorization;
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
fn to_upstream(state: &AppState, mut res: HttpResponse, up: &UpstreamRedirect) -> HttpResponse {
    let _ = res.add_cookie(
        &state
            .cookies()
            .transaction(&up.transaction, &up.browser_binding),
    );
    res
}

/// The client and redirect URI an authorization request named, for the refusal's log line.
struct Named<'a> {
    client_id: Option<&'a str>,
    redirect_uri: Option<&'a str>,
}

impl<'a> Named<'a> {
    fn of(params: &'a Params) -> Self {
        Self {
            client_id: client_value(params.get("client_id")),
            redirect_uri: client_value(params.get("redirect_uri")),
        }
    }
}

fn refused(ctx: &RequestCtx, tenant: &Tenant, named: Named<'_>, e: AuthorizeError) -> HttpResponse {
    let Named {
        client_id,
        redirect_uri,
    } = named;
    match e {
        AuthorizeError::Page { status, message } => {
            if admit(Refusal::Authorize, ctx.caller.address()) {
                tracing::info!(tenant = %tenant.id, client_id, redirect_uri, reason = %message, "authorization request refused on a page");
            }
            error_page(ctx, status, &message)
        }
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        } => {
            if admit_refusal(Refusal::Authorize, &error, ctx.caller.address()) {
                tracing::info!(tenant = %tenant.id, client_id, redirect_uri = %redirect_uri, error = %error, "authorization request refused");
            }
            found(&AuthorizeError::location(
                &redirect_uri,
                state.as_deref(),
                &error,
                &tenant.issuer,
            ))
        }
    }
}

/// A CSRF token that looks like one of ours (43 base64url characters).
fn plausible_token(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of this browser's approval cookie for the tenant, if it has one.
fn approval_cookie(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Option<String> {
    req.cookie(&state.cookies().approval_name(&tenant.id))
        .map(|c| c.value().to_owned())
}

pub(crate) async fn authorize(
    state: web::Data<AppState>,
    PageTenant(tenant): PageTenant,
    req: HttpRequest,
    ctx: RequestCtx,
) -> HttpResponse {
    let (ctx, now) = (&ctx, ctx.now);
    let params = Params::parse(req.query_string());
    crate::telemetry::record_client(client_value(params.get("client_id")));
    // This browser's approvals in the tenant, read once.
    let approval = approval_cookie(&state, &req, &tenant);
    let auth = state.auth().logins();
    let authorized = match auth
        .validate_authorization(&tenant, &params, approval.as_deref(), ctx)
        .await
    {
        Ok(a) => a,
        Err(e) => return refused(ctx, &tenant, Named::of(&params), e),
    };
    let approved = auth.is_approved(&tenant, &authorized.request, approval.as_deref(), now);
    if !auth.needs_consent(&tenant, &authorized.client, &authorized.request, approved) {
        if let Some(refusal) = too_many_logins(ctx, &state, &req, &tenant) {
            return refusal;
        }
        return match auth.begin_upstream(&tenant, authorized.request, now).await {
            Ok(up) => to_upstream(&state, found(&up.location), &up),
            Err(e) => refused(ctx, &tenant, Named::of(&params), e),
        };
    }
    let silent = authorized
        .request
        .prompt
        .as_deref()
        .is_some_and(|p| p.split(' ').any(|v| v == "none"));
    if silent {
        return refused(
            ctx,
            &tenant,
            Named::of(&params),
            auth.consent_required(&tenant, authorized, approval.as_deref(), now),
        );
    }
    // Reuse the browser's CSRF cookie so that a second GET does not break a form already open;
    // but only a host-only one (`__Host-`): under a path prefix the cookie could have been
    // planted by another service of the host, so each consent page gets a fresh one there.
    let csrf = req
        .cookie(&state.cookies().csrf_name())
        .filter(|_| state.cookies().host_only())
        .map(|c| c.value().to_owned())
        .filter(|v| plausible_token(v))
        .map(|v| Handle::presented(&v))
        .unwrap_or_else(Handle::generate);
    let ticket = auth.consent_ticket(&tenant, &authorized.request, &csrf, now);
    let mut page = consent_page(&consent_view(&tenant, &authorized, &ticket));
    let _ = page.add_cookie(&state.cookies().csrf(&csrf));
    page
}

/// A page saying why, when this login would start one too many (`http/login_limits.rs`).
fn too_many_logins(
    ctx: &RequestCtx,
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Option<HttpResponse> {
    let source = ctx.caller.address();
    let browser = req.cookie(&state.cookies().csrf_name());
    let limit = state
        .allow_login_start(source, browser.as_ref().map(|c| c.value()))
        .err()?;
    crate::metrics::metrics()
        .rate_limited
        .with_label_values(&[tenant.id.as_str(), limit.label()])
        .inc();
    if crate::log_budget::admit(Refusal::LoginRateLimited, source) {
        tracing::warn!(target: "audit", event = "login_rate_limited", tenant = %tenant.id,
            source = %super::client_addr::describe(source), limit = limit.label());
    }
    let mut page = error_page(ctx, 429, limit.explanation());
    page.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("60"),
    );
    Some(page)
}

/// What the consent page says about a validated request.
fn consent_view<'a>(
    tenant: &'a Tenant,
    authorized: &'a Authorized,
    ticket: &'a str,
) -> ConsentView<'a> {
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
    let client = &authorized.client;
    ConsentView {
        action: format!("{}/consent", tenant.issuer),
        ticket,
        tenant_name: tenant.display_name(),
        client_name: client
            .metadata
            .client_name
            .as_deref()
            .unwrap_or("An unnamed application"),
        client_host: client.cimd_host(),
        redirect_host: r.redirect_uri.display_host(),
        to_web_site: r.redirect_uri.kind() == RedirectKind::Https,
        resource_name: resource
            .and_then(|x| x.name.as_deref())
            .unwrap_or(r.resource.as_str()),
        resource_uri: r.resource.as_str(),
        scopes,
        offline_access: r.offline_access,
        approval_needed: client.approval == crate::domain::ApprovalStatus::Pending,
    }
}

/// Largest consent form accepted.
const MAX_CONSENT_BODY: usize = 32 * 1024;

pub(crate) async fn consent(
    state: web::Data<AppState>,
    PageTenant(tenant): PageTenant,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let body = match read_form(&req, payload, MAX_CONSENT_BODY).await {
        Ok(b) => b,
        Err(_) => return error_page(&ctx, 400, "The consent form could not be read."),
    };
    let ctx = super::request_ctx::body_read(ctx);
    let (ctx, now) = (&ctx, ctx.now);
    let form = Params::parse(&body);
    // The decision is read first: a form that says neither spends nothing.
    let approved = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return error_page(ctx, 400, "The consent form did not say Allow or Deny."),
    };
    // Checked before the form is spent, so that a refusal leaves it usable a minute later.
    if approved && let Some(refusal) = too_many_logins(ctx, &state, &req, &tenant) {
        return refusal;
    }
    let csrf = req.cookie(&state.cookies().csrf_name());
    let request = match form.get("ticket").filter(|_| form.repeated.is_empty()) {
        Some(ticket) => {
            state
                .auth()
                .logins()
                .redeem_consent_ticket(&tenant, ticket, csrf.as_ref().map(|c| c.value()), now)
                .await
        }
        None => Err(ConsentError::BadTicket),
    };
    let request = match request {
        Ok(r) => r,
        // The store failed (logged where it happened): the server's fault, not the form's.
        Err(e @ ConsentError::Unavailable) => {
            return error_page(ctx, 503, &format!("{}.", capitalize(&e.to_string())));
        }
        Err(e) => {
            if admit(Refusal::Consent, ctx.caller.address()) {
                tracing::warn!(tenant = %tenant.id, reason = %e, "consent submission refused");
            }
            return error_page(ctx, 400, &format!("{}.", capitalize(&e.to_string())));
        }
    };
    if !approved {
        return deny(ctx, &state, &req, &tenant, &request);
    }
    approve(ctx, &state, &req, &tenant, request).await
}

/// Remembers the approval in this browser and sends it to the IdP.
async fn approve(
    ctx: &RequestCtx,
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    request: PendingAuthorization,
) -> HttpResponse {
    let now = ctx.now;
    tracing::info!(target: "audit", event = "consent_approved", tenant = %tenant.id, client_id = %request.client_id, scopes = %request.scopes);
    let current = approval_cookie(state, req, tenant);
    let approval = state
        .auth()
        .logins()
        .approval_cookie(tenant, &request, current.as_deref(), now);
    let (client_id, redirect_uri) = (request.client_id.clone(), request.redirect_uri.clone());
    match state
        .auth()
        .logins()
        .begin_upstream(tenant, request, now)
        .await
    {
        Ok(up) => {
            let mut res = to_upstream(state, see_other(&up.location), &up);
            let cookies = state.cookies();
            let _ = res.add_cookie(&cookies.approval(cookies.approval_name(&tenant.id), approval));
            let present = req
                .cookies()
                .map(|c| c.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>())
                .unwrap_or_default();
            for old in cookies.legacy_approval_names(present.iter().map(String::as_str)) {
                let _ = res.add_cookie(&cookies.expired(old));
            }
            res
        }
        Err(e) => refused(
            ctx,
            tenant,
            Named {
                client_id: Some(client_id.as_str()),
                redirect_uri: Some(redirect_uri.as_str()),
            },
            e,
        ),
    }
}

/// Back to the client with access_denied only where that cannot be an open redirect: a
/// loopback URI, or a client this browser approved before (see `validate_authorization`).
fn deny(
    ctx: &RequestCtx,
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    request: &PendingAuthorization,
) -> HttpResponse {
    tracing::info!(target: "audit", event = "consent_denied", tenant = %tenant.id, client_id = %request.client_id);
    let approval = approval_cookie(state, req, tenant);
    let safe = request.redirect_uri.is_loopback()
        || state.auth().logins().approved_redirect(
            tenant,
            &request.client_id,
            request.approval_epoch,
            &request.redirect_uri,
            approval.as_deref(),
            ctx.now,
        );
    if !safe {
        return error_page(ctx, 403, "You denied access. You can close this window.");
    }
    let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
    see_other(&AuthorizeError::location(
        &request.redirect_uri,
        request.state.as_deref(),
        &error,
        &tenant.issuer,
    ))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
