//! `AppState`: what request handlers share, built once at start-up. Handlers reach the
//! protocol through its methods, never through its fields.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::web;

use super::cookies::Cookies;
use crate::config::{Settings, Tenant};
use crate::domain::TenantId;
use crate::oauth::AuthServer;
use crate::oauth::registration::ClientRegistry;
use crate::oauth::serving::Serving;
use crate::store::Records;
use crate::upstream::UpstreamDirectory;

pub use crate::clock::unix_now;

/// Everything a request handler may need.
pub struct AppState {
    /// The tenant set in force and what was built from it, replaced whole by a reload
    /// (`oauth/serving.rs`).
    serving: Arc<Serving>,
    records: Records,
    registry: ClientRegistry,
    upstreams: UpstreamDirectory,
    /// The login flow.
    auth: AuthServer,
    cookies: Cookies,
    /// The gateway's calls to MCP servers: no redirects, no proxy from the environment, a
    /// bounded connect, idle connections closed before a Node server's keep-alive ends.
    gateway_client: reqwest::Client,
    /// The gateway's per-user and per-client call limits.
    gateway_limits: crate::gateway::limits::CallLimits,
    /// Session ids bound to the caller they were made for.
    gateway_sessions: crate::gateway::sessions::SessionBinding,
    /// Tokens for MCP servers' downstream APIs, kept per login.
    gateway_downstream: crate::gateway::downstream::DownstreamTokens,
    trusted_proxies: Vec<ipnet::IpNet>,
    forwarded_header: crate::config::server::ForwardedHeader,
    login_limits: super::login_limits::LoginLimits,
    /// The public URL's path prefix (`config::server::path_prefix`), empty for none.
    path_prefix: String,
}

impl AppState {
    pub(crate) fn new(
        settings: Settings,
        serving: Arc<Serving>,
        records: Records,
        registry: ClientRegistry,
        upstreams: UpstreamDirectory,
        auth: AuthServer,
        gateway_sessions: crate::gateway::sessions::SessionBinding,
    ) -> Self {
        let path_prefix = crate::config::server::path_prefix(&settings.public_url).to_owned();
        let cookies = Cookies::new(settings.public_url.scheme() == "https", &path_prefix);
        Self {
            serving,
            cookies,
            gateway_client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(std::time::Duration::from_secs(5))
                .pool_idle_timeout(std::time::Duration::from_secs(4))
                .build()
                .unwrap_or_default(),
            gateway_limits: crate::gateway::limits::CallLimits::default(),
            gateway_sessions,
            gateway_downstream: Default::default(),
            records,
            registry,
            upstreams,
            auth,
            trusted_proxies: settings.trusted_proxies.clone(),
            forwarded_header: settings.forwarded_header,
            login_limits: super::login_limits::LoginLimits::new(settings.login_starts_per_minute),
            path_prefix,
        }
    }

    /// The public URL's path prefix, empty for none: the tenants' routes live under it.
    pub(crate) fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// The tenant set in force (what a reload replaces).
    pub(crate) fn serving(&self) -> &Serving {
        &self.serving
    }

    /// Every tenant, in file-name order.
    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        self.serving.tenants()
    }

    /// The tenant named by a path segment, if there is one.
    pub fn tenant(&self, segment: &str) -> Option<Arc<Tenant>> {
        self.serving.tenant(segment)
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn registry(&self) -> &ClientRegistry {
        &self.registry
    }

    pub(crate) fn upstreams(&self) -> &UpstreamDirectory {
        &self.upstreams
    }

    /// The login flow: authorize, consent, callback, token, revoke.
    pub fn auth(&self) -> &AuthServer {
        &self.auth
    }

    /// The client of the gateway's calls to MCP servers.
    pub(crate) fn gateway_client(&self) -> &reqwest::Client {
        &self.gateway_client
    }

    /// The gateway's session binding.
    pub(crate) fn gateway_sessions(&self) -> &crate::gateway::sessions::SessionBinding {
        &self.gateway_sessions
    }

    /// The gateway's downstream API tokens.
    pub(crate) fn gateway_downstream(&self) -> &crate::gateway::downstream::DownstreamTokens {
        &self.gateway_downstream
    }

    /// The gateway's call limits.
    pub(crate) fn gateway_limits(&self) -> &crate::gateway::limits::CallLimits {
        &self.gateway_limits
    }

    /// The names and attributes of the cookies this server sets.
    pub(crate) fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// The serialized authorization server metadata of a tenant (RFC 8414). Whether it offers
    /// refresh tokens follows what the upstream's discovery document said.
    pub(crate) fn metadata_document(&self, tenant: &Tenant) -> Option<web::Bytes> {
        let offers_refresh = self.upstreams.status(&tenant.id).offers_refresh();
        self.serving.metadata_document(&tenant.id, offers_refresh)
    }

    /// The address of the client behind `req` (`client_addr.rs`).
    pub(crate) fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<IpAddr> {
        super::client_addr::client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted_proxies,
            self.forwarded_header,
        )
    }

    /// Whether `req` came from one of `--trusted-proxies` (whose forwarded headers are read).
    pub(crate) fn is_from_trusted_proxy(&self, req: &actix_web::HttpRequest) -> bool {
        req.peer_addr()
            .is_some_and(|a| super::client_addr::is_trusted_proxy(a.ip(), &self.trusted_proxies))
    }

    /// Whether the tenant's ceiling on registrations per minute, counted over every source,
    /// leaves room for one more.
    pub(crate) fn allow_tenant_registration(&self, tenant: &TenantId) -> bool {
        self.serving.allow_tenant_registration(tenant)
    }

    /// Whether `source` may register one more client at `tenant` now. IPv6 sources are
    /// counted per /64, the block one subscriber usually holds, so that rotating addresses
    /// within it does not multiply the budget.
    pub(crate) fn allow_registration(&self, tenant: &TenantId, source: IpAddr) -> bool {
        self.serving.allow_registration(tenant, source)
    }

    /// Spends one login start of `source` and `browser` (`http/login_limits.rs`), or says which
    /// limit is reached.
    pub(crate) fn allow_login_start(
        &self,
        source: Option<IpAddr>,
        browser: Option<&str>,
    ) -> Result<(), super::login_limits::LoginLimit> {
        self.login_limits.check(source, browser)
    }

    /// Forgets rate-limit buckets of sources that have been quiet (the sweeper calls this).
    pub(crate) fn forget_idle_rate_limits(&self) {
        self.login_limits.forget_idle();
        self.serving.forget_idle();
        self.gateway_limits.forget_idle();
    }
}
