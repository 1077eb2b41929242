//! Extractors for the tenant named by the `{tenant}` path segment. A request for an unknown
//! tenant is answered 404 before its handler runs: with a page on the endpoints a browser
//! visits (`PageTenant`), with a JSON error on the others (`ApiTenant`).

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::error::not_found;
use super::pages::error_page;
use super::state::AppState;
use crate::config::Tenant;

/// The tenant of the request, or `unknown` as the answer.
fn lookup(
    req: &HttpRequest,
    unknown: impl FnOnce() -> HttpResponse,
) -> Result<Arc<Tenant>, actix_web::Error> {
    let tenant = req
        .app_data::<web::Data<AppState>>()
        .zip(req.match_info().get("tenant"))
        .and_then(|(state, segment)| state.tenant(segment));
    tenant.ok_or_else(|| InternalError::from_response("unknown tenant", unknown()).into())
}

/// The tenant of a browser endpoint (authorize, consent, callback).
pub(crate) struct PageTenant(pub Arc<Tenant>);

impl FromRequest for PageTenant {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            lookup(req, || {
                error_page(
                    &super::request_ctx::ctx_of(req),
                    404,
                    "There is no tenant by this name on this server.",
                )
            })
            .map(Self),
        )
    }
}

/// The tenant of a JSON endpoint (metadata, registration, token, revocation).
pub(crate) struct ApiTenant(pub Arc<Tenant>);

impl FromRequest for ApiTenant {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(lookup(req, || not_found("no tenant by this name")).map(Self))
    }
}
