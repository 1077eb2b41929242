//! `/healthz` (the process answers) and `/readyz` (store open, tenants loaded, upstreams found).

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::state::AppState;

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.records().backend().check_health().await;
    let unreachable: Vec<_> = state
        .upstreams()
        .unreachable()
        .into_iter()
        .map(|(tenant, reason)| json!({"tenant": tenant.as_str(), "reason": reason}))
        .collect();
    let ready = store.is_ok() && unreachable.is_empty() && !state.tenants().is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "tenants": state.tenants().iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        "unreachable_upstreams": unreachable,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
