//! Extractors for the tenant named by the `{tenant}` path segment. A request for an unknown
//! tenant is answered 404 before its handler runs: with a page on the endpoints a browser
//! visits (`PageTenant`), with a JSON error on the others (`ApiTenant`).

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{FromRequest, HttpRequest, web};

use super::error::not_found;
use super::pages::error_page;
use super::state::AppState;
use crate::config::Tenant;

fn lookup(req: &HttpRequest) -> Option<Arc<Tenant>> {
    let state = req.app_data::<web::Data<AppState>>()?;
    state.tenant(req.match_info().get("tenant")?).cloned()
}

/// The tenant of a browser endpoint (authorize, consent, callback).
pub(crate) struct PageTenant(pub Arc<Tenant>);

impl FromRequest for PageTenant {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(lookup(req).map(Self).ok_or_else(|| {
            InternalError::from_response(
                "unknown tenant",
                error_page(404, "There is no tenant by this name on this server."),
            )
            .into()
        }))
    }
}

/// The tenant of a JSON endpoint (metadata, registration, token, revocation).
pub(crate) struct ApiTenant(pub Arc<Tenant>);

impl FromRequest for ApiTenant {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(lookup(req).map(Self).ok_or_else(|| {
            InternalError::from_response("unknown tenant", not_found("no tenant by this name"))
                .into()
        }))
    }
}
