//! The admin API (`/admin/v1/…`), on its own listener (`--admin-listen`) and only with a
//! bearer token from `--admin-token-file`: tenants and their upstreams; registered clients
//! (list, show, delete with their grants, map onto another app); grants (list by client or
//! user, revoke one, all of a client, all of a user). Every change is an audit event naming
//! the token's label. The operations themselves are `oauth/grants.rs`.

mod approvals;
mod request;
mod signing_keys;
pub mod tokens;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::ClientId;
use crate::http::state::{AppState, unix_now};
use crate::oauth::context::RequestCtx;
use crate::oauth::grants::{AdminError, ClientFilter, GrantFilter};
use crate::upstream::discovery::UpstreamStatus;
use request::{Problem, admin_error, authorized, operator, problem};

/// Most clients one listing returns by default.
const DEFAULT_LIMIT: usize = 100;

/// Registers the admin routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/readyz", web::get().to(readyz))
        .route("/readyz/{tenant}", web::get().to(tenant_readyz))
        .service(
            web::scope("/admin/v1")
                .route("/tenants", web::get().to(tenants))
                .route("/tenants/{tenant}/clients", web::get().to(list_clients))
                .route(
                    "/tenants/{tenant}/clients/{client}",
                    web::get().to(show_client),
                )
                .route(
                    "/tenants/{tenant}/clients/{client}",
                    web::delete().to(delete_client),
                )
                .route(
                    "/tenants/{tenant}/clients/{client}/app",
                    web::put().to(remap_client),
                )
                .route(
                    "/tenants/{tenant}/keys",
                    web::get().to(signing_keys::list_keys),
                )
                .route(
                    "/tenants/{tenant}/keys/rotate",
                    web::post().to(signing_keys::rotate_keys),
                )
                .route(
                    "/tenants/{tenant}/approvals",
                    web::get().to(approvals::list_pending),
                )
                .route(
                    "/tenants/{tenant}/approvals/approve",
                    web::post().to(approvals::approve),
                )
                .route(
                    "/tenants/{tenant}/approvals/deny",
                    web::post().to(approvals::deny),
                )
                .route(
                    "/tenants/{tenant}/machine-clients",
                    web::get().to(list_machine_clients),
                )
                .route("/tenants/{tenant}/grants", web::get().to(list_grants))
                .route(
                    "/tenants/{tenant}/grants/revoke",
                    web::post().to(revoke_grants),
                )
                .route(
                    "/tenants/{tenant}/grants/{grant}",
                    web::delete().to(revoke_grant),
                ),
        )
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(problem(
                404,
                "not_found",
                "no such admin endpoint; see docs/operations.md",
            ))
        }));
}

/// The host names the admin listener answers (`--admin-hosts`), lower case; IP literals are
/// always answered.
pub struct AdminHosts(Vec<String>);

impl AdminHosts {
    pub(crate) fn new(hosts: &[String]) -> Self {
        Self(
            hosts
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    /// Whether a request's `Host` (with or without a port) is one of ours.
    fn allows(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // An IPv6 literal, `[::1]:9090`.
            Some(rest) => {
                return rest.split_once(']').is_some_and(|(ip, after)| {
                    let port_ok = after.is_empty()
                        || after.strip_prefix(':').is_some_and(|p| {
                            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())
                        });
                    port_ok && ip.parse::<std::net::Ipv6Addr>().is_ok()
                });
            }
            None => host.rsplit_once(':').map_or(host, |(name, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    name
                } else {
                    host
                }
            }),
        };
        name.parse::<std::net::IpAddr>().is_ok()
            || self
                .0
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name.trim_end_matches('.')))
    }
}

