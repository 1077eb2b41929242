//! The HTTP surface: routes, middleware, and the mapping of protocol results to responses.
//! Handlers are thin: extract, call the protocol code, map the result.

mod authorize;
pub(crate) mod body;
mod callback;
mod client_addr;
pub(crate) mod cookies;
mod cors;
pub(crate) mod error;
mod extract;
mod gateway;
pub mod login_limits;
pub(crate) mod ops;
pub(crate) mod pages;
mod register;
pub(crate) mod request_ctx;
pub(crate) mod request_info;
pub(crate) mod state;
mod token;
mod well_known;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};
use tracing::Instrument;

use actix_web::HttpMessage;
pub(crate) use request_info::{client_value, local_path};
use state::AppState;

/// Successful reads of public, unchanging documents (metadata, JWKS) are logged at debug
/// rather than info: they are most of the traffic and tell an operator nothing.
fn is_routine_read(req: &actix_web::dev::ServiceRequest) -> bool {
    let path = req.path();
    req.method() == actix_web::http::Method::GET
        && (path.contains("/.well-known/")
            || path.ends_with("/jwks")
            || path == "/favicon.ico"
            || is_probe(path))
}

/// Health and readiness probes: logged at debug whatever they answer (a 503 is their answer,
/// not a failure, and an orchestrator asks every few seconds).
fn is_probe(path: &str) -> bool {
    path == "/healthz" || path == "/readyz" || path.starts_with("/readyz/")
}

/// Registers every route on an actix app, with `extra_routes` (the dev IdP's) inside the same
/// middleware.
pub(crate) fn configure(
    cfg: &mut web::ServiceConfig,
    state: web::Data<AppState>,
    extra_routes: impl FnOnce(&mut web::ServiceConfig),
) {
    // Under a public URL with a path (`https://auth.example.com/mcp-auth`) the tenants' routes
    // live under it, and the metadata where RFC 8414 §3.1 puts it, the path inserted after
    // `/.well-known/…`; the probes stay at the root, for the orchestrator.
    let prefix = state.path_prefix().to_owned();
    let tenants = web::scope(&prefix)
        .route(
            "/{tenant}/.well-known/openid-configuration",
            web::get().to(well_known::metadata),
        )
        .route("/{tenant}/register", web::post().to(register::register))
        .route(
            "/{tenant}/register/{client_id}",
            web::get().to(register::read_configuration),
        )
        .route(
            "/{tenant}/register/{client_id}",
            web::put().to(register::update_configuration),
        )
        .route(
            "/{tenant}/register/{client_id}",
            web::delete().to(register::delete_configuration),
        )
        .route("/{tenant}/authorize", web::get().to(authorize::authorize))
        .route("/{tenant}/consent", web::post().to(authorize::consent))
        .route("/{tenant}/callback", web::get().to(callback::callback))
        .route("/{tenant}/token", web::post().to(token::token))
        .route("/{tenant}/revoke", web::post().to(token::revoke))
        .route("/{tenant}/jwks", web::get().to(well_known::jwks))
        .route("/{tenant}/introspect", web::post().to(token::introspect))
        .configure(extra_routes)
        .route("/{tenant}/token", web::route().to(method_not_allowed))
        .route("/{tenant}/revoke", web::route().to(method_not_allowed))
        .route("/{tenant}/introspect", web::route().to(method_not_allowed))
        .route("/{tenant}/consent", web::route().to(method_not_allowed))
        .route("/{tenant}/register", web::route().to(method_not_allowed))
        .default_service(web::to(unknown_path));
    cfg.app_data(state).service(
        web::scope("")
            // CORS, inside the request log: a preflight is answered here and logged like any
            // request.
            .wrap_fn(cors::middleware)
            .wrap_fn(request_log)
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .route("/healthz", web::get().to(ops::healthz))
            .route("/favicon.ico", web::get().to(ops::favicon))
            .route("/readyz", web::get().to(ops::readyz))
            .route("/readyz/{tenant}", web::get().to(ops::tenant_readyz))
            // A gateway resource's own host is the gateway's alone.
            .service(
                web::scope("")
                    .guard(actix_web::guard::fn_guard(gateway::is_for_gateway_host))
                    .default_service(web::to(gateway::on_gateway_host)),
            )
            .route(
                &format!("/.well-known/oauth-authorization-server{prefix}/{{tenant}}"),
                web::get().to(well_known::metadata),
            )
            .route(
                &format!("/.well-known/openid-configuration{prefix}/{{tenant}}"),
                web::get().to(well_known::metadata),
            )
            .route(
                "/.well-known/oauth-protected-resource/{path:.*}",
                web::get().to(well_known::resource_metadata),
            )
            .service(tenants)
            .default_service(web::to(unknown_path)),
    );
}

