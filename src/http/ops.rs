//! `/healthz` (the process answers), `/readyz` (the server can serve: store usable, tenants
//! loaded) and `/readyz/{tenant}` (that tenant can log people in: its upstream is discovered or
//! built in). One IdP down takes only its own tenant out of rotation. Probes are never logged
//! above debug.
//!
//! On the public listener the answer is the status alone: the tenant list, directory ids and
//! DNS errors are nothing a stranger should read. The admin listener serves the same probes
//! with the detail (each tenant's upstream and why it is unreachable, the store's error).

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::state::AppState;
use crate::config::Tenant;
use crate::upstream::discovery::UpstreamStatus;

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// One tenant's upstream, as the probes report it; `true` when it can log people in.
fn upstream_of(state: &AppState, tenant: &Tenant) -> (Value, bool) {
    let mut entry = json!({"id": tenant.id.as_str()});
    let ready = match state.upstreams().status(&tenant.id) {
        UpstreamStatus::BuiltIn => {
            entry["upstream"] = json!("built_in");
            true
        }
        UpstreamStatus::Discovered(_) => {
            entry["upstream"] = json!("ready");
            true
        }
        UpstreamStatus::Unreachable(reason) => {
            entry["upstream"] = json!("unreachable");
            entry["reason"] = json!(reason);
            false
        }
    };
    (entry, ready)
}

/// Whether a probe's answer carries the detail (admin listener) or only the status (public).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    StatusOnly,
    Full,
}

/// The answer to a probe: the status code from `ready`, the body cut to the status unless
/// `detail` is `Full`.
fn probe_answer(ready: bool, body: Value, detail: Detail) -> HttpResponse {
    let body = match detail {
        Detail::Full => body,
        Detail::StatusOnly => json!({"status": body["status"]}),
    };
    let mut res = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.insert_header(("Cache-Control", "no-store")).json(body)
}

pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    readiness(&state, Detail::StatusOnly).await
}

pub(crate) async fn tenant_readyz(
    state: web::Data<AppState>,
    tenant: web::Path<String>,
) -> HttpResponse {
    tenant_readiness(&state, &tenant, Detail::StatusOnly).await
}

/// The server's readiness; the body lists every tenant's upstream when `detail` asks.
pub(crate) async fn readiness(state: &AppState, detail: Detail) -> HttpResponse {
    let store = state.records().backend().check_health().await;
    let tenants: Vec<(Value, bool)> = state
        .tenants()
        .iter()
        .map(|t| upstream_of(state, t))
        .collect();
    let unreachable: Vec<Value> = tenants
        .iter()
        .filter(|(_, ready)| !ready)
        .map(|(t, _)| json!({"tenant": t["id"], "reason": t["reason"]}))
        .collect();
    let ready = store.is_ok() && !tenants.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "tenants": tenants.into_iter().map(|(t, _)| t).collect::<Vec<_>>(),
        "unreachable_upstreams": unreachable,
    });
    probe_answer(ready, body, detail)
}

/// One tenant's readiness; the body names its upstream's state when `detail` asks.
pub(crate) async fn tenant_readiness(
    state: &AppState,
    tenant: &str,
    detail: Detail,
) -> HttpResponse {
    let Some(tenant) = state.tenant(tenant) else {
        return HttpResponse::NotFound()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({"status": "unknown_tenant"}));
    };
    let store = state.records().backend().check_health().await;
    let (mut body, upstream_ready) = upstream_of(state, &tenant);
    let ready = store.is_ok() && upstream_ready;
    body["status"] = json!(if ready { "ready" } else { "not_ready" });
    body["store"] = json!(match &store {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    });
    probe_answer(ready, body, detail)
}

/// Browsers ask for `/favicon.ico` when they show a page of ours: an empty answer they may
/// keep for a day, logged at debug like other routine reads.
pub(crate) async fn favicon() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .finish()
}