/// Refuses a request whose `Host` is neither an IP literal nor in `--admin-hosts` (421): a
/// browser that DNS rebinding sends to the admin port names the attacker's host.
pub(crate) async fn only_admin_hosts(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let allowed = req
        .app_data::<web::Data<AdminHosts>>()
        .is_some_and(|hosts| hosts.allows(&host));
    if !allowed {
        tracing::warn!(target: "audit", event = "admin_host_refused", host = ?crate::http::client_value(Some(&host)),
            source = %req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default());
        let res = problem(
            421,
            "misdirected_request",
            "this host name is not one the admin listener answers; add it to --admin-hosts",
        )
        .into_response();
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The server's readiness with the detail the public `/readyz` leaves out (each tenant's
/// upstream, why one is unreachable, the store's error): for operators on the admin network,
/// so, like the metrics, asked without a token.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    crate::http::ops::readiness(&state, crate::http::ops::Detail::Full).await
}

async fn tenant_readyz(state: web::Data<AppState>, tenant: web::Path<String>) -> HttpResponse {
    crate::http::ops::tenant_readiness(&state, &tenant, crate::http::ops::Detail::Full).await
}

/// The operator and the tenant whose grants a request is about: a loaded tenant, or one whose
/// file was removed but whose records are still in the store (its grants can still be listed
/// and revoked: a removed file must not leave grants out of reach).
async fn grant_tenant(
    req: &HttpRequest,
    state: &AppState,
    tenant: &str,
) -> Result<(String, crate::domain::TenantId), Problem> {
    let label = operator(req)?;
    if let Some(t) = state.tenant(tenant) {
        return Ok((label, t.id.clone()));
    }
    let unknown = || problem(404, "not_found", "no such tenant, loaded or in the store");
    let id = crate::domain::TenantId::parse(tenant).map_err(|_| unknown())?;
    let stored = state
        .records()
        .backend()
        .scan(format!("{id}/").as_bytes(), unix_now(), 1)
        .await
        .map_err(|e| admin_error(e.into()))?;
    if stored.is_empty() {
        return Err(unknown());
    }
    Ok((label, id))
}

/// Prometheus text exposition (`metrics.rs`), for a scraper on the admin network: counts and
/// latencies only, so no token is asked for.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(bytes) = state.records().backend().size_on_disk().await {
        crate::metrics::metrics()
            .store
            .bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::metrics().render())
}

/// A client as the operator sees it: the record without the hashes of handed-out values.
fn client_view(client: &crate::domain::ClientRecord) -> Value {
    let mut v = serde_json::to_value(client).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.remove("secret_sha256");
        map.remove("registration_token_sha256");
        map.insert("confidential".into(), client.secret_sha256.is_some().into());
    }
    v
}

async fn tenants(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
    operator(&req)?;
    let list: Vec<Value> = state
        .tenants()
        .iter()
        .map(|t| {
            let upstream = match state.upstreams().status(&t.id) {
                UpstreamStatus::BuiltIn => json!({"kind": t.upstream().kind(), "state": "built_in"}),
                UpstreamStatus::Discovered(m) => json!({"kind": t.upstream().kind(), "state": "ready", "issuer": m.issuer().as_str()}),
                UpstreamStatus::Unreachable(why) => json!({"kind": t.upstream().kind(), "state": "unreachable", "reason": why}),
            };
            json!({
                "id": t.id.as_str(),
                "issuer": t.issuer,
                "upstream": upstream,
                "apps": t.apps().iter().map(|a| json!({"name": a.name, "client_id": a.client_id})).collect::<Vec<_>>(),
                "resources": t.resources().iter().map(|r| r.uri.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"tenants": list})))
}

#[derive(Deserialize)]
struct ClientQuery {
    app: Option<String>,
    /// Text the client's name holds, in any case.
    name: Option<String>,
    limit: Option<usize>,
}

async fn list_clients(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ClientQuery>,
) -> Result<HttpResponse, Problem> {
    let (_, tenant) = authorized(&req, &state, &path)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 10_000);
    Ok(
        match state
            .registry()
            .list(
                &tenant,
                &ClientFilter {
                    app: query.app.as_deref(),
                    name: query.name.as_deref(),
                },
                limit,
                unix_now(),
            )
            .await
        {
            Ok(mut page) => {
                // The status as it applies now (a pending client of a tenant that turned
                // approval off is let in), not only as stored.
                for client in &mut page.clients {
                    crate::oauth::approval::settle(state.records(), &tenant, client, unix_now())
                        .await
                        .map_err(|e| admin_error(e.into()))?;
                }
                HttpResponse::Ok().json(json!({
                    "clients": page.clients.iter().map(client_view).collect::<Vec<_>>(),
                    "total": page.total,
                    // Counting stops 10,000 matches past the limit: then at least `total` match.
                    "total_exact": page.total_exact,
                    // More clients match than `limit` shows: the listing is not all of them.
                    "truncated": page.total > page.clients.len(),
                }))
            }
            Err(e) => return Err(admin_error(e.into())),
        },
    )
}

