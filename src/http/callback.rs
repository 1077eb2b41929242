//! `GET /{tenant}/callback`: the IdP sends the browser back here.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::error_page;
use super::state::{AppState, unix_now};
use crate::oauth::callback::CallbackOutcome;
use crate::oauth::params::Params;

pub async fn callback(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let Some(tenant) = state.tenant(&tenant) else {
        return error_page(404, "There is no tenant by this name on this server.");
    };
    let params = Params::parse(req.query_string());
    let cookie_name = params.get("state").map(|s| {
        state
            .auth()
            .transaction_cookie_name(&crate::crypto::Handle::presented(s))
    });
    let binding = cookie_name.as_ref().and_then(|n| req.cookie(n));
    let mut res = match state
        .auth()
        .callback(
            tenant,
            &params,
            binding.as_ref().map(|c| c.value()),
            unix_now(),
        )
        .await
    {
        CallbackOutcome::Redirect(location) => HttpResponse::Found()
            .insert_header((LOCATION, location))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        CallbackOutcome::Page { status, message } => error_page(status, &message),
    };
    // The transaction is over either way: expire its cookie, with the attributes it was set
    // with (a `__Host-` cookie is only replaced by one that is also Secure).
    if let Some(name) = cookie_name.filter(|_| binding.is_some()) {
        let _ = res.add_cookie(&super::authorize::cookie(&state, name, String::new(), 0));
    }
    res
}
