//! The HTTP surface: routes, middleware, and the mapping of protocol results to responses.
//! Handlers are thin: extract, call the protocol code, map the result.

pub mod error;
mod ops;
mod register;
mod well_known;

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpMessage, HttpResponse, web};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::app::AppState;

/// Registers every route on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    cfg.app_data(state).service(
        web::scope("")
            .wrap_fn(|req, srv| {
                let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        res.headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), id);
                    }
                    Ok(res)
                }
            })
            .wrap(TracingLogger::default())
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .route("/healthz", web::get().to(ops::healthz))
            .route("/readyz", web::get().to(ops::readyz))
            .route(
                "/.well-known/oauth-authorization-server/{tenant}",
                web::get().to(well_known::metadata),
            )
            .route(
                "/.well-known/openid-configuration/{tenant}",
                web::get().to(well_known::metadata),
            )
            .route(
                "/{tenant}/.well-known/openid-configuration",
                web::get().to(well_known::metadata),
            )
            .route("/{tenant}/register", web::post().to(register::register))
            .route("/{tenant}/register", web::route().to(method_not_allowed))
            .default_service(web::to(unknown_path)),
    );
}

async fn unknown_path() -> HttpResponse {
    error::not_found("there is nothing at this path")
}

async fn method_not_allowed(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    if state.tenant(&tenant).is_none() {
        return error::not_found("no tenant by this name");
    }
    let mut res = error::error_response_with_status(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        &crate::oauth::OAuthError::invalid_request("this endpoint accepts only POST"),
    );
    res.headers_mut().insert(
        actix_web::http::header::ALLOW,
        HeaderValue::from_static("POST"),
    );
    res
}
