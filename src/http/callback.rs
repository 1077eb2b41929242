//! `GET /{tenant}/callback`: the IdP sends the browser back here.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::PageTenant;
use super::pages::{approval_page, error_page};
use super::state::AppState;
use crate::crypto::Handle;
use crate::oauth::callback::CallbackOutcome;
use crate::oauth::context::RequestCtx;
use crate::oauth::params::Params;

pub(crate) async fn callback(
    state: web::Data<AppState>,
    PageTenant(tenant): PageTenant,
    req: HttpRequest,
    ctx: RequestCtx,
) -> HttpResponse {
    let params = Params::parse(req.query_string());
    let cookie_name = params
        .get("state")
        .map(|s| state.cookies().transaction_name(&Handle::presented(s)));
    let binding = cookie_name.as_ref().and_then(|n| req.cookie(n));
    let mut res = match state
        .auth()
        .logins()
        .callback(&tenant, &params, binding.as_ref().map(|c| c.value()), &ctx)
        .await
    {
        CallbackOutcome::Redirect(location) => HttpResponse::Found()
            .insert_header((LOCATION, location))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        CallbackOutcome::Page { status, message } => error_page(&ctx, status, &message),
        CallbackOutcome::Held(held) => approval_page(&tenant, &held),
    };
    // The transaction is over either way: expire its cookie.
    if let Some(name) = cookie_name.filter(|_| binding.is_some()) {
        let _ = res.add_cookie(&state.cookies().expired(name));
    }
    res
}
