//! `GET /{tenant}/callback`: the IdP sends the browser back here.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::PageTenant;
use super::pages::{approval_page, error_page};
use super::state::{AppState, unix_now};
use crate::crypto::Handle;
use crate::oauth::callback::CallbackOutcome;
use crate::oauth::params::Params;

pub(crate) async fn callback(
    state: web::Data<AppState>,
    PageTenant(tenant): PageTenant,
    req: HttpRequest,
) -> HttpResponse {
    let params = Params::parse(req.query_string());
    let cookie_name = params
        .get("state")
        .map(|s| state.cookies().transaction_name(&Handle::presented(s)));
    let binding = cookie_name.as_ref().and_then(|n| req.cookie(n));
    let requester = state
        .client_ip(&req)
        .map(|ip| super::client_addr::describe(Some(ip)));
    let mut res = match state
        .auth()
        .callback(
            &tenant,
            &params,
            binding.as_ref().map(|c| c.value()),
            requester,
            unix_now(),
        )
        .await
    {
        CallbackOutcome::Redirect(location) => HttpResponse::Found()
            .insert_header((LOCATION, location))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        CallbackOutcome::Page { status, message } => error_page(status, &message),
        CallbackOutcome::Held(held) => approval_page(&tenant, &held),
    };
    // The transaction is over either way: expire its cookie.
    if let Some(name) = cookie_name.filter(|_| binding.is_some()) {
        let _ = res.add_cookie(&state.cookies().expired(name));
    }
    res
}
