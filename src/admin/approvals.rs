//! `/admin/v1/tenants/{tenant}/approvals`: the clients waiting for an administrator, and the
//! decisions (`crate::oauth::approval`). Every decision is an audit event naming the token's
//! label; a denial revokes the client's grants.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::{Problem, admin_error, authorized, problem};
use crate::domain::ClientId;
use crate::http::state::{AppState, unix_now};
use crate::oauth::approval::Target;
use crate::oauth::approval::records::ApprovalRequest;
use crate::oauth::grants::GrantFilter;
use crate::store::Versioned;

#[derive(Deserialize)]
pub(super) struct PendingQuery {
    limit: Option<usize>,
}

/// A request as an administrator sees it (without the digests that count its users).
fn request_view(v: &Versioned<ApprovalRequest>) -> Value {
    let mut value = serde_json::to_value(&v.value).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("user_digests");
        map.remove("unlisted_digests");
        map.insert("expires_at".into(), json!(v.expires_at));
    }
    value
}

pub(super) async fn list_pending(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PendingQuery>,
) -> Result<HttpResponse, Problem> {
    let (_, tenant) = authorized(&req, &state, &path)?;
    let max = tenant.approval().max_pending;
    let limit = query.limit.unwrap_or(max).clamp(1, max);
    let now = unix_now();
    let mut waiting = state
        .registry()
        .approvals()
        .pending(&tenant, max.saturating_add(1), now)
        .await
        .map_err(|e| admin_error(e.into()))?;
    // Oldest first: the longest wait is the first to decide.
    waiting.sort_by_key(|v| v.value.first_requested_at);
    let total = waiting.len();
    Ok(HttpResponse::Ok().json(json!({
        "pending": waiting.iter().take(limit).map(request_view).collect::<Vec<_>>(),
        "total": total,
        "truncated": total > limit,
        "max_pending": max,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    /// A client id (a registered client's, or a document's URL) or a request's reference.
    client: Option<String>,
    /// Every document client of this CIMD host.
    host: Option<String>,
    /// The app the client maps to for every resource (approve only; default: the mapping
    /// rules' choice).
    app: Option<String>,
}

impl Decision {
    fn target(&self) -> Result<Target<'_>, Problem> {
        match (&self.client, &self.host) {
            (Some(c), None) => Ok(Target::Client(c)),
            (None, Some(h)) => Ok(Target::Host(h)),
            _ => Err(problem(
                400,
                "invalid_request",
                "give either client (a client id or a request's reference) or host",
            )),
        }
    }
}

pub(super) async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Decision>,
) -> Result<HttpResponse, Problem> {
    let (by, tenant) = authorized(&req, &state, &path)?;
    let decided = state
        .registry()
        .approvals()
        .approve(
            &tenant,
            body.target()?,
            body.app.as_deref(),
            &by,
            unix_now(),
        )
        .await
        .map_err(admin_error)?;
    let apps = crate::domain::client::describe_apps(&decided.apps);
    tracing::info!(target: "audit", event = "admin_client_approved", by = %by, tenant = %tenant.id,
        decision = decided.decision, client_id = decided.client_id.as_deref().unwrap_or(""),
        cimd_host = decided.cimd_host.as_deref().unwrap_or(""),
        reference = decided.reference.as_deref().unwrap_or(""), apps = %apps);
    Ok(HttpResponse::Ok().json(&decided))
}

pub(super) async fn deny(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Decision>,
) -> Result<HttpResponse, Problem> {
    let (by, tenant) = authorized(&req, &state, &path)?;
    let target = body.target()?;
    if body.app.is_some() {
        return Err(problem(400, "invalid_request", "app is for approvals only"));
    }
    let now = unix_now();
    let decided = state
        .registry()
        .approvals()
        .deny(&tenant, target, &by, now)
        .await
        .map_err(admin_error)?;
    // Whatever it held before the denial is revoked with it.
    let revoked = match &decided.client_id {
        Some(id) => state
            .auth()
            .grants()
            .revoke_grants(&tenant.id, &GrantFilter::Client(ClientId::new(id)), now)
            .await
            .map_err(admin_error)?,
        None => 0,
    };
    tracing::info!(target: "audit", event = "admin_client_denied", by = %by, tenant = %tenant.id,
        decision = decided.decision, client_id = decided.client_id.as_deref().unwrap_or(""),
        cimd_host = decided.cimd_host.as_deref().unwrap_or(""),
        reference = decided.reference.as_deref().unwrap_or(""), grants_revoked = revoked);
    let mut answer = serde_json::to_value(&decided).unwrap_or(Value::Null);
    answer["grants_revoked"] = json!(revoked);
    Ok(HttpResponse::Ok().json(answer))
}