/// The tenant's machine clients as its file names them: how each proves who it is (its key,
/// its secret, or the workloads that become it), what it may reach, and whether it is disabled.
/// Their tokens name no login: a machine is stopped by `disabled = true` or by removing it
/// from the file, and a reload, which refuses its tokens at once.
async fn list_machine_clients(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (_, tenant) = authorized(&req, &state, &path)?;
    let list: Vec<Value> = tenant
        .machine_clients()
        .iter()
        .map(|m| {
            let workloads: Vec<Value> = tenant
                .trusted_workloads()
                .iter()
                .filter(|w| w.machine_client == m.client_id)
                .map(|w| json!({"issuer": w.issuer, "subject": w.subject, "claims": w.claims}))
                .collect();
            json!({
                "client_id": m.client_id,
                "name": m.name,
                "credential": m.credential_kind(!workloads.is_empty()),
                "resources": m.resources,
                "scopes": m.scopes,
                "disabled": m.disabled,
                "workloads": workloads,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"machine_clients": list})))
}

async fn show_client(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, client) = path.into_inner();
    let (_, tenant) = authorized(&req, &state, &tenant)?;
    Ok(
        match state
            .registry()
            .find(&tenant, &client, &RequestCtx::operator(unix_now()))
            .await
        {
            Ok(Some(c)) => {
                let grants = state
                    .auth()
                    .grants()
                    .grants(
                        &tenant.id,
                        &GrantFilter::Client(c.client_id.clone()),
                        unix_now(),
                    )
                    .await
                    .map_err(|e| admin_error(e.into()))?;
                HttpResponse::Ok().json(json!({"client": client_view(&c), "grants": grants}))
            }
            Ok(None) => return Err(admin_error(AdminError::UnknownClient)),
            Err(e) => return Err(problem(400, "invalid_request", &e.description)),
        },
    )
}

async fn delete_client(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, client) = path.into_inner();
    let (by, tenant) = authorized(&req, &state, &tenant)?;
    let client_id = ClientId::new(&client);
    Ok(
        match state
            .auth()
            .grants()
            .delete_client(&tenant, &client_id, unix_now())
            .await
        {
            Ok(revoked) => {
                tracing::info!(target: "audit", event = "admin_client_deleted", by = %by, tenant = %tenant.id, client_id = %client_id, grants_revoked = revoked);
                HttpResponse::Ok().json(json!({"deleted": client_id, "grants_revoked": revoked}))
            }
            Err(e) => return Err(admin_error(e)),
        },
    )
}

#[derive(Deserialize)]
struct Remap {
    app: String,
    /// One resource URI; every resource when absent.
    resource: Option<String>,
}

async fn remap_client(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<Remap>,
) -> Result<HttpResponse, Problem> {
    let (tenant, client) = path.into_inner();
    let (by, tenant) = authorized(&req, &state, &tenant)?;
    let client_id = ClientId::new(&client);
    Ok(
        match state
            .registry()
            .remap(
                &tenant,
                &client_id,
                body.resource.as_deref(),
                &body.app,
                unix_now(),
            )
            .await
        {
            Ok(c) => {
                tracing::info!(target: "audit", event = "admin_client_remapped", by = %by, tenant = %tenant.id, client_id = %client_id, app = %body.app, resource = body.resource.as_deref().unwrap_or("*"));
                HttpResponse::Ok().json(json!({"client": client_view(&c)}))
            }
            Err(e) => return Err(admin_error(e)),
        },
    )
}