/// What no route answers: a gateway resource routed by path (`gateway.rs`), else 404.
async fn unknown_path(
    state: web::Data<AppState>,
    ctx: crate::oauth::context::RequestCtx,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if let Some((tenant, i)) = state.serving().gateway_at_path(req.path()) {
        return gateway::call(&state, &ctx, &tenant, i, &req, payload).await;
    }
    error::not_found("there is nothing at this path")
}

async fn method_not_allowed(_: extract::ApiTenant) -> HttpResponse {
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

/// The metrics label of a request's route, with the tenant as `:tenant` (a fixed string, so
/// no allocation per request and no braces, which trip some exposition parsers).
fn route_label(path: &str) -> &'static str {
    let mut segments = path.trim_start_matches('/').split('/');
    let (first, second, third) = (segments.next(), segments.next(), segments.next());
    match (first, second, third) {
        (Some("healthz"), None, _) => "/healthz",
        (Some("readyz"), None, _) => "/readyz",
        (Some("readyz"), Some(_), None) => "/readyz/:tenant",
        (Some(".well-known"), Some("oauth-authorization-server"), Some(_)) => {
            "/.well-known/oauth-authorization-server/:tenant"
        }
        (Some(".well-known"), Some("openid-configuration"), Some(_)) => {
            "/.well-known/openid-configuration/:tenant"
        }
        (Some(".well-known"), Some("oauth-protected-resource"), _) => {
            "/.well-known/oauth-protected-resource"
        }
        (Some(_), Some(".well-known"), _) => "/:tenant/.well-known/openid-configuration",
        (Some(_), Some("authorize"), None) => "/:tenant/authorize",
        (Some(_), Some("consent"), None) => "/:tenant/consent",
        (Some(_), Some("callback"), None) => "/:tenant/callback",
        (Some(_), Some("token"), None) => "/:tenant/token",
        (Some(_), Some("revoke"), None) => "/:tenant/revoke",
        (Some(_), Some("jwks"), None) => "/:tenant/jwks",
        (Some(_), Some("introspect"), None) => "/:tenant/introspect",
        (Some(_), Some("register"), None) => "/:tenant/register",
        (Some(_), Some("register"), Some(_)) => "/:tenant/register/:client_id",
        (Some(_), Some("dev-idp"), _) => "/:tenant/dev-idp",
        _ => "other",
    }
}

/// Our own request log: the path only, never the query string, which carries codes and state
/// on the callback; an `x-request-id` on every response. It also makes the request's
/// `RequestCtx` (`request_ctx.rs`), which handlers take as an extractor.
fn request_log<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    let request_id = uuid::Uuid::new_v4().to_string();
    let routine = is_routine_read(&req);
    // A routine read's caller is not looked up: it is logged at debug and fetches nothing for
    // anyone (were it to, it would share the budget of callers without an address).
    let ctx = request_ctx::new_ctx(req.request(), Some(request_id.clone()), !routine);
    req.extensions_mut().insert(ctx.clone());
    let client_ip = ctx.caller.address();
    let (tenant, route) = labels(&req);
    let traced = !routine && crate::telemetry::enabled();
    let span = request_span(
        &req,
        &request_id,
        client_ip,
        (tenant.as_ref(), route),
        routine,
    );
    let traced_span = traced.then(|| span.clone());
    let logged = LoggedRequest {
        request_id,
        // A routine read's span is off at info: if it fails, its event names it instead.
        routine_path: routine.then(|| req.path().to_owned()),
        routine,
        probe: is_probe(req.path()),
        client_ip,
    };
    let started = std::time::Instant::now();
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        let status = res.status().as_u16();
        if let Some(span) = &traced_span {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.record("otel.status_code", "ERROR");
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        crate::metrics::observe_request(tenant.as_ref(), route, status, elapsed);
        logged.log(status, elapsed);
        if let Ok(id) = HeaderValue::from_str(&logged.request_id) {
            res.headers_mut()
                .insert(HeaderName::from_static("x-request-id"), id);
        }
        Ok(res)
    }
    .instrument(span)
}

