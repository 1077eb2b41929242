//! The built-in dev IdP's pages: login form, JWKS and discovery (only for `dev` tenants).

use std::collections::HashMap;

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::read_form;
use super::error::not_found;
use super::pages::{dev_login_page, error_page};
use super::state::{AppState, unix_now};
use crate::upstream::dev_idp::DevIdp;

fn dev<'a>(state: &'a AppState, tenant: &str) -> Option<&'a std::sync::Arc<DevIdp>> {
    let tenant = state.tenant(tenant)?;
    state.auth().upstream.dev_idp(&tenant.id)
}

fn query_map(raw: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

pub async fn login_form(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(idp) = dev(&state, &tenant) else {
        return error_page(404, "This tenant has no built-in dev identity provider.");
    };
    let params = query_map(req.query_string());
    if let Err(why) = idp.check_authorization(&params) {
        return error_page(400, &why);
    }
    let mut hidden: Vec<(String, String)> = params.into_iter().collect();
    hidden.sort();
    dev_login_page(&format!("{}/authorize", idp.issuer), &hidden)
}

pub async fn login(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(idp) = dev(&state, &tenant) else {
        return error_page(404, "This tenant has no built-in dev identity provider.");
    };
    let Ok(body) = read_form(&req, payload, 16 * 1024).await else {
        return error_page(400, "The sign-in form could not be read.");
    };
    let mut params = query_map(&body);
    let user = params.remove("username").unwrap_or_default();
    let user_ok = (1..=64).contains(&user.len())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if !user_ok {
        return error_page(
            400,
            "The user name must be 1 to 64 letters, digits or . _ @ -.",
        );
    }
    match idp.check_authorization(&params) {
        Ok(request) => HttpResponse::SeeOther()
            .insert_header((LOCATION, idp.approve(request, &user, unix_now())))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(why) => error_page(400, &why),
    }
}

pub async fn jwks(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    match dev(&state, &tenant) {
        Some(idp) => HttpResponse::Ok().json(idp.jwks()),
        None => not_found("this tenant has no built-in dev identity provider"),
    }
}

pub async fn metadata(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    match dev(&state, &tenant) {
        Some(idp) => HttpResponse::Ok().json(idp.metadata()),
        None => not_found("this tenant has no built-in dev identity provider"),
    }
}