#[derive(Deserialize)]
struct GrantQuery {
    client: Option<String>,
    user: Option<String>,
    /// Most grants a listing shows (default 1000, at most 100,000); `truncated` says when
    /// more match.
    limit: Option<usize>,
}

/// Most grants a listing shows unless asked otherwise.
const DEFAULT_GRANT_LIMIT: usize = 1000;

impl GrantQuery {
    fn filter(&self) -> Result<GrantFilter, Problem> {
        match (&self.client, &self.user) {
            (Some(_), Some(_)) => Err(problem(
                400,
                "invalid_request",
                "give client or user, not both",
            )),
            (Some(c), None) => Ok(GrantFilter::Client(ClientId::new(c))),
            (None, Some(u)) => Ok(GrantFilter::User(u.clone())),
            (None, None) => Ok(GrantFilter::All),
        }
    }
}

async fn list_grants(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<GrantQuery>,
) -> Result<HttpResponse, Problem> {
    let (_, tenant) = grant_tenant(&req, &state, &path).await?;
    let filter = query.filter()?;
    let limit = query.limit.unwrap_or(DEFAULT_GRANT_LIMIT).clamp(1, 100_000);
    let now = unix_now();
    let (grants, total) = state
        .auth()
        .grants()
        .grants_page(&tenant, &filter, limit, now)
        .await
        .map_err(|e| admin_error(e.into()))?;
    // Each grant names its client by id; the listing adds the name the client registered.
    let names = state
        .registry()
        .names(&tenant, grants.iter().map(|g| &g.client_id), now)
        .await
        .map_err(|e| admin_error(e.into()))?;
    let grants: Vec<Value> = grants
        .into_iter()
        .map(|g| {
            let name = names.get(&g.client_id).cloned();
            let mut v = serde_json::to_value(g).unwrap_or_default();
            v["client_name"] = json!(name);
            v
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"grants": grants, "total": total, "truncated": total > limit})))
}

async fn revoke_grants(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<GrantQuery>,
) -> Result<HttpResponse, Problem> {
    let (by, tenant) = grant_tenant(&req, &state, &path).await?;
    let filter = match body.filter()? {
        GrantFilter::All => {
            return Err(problem(
                400,
                "invalid_request",
                "name the client or the user whose grants to revoke",
            ));
        }
        f => f,
    };
    // Grants from before the user was recorded cannot be matched by user: say how many.
    let without_user = if matches!(filter, GrantFilter::User(_)) {
        state
            .auth()
            .grants()
            .count_live_grants(&tenant, &GrantFilter::WithoutUser, unix_now())
            .await
            .map_err(|e| admin_error(e.into()))?
    } else {
        0
    };
    Ok(
        match state
            .auth()
            .grants()
            .revoke_grants(&tenant, &filter, unix_now())
            .await
        {
            Ok(revoked) => {
                tracing::info!(target: "audit", event = "admin_grants_revoked", by = %by, tenant = %tenant,
                client_id = body.client.as_deref().unwrap_or(""), user = body.user.as_deref().unwrap_or(""), revoked);
                HttpResponse::Ok()
                    .json(json!({"revoked": revoked, "grants_without_user": without_user}))
            }
            Err(e) => return Err(admin_error(e)),
        },
    )
}

async fn revoke_grant(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, grant) = path.into_inner();
    let (by, tenant) = grant_tenant(&req, &state, &tenant).await?;
    Ok(
        match state
            .auth()
            .grants()
            .revoke_grant(&tenant, &grant, unix_now())
            .await
        {
            Ok(()) => {
                tracing::info!(target: "audit", event = "admin_grant_revoked", by = %by, tenant = %tenant, grant = %grant);
                HttpResponse::Ok().json(json!({"revoked": 1}))
            }
            Err(e) => return Err(admin_error(e)),
        },
    )
}
