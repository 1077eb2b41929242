//! The built-in dev IdP's pages: login form, JWKS and discovery (only for `dev` tenants).

use crate::oauth::context::RequestCtx;
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::DevIdps;
use crate::http::body::read_form;
use crate::http::error::not_found;
use crate::http::pages::{error_page, page};
use maud::html;

/// Registers the dev IdP's routes (the app data `web::Data<DevIdps>` must be set).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{tenant}/dev-idp/authorize", web::get().to(login_form))
        .route("/{tenant}/dev-idp/authorize", web::post().to(login))
        .route("/{tenant}/dev-idp/jwks", web::get().to(jwks))
        .route("/{tenant}/dev-idp/token", web::post().to(token))
        .route(
            "/{tenant}/dev-idp/.well-known/openid-configuration",
            web::get().to(metadata),
        );
}

fn query_map(raw: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

async fn login_form(
    idps: web::Data<DevIdps>,
    tenant: web::Path<String>,
    req: HttpRequest,
    ctx: RequestCtx,
) -> HttpResponse {
    let Some(idp) = idps.get(&tenant) else {
        return error_page(
            &ctx,
            404,
            "This tenant has no built-in dev identity provider.",
        );
    };
    let params = query_map(req.query_string());
    if let Err(why) = idp.check_authorization(&params) {
        return error_page(&ctx, 400, &why);
    }
    let mut hidden: Vec<(String, String)> = params.into_iter().collect();
    hidden.sort();
    dev_login_page(&format!("{}/authorize", idp.issuer), &hidden)
}

async fn login(
    idps: web::Data<DevIdps>,
    tenant: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let Some(idp) = idps.get(&tenant) else {
        return error_page(
            &ctx,
            404,
            "This tenant has no built-in dev identity provider.",
        );
    };
    let Ok(body) = read_form(&req, payload, 16 * 1024).await else {
        return error_page(&ctx, 400, "The sign-in form could not be read.");
    };
    let ctx = crate::http::request_ctx::body_read(ctx);
    let mut params = query_map(&body);
    let user = params.remove("username").unwrap_or_default();
    if !super::is_valid_user_name(&user) {
        return error_page(
            &ctx,
            400,
            "The user name must be 1 to 64 letters, digits or . _ @ -.",
        );
    }
    match idp.check_authorization(&params) {
        Ok(request) => HttpResponse::SeeOther()
            .insert_header((LOCATION, idp.approve(request, &user, ctx.now)))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(why) => error_page(&ctx, 400, &why),
    }
}

/// `POST {issuer}/dev-idp/token` (`enterprise.rs`): a JSON answer, or an OAuth error.
async fn token(
    idps: web::Data<DevIdps>,
    tenant: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    ctx: RequestCtx,
) -> HttpResponse {
    let Some(idp) = idps.get(&tenant) else {
        return not_found("this tenant has no built-in dev identity provider");
    };
    let body = match read_form(&req, payload, 16 * 1024).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let ctx = crate::http::request_ctx::body_read(ctx);
    match idp.http_token(&query_map(&body), ctx.now) {
        Ok(answer) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(answer),
        Err(e) if e.error == "invalid_client" => HttpResponse::build(StatusCode::UNAUTHORIZED)
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({"error": e.error, "error_description": e.description})),
        Err(e) => HttpResponse::build(StatusCode::BAD_REQUEST)
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({"error": e.error, "error_description": e.description})),
    }
}

pub(crate) async fn jwks(idps: web::Data<DevIdps>, tenant: web::Path<String>) -> HttpResponse {
    match idps.get(&tenant) {
        Some(idp) => HttpResponse::Ok().json(idp.jwks()),
        None => not_found("this tenant has no built-in dev identity provider"),
    }
}

pub(crate) async fn metadata(idps: web::Data<DevIdps>, tenant: web::Path<String>) -> HttpResponse {
    match idps.get(&tenant) {
        Some(idp) => HttpResponse::Ok().json(idp.metadata()),
        None => not_found("this tenant has no built-in dev identity provider"),
    }
}

/// The dev IdP's login form: a user name and the request carried in hidden fields.
fn dev_login_page(action: &str, hidden: &[(String, String)]) -> HttpResponse {
    page(
        StatusCode::OK,
        "Dev sign-in",
        html! {
            h1 { "Development sign-in" }
            div class="box" {
                p {
                    "This built-in identity provider is for local development. "
                    "It accepts any user name and no password."
                }
                form method="post" action=(action) {
                    @for (name, value) in hidden {
                        input type="hidden" name=(name) value=(value);
                    }
                    label for="username" { "User name" }
                    input id="username" name="username" value="alice" autofocus;
                    p { button class="primary" type="submit" { "Sign in" } }
                }
            }
        },
    )
}