/// The metrics labels of a request: its tenant, if it names a known one, and its route.
fn labels(req: &ServiceRequest) -> (Option<std::sync::Arc<crate::config::Tenant>>, &'static str) {
    let state = req.app_data::<web::Data<AppState>>();
    // The path below the public URL's prefix, where the tenant's segment comes first.
    let local = local_path(req.path(), state.map_or("", |s| s.path_prefix()));
    let local = local.as_ref();
    if let Some(state) = state
        && let Some((tenant, _)) = gateway::gateway_of(state, req.head(), req.path())
    {
        return (Some(tenant), "gateway");
    }
    let first_segment = local.trim_start_matches('/').split('/').next();
    let tenant = state
        .zip(first_segment)
        .and_then(|(state, seg)| state.tenant(seg))
        .or_else(|| {
            // `/.well-known/…/{tenant}` and `/readyz/{tenant}` name it last.
            let last = req.path().rsplit('/').next()?;
            state?.tenant(last)
        });
    (tenant, route_label(local))
}

/// The request's span: at debug for a routine read (nothing inside logs at info, so it costs
/// nothing there), else at info, and with OpenTelemetry's fields when spans are exported.
fn request_span(
    req: &ServiceRequest,
    request_id: &str,
    client_ip: Option<std::net::IpAddr>,
    (tenant, route): (Option<&std::sync::Arc<crate::config::Tenant>>, &'static str),
    routine: bool,
) -> tracing::Span {
    let client = match client_ip {
        Some(_) if tracing::enabled!(tracing::Level::INFO) => client_addr::describe(client_ip),
        _ => String::new(),
    };
    if routine {
        return tracing::debug_span!("request", id = %request_id, method = %req.method(), path = %req.path(), client = %client);
    }
    if !crate::telemetry::enabled() {
        return tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.path(), client = %client);
    }
    // The OpenTelemetry view of the same span (`telemetry.rs`): a server span named by method
    // and route; the OAuth client and the status are recorded once known. The path bounded: a
    // span is held until it is exported, and a path may be long.
    let path = crate::domain::text::bounded(req.path(), 200);
    let span = tracing::info_span!("request", id = %request_id, method = %req.method(), path = %path, client = %client,
        otel.name = %format_args!("{} {route}", req.method()), otel.kind = "server", http.route = route,
        tenant = tenant.map(|t| t.id.as_str()), client_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty, otel.status_code = tracing::field::Empty);
    let state = req.app_data::<web::Data<AppState>>();
    if state.is_some_and(|s| s.is_from_trusted_proxy(req.request())) {
        crate::telemetry::continue_trace(&span, req.headers());
    }
    span
}

/// What the request log line of a request says once it is answered.
struct LoggedRequest {
    request_id: String,
    routine_path: Option<String>,
    routine: bool,
    probe: bool,
    client_ip: Option<std::net::IpAddr>,
}

impl LoggedRequest {
    fn log(&self, status: u16, elapsed: f64) {
        // Milliseconds to a tenth: what a reader compares, without float noise.
        let ms = (elapsed * 10_000.0).round() / 10.0;
        let id = self.routine_path.as_ref().map(|_| self.request_id.as_str());
        let path = self.routine_path.as_deref();
        if self.probe {
            tracing::debug!(status, ms, "probe");
        } else if status >= 500 {
            tracing::error!(status, ms, id, path, "request failed");
        } else if self.routine && status < 400 {
            tracing::debug!(status, ms, "request");
        } else if status < 400
            || crate::log_budget::admit(crate::log_budget::Refusal::Request, self.client_ip)
        {
            // A refused request's line is written for the first few sources of each
            // interval, the rest counted (`log_budget.rs`).
            tracing::info!(status, ms, id, path, "request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn a_path_prefix_comes_off_tenant_and_metadata_routes_alone() {
        assert_eq!(local_path("/demo/token", ""), "/demo/token");
        assert_eq!(
            local_path("/mcp-auth/demo/token", "/mcp-auth"),
            "/demo/token"
        );
        assert_eq!(
            local_path(
                "/.well-known/oauth-authorization-server/mcp-auth/demo",
                "/mcp-auth"
            ),
            "/.well-known/oauth-authorization-server/demo"
        );
        // Not under the prefix: left as it is (a 404 further on).
        assert_eq!(
            local_path("/mcp-authx/demo", "/mcp-auth"),
            "/mcp-authx/demo"
        );
        assert_eq!(local_path("/healthz", "/mcp-auth"), "/healthz");
    }
}
